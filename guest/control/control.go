// Package control is the client side of the guest init's control socket: a client
// connects, writes one request line, and reads the answer until init closes the
// connection. The answer's first line is "ok" or "error: MESSAGE"; more lines may
// follow. The host reaches the socket through /proc/LEADER/root + Socket, resolved inside
// the guest's root tree (RequestVia). Standard
// library only: the guest's static init uses it too.
package control

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"
)

// Socket is where the guest init listens, inside the container.
const Socket = "/run/nixcfs/init.sock"

// Request sends one line to the socket at path and returns the whole answer; an
// "error: ..." answer is returned as an error too. Without a deadline in ctx the
// exchange gets two minutes.
func Request(ctx context.Context, path, line string) (string, error) {
	return RequestVia(ctx, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}, line)
}

// RequestVia is Request over the connection dial makes: the host dials a guest's
// socket in a way that cannot be led out of the guest's root tree.
func RequestVia(ctx context.Context, dial func(context.Context) (net.Conn, error), line string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
	}
	conn, err := dial(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return "", err
	}
	answer, err := io.ReadAll(conn)
	if err != nil {
		return string(answer), err
	}
	first, _, _ := strings.Cut(string(answer), "\n")
	if first != "ok" {
		return string(answer), errors.New(strings.TrimPrefix(first, "error: "))
	}
	return string(answer), nil
}
