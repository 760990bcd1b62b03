package main

import (
	"net"
	"path/filepath"
	"testing"
)

func TestSdNotify(t *testing.T) {
	t.Parallel()
	socket := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	must(t, err)
	defer conn.Close()

	must(t, sdNotify(socket, "READY=1\nSTATUS=Running"))
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	must(t, err)
	if got := string(buf[:n]); got != "READY=1\nSTATUS=Running" {
		t.Errorf("notification = %q", got)
	}
	if err := sdNotify("", "READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v, want nothing done", err)
	}
}
