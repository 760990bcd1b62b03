package guestroot

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const initSocket = "/run/nixcfs/init.sock"

// listen serves "hello from NAME" to every connection on a socket at path, and counts
// them in accepted.
func listen(t *testing.T, path, name string) (l *net.UnixListener, accepted *atomic.Int32) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted = new(atomic.Int32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			io.WriteString(c, "hello from "+name)
			c.Close()
		}
	}()
	return l, accepted
}

func wantAnswer(t *testing.T, conn net.Conn, err error, want string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != want {
		t.Fatalf("answer %q, %v; want %q", got, err, want)
	}
}

func TestDialUnix(t *testing.T) {
	_, root, _ := hostTree(t)
	listen(t, filepath.Join(root, initSocket), "guest")
	ctx := context.Background()
	conn, err := DialUnix(ctx, root, initSocket)
	wantAnswer(t, conn, err, "hello from guest")
	// The tree's own directory may be reached through host symlinks and magic links.
	conn, err = DialUnix(ctx, "/proc/self/root"+root, initSocket)
	wantAnswer(t, conn, err, "hello from guest")
}

func TestDialUnixInTreeSymlink(t *testing.T) {
	_, root, _ := hostTree(t)
	listen(t, filepath.Join(root, "srv/real.sock"), "guest")
	symlink(t, "../../srv/real.sock", filepath.Join(root, initSocket))
	conn, err := DialUnix(context.Background(), root, initSocket)
	wantAnswer(t, conn, err, "hello from guest")
}

// A guest's absolute symlink at the socket path must not reach the host's socket,
// which connecting to root+initSocket would.
func TestDialUnixEscape(t *testing.T) {
	for _, target := range []string{"HOST", "../../../host/daemon.sock", "/proc/self/root/HOST"} {
		t.Run(target, func(t *testing.T) {
			_, root, host := hostTree(t)
			hostSocket := filepath.Join(host, "daemon.sock")
			_, accepted := listen(t, hostSocket, "host")
			switch target {
			case "HOST":
				target = hostSocket
			case "/proc/self/root/HOST":
				target = "/proc/self/root" + hostSocket
			}
			symlink(t, target, filepath.Join(root, initSocket))
			// The naive way reaches it: the test is set up right.
			c, err := net.Dial("unix", filepath.Join(root, initSocket))
			wantAnswer(t, c, err, "hello from host")
			_, err = DialUnix(context.Background(), root, initSocket)
			wantErr(t, err, ErrEscape, "run/nixcfs/init.sock")
			// A connection after DialUnix's is accepted after it: once it is counted, a
			// connection of DialUnix's would have been too.
			c, err = net.Dial("unix", hostSocket)
			wantAnswer(t, c, err, "hello from host")
			if n := accepted.Load(); n != 2 {
				t.Errorf("the host's socket took %d connections, want only the test's own 2", n)
			}
		})
	}
}

func TestDialUnixNotSocket(t *testing.T) {
	_, root, _ := hostTree(t)
	write(t, filepath.Join(root, initSocket), "")
	_, err := DialUnix(context.Background(), root, initSocket)
	if !errors.Is(err, syscall.ENOTSOCK) {
		t.Errorf("error %v, want ENOTSOCK", err)
	}
	os.Remove(filepath.Join(root, initSocket))
	_, err = DialUnix(context.Background(), root, initSocket)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v, want ErrNotExist", err)
	}
}

func TestDialUnixRefused(t *testing.T) {
	_, root, _ := hostTree(t)
	l, _ := listen(t, filepath.Join(root, initSocket), "guest")
	l.SetUnlinkOnClose(false)
	l.Close()
	_, err := DialUnix(context.Background(), root, initSocket)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error %v, want ECONNREFUSED", err)
	}
}

func TestDialUnixCancelled(t *testing.T) {
	_, root, _ := hostTree(t)
	listen(t, filepath.Join(root, initSocket), "guest")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := DialUnix(ctx, root, initSocket); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

// A running container's /run is a mount of its own; resolution crosses into it.
func TestDialUnixAcrossMount(t *testing.T) {
	privateMountNamespace(t)
	_, root, _ := hostTree(t)
	if err := os.MkdirAll(filepath.Join(root, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	mount(t, "tmpfs", filepath.Join(root, "run"), "tmpfs")
	listen(t, filepath.Join(root, initSocket), "guest")
	conn, err := DialUnix(context.Background(), root, initSocket)
	wantAnswer(t, conn, err, "hello from guest")
}

// With a proc mounted in the tree, as in a running container's, the socket's name a
// relative symlink into a magic link (proc/self/root/HOST...): refused, and the
// host's socket takes no connection.
func TestDialUnixMagicLink(t *testing.T) {
	privateMountNamespace(t)
	_, root, host := hostTree(t)
	procInTree(t, root)
	hostSocket := filepath.Join(host, "daemon.sock")
	_, accepted := listen(t, hostSocket, "host")
	for i, target := range []string{"../../proc/self/root" + hostSocket, "../../proc/thread-self/root" + hostSocket} {
		link := filepath.Join(root, initSocket)
		os.Remove(link)
		symlink(t, target, link)
		// The naive way reaches it: the test is set up right.
		c, err := net.Dial("unix", link)
		wantAnswer(t, c, err, "hello from host")
		_, err = DialUnix(context.Background(), root, initSocket)
		wantErr(t, err, ErrEscape, "run/nixcfs/init.sock")
		if !strings.Contains(err.Error(), "magic link") {
			t.Errorf("%s: error %q does not say it is a magic link", target, err)
		}
		// A connection after DialUnix's is accepted after it: once it is counted, a
		// connection of DialUnix's would have been too.
		c, err = net.Dial("unix", hostSocket)
		wantAnswer(t, c, err, "hello from host")
		if n := accepted.Load(); n != int32(2*(i+1)) {
			t.Errorf("%s: the host's socket took %d connections, want only the test's own %d", target, n, 2*(i+1))
		}
	}
}
