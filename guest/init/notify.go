package main

import (
	"net"
	"strings"
)

// sdNotify sends state (e.g. "READY=1\nSTATUS=...") to the service manager's
// notification socket, as sd_notify(3) does; systemd-nspawn --notify-ready=yes
// passes it in $NOTIFY_SOCKET. Without a socket it does nothing.
func sdNotify(socket, state string) error {
	if socket == "" {
		return nil
	}
	if strings.HasPrefix(socket, "@") { // abstract namespace
		socket = "\x00" + socket[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}
