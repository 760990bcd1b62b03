package main

// The control socket; the protocol is described in main.go.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"nixcfs/guest/control"
)

// maxRequest bounds a request line: "activate " and a store path.
const maxRequest = 4096

type controlServer struct {
	ln  net.Listener
	g   *guest
	log *slog.Logger
	wg  sync.WaitGroup // connections being answered
}

// listenControl creates the control socket at path (replacing a stale one).
func listenControl(path string, g *guest, log *slog.Logger) (*controlServer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return &controlServer{ln: ln, g: g, log: log}, nil
}

// serve answers connections until close; each gets its own goroutine, so a
// reload's child can activate while reload waits for it.
func (s *controlServer) serve() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("control socket", "error", err)
			}
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(conn)
		}()
	}
}

// close stops accepting and waits up to wait for the answers in progress.
func (s *controlServer) close(wait time.Duration) {
	s.ln.Close()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(wait):
	}
}

func (s *controlServer) handle(conn net.Conn) {
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReaderSize(conn, maxRequest).ReadSlice('\n')
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		fmt.Fprintf(conn, "error: read request: %v\n", err)
		return
	}
	conn.SetReadDeadline(time.Time{})
	request := strings.TrimSpace(string(line))
	answer := s.answer(request)
	s.log.Info("control", "request", request, "answer", firstLine(answer))
	io.WriteString(conn, answer)
}

// answer executes one request and returns the whole answer text.
func (s *controlServer) answer(request string) string {
	command, arg, _ := strings.Cut(request, " ")
	arg = strings.TrimSpace(arg)
	switch command {
	case "activate":
		if arg == "" {
			return "error: usage: activate STOREPATH\n"
		}
		if err := s.g.activate(arg); err != nil {
			return errorLine(err)
		}
		return "ok\n"
	case "reload":
		output, err := s.g.reload()
		if err != nil {
			return errorLine(err) + output
		}
		return "ok\n" + output
	case "status":
		return "ok\n" + s.g.status()
	default:
		return fmt.Sprintf("error: unknown command %q (want activate STOREPATH, reload or status)\n", command)
	}
}

// errorLine renders err as the single "error: ..." line of an answer.
func errorLine(err error) string {
	return "error: " + strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ") + "\n"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// request sends one request line to the control socket (package control, which the
// host uses too) and returns the whole answer; an "error: ..." answer is an error.
func request(socket, line string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return control.Request(ctx, socket, line)
}
