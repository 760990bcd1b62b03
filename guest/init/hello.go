package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// helloService is services.hello: HTTP on one port, answering its message
// and a newline to every GET.
type helloService struct {
	port    int
	message atomic.Pointer[string] // swapped in place when only the text changes
	server  *http.Server
	addr    net.Addr
}

// startHello listens on host:port and serves message until stop.
func startHello(host string, port int, message string) (*helloService, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("hello service: %w", err)
	}
	h := &helloService{port: port, addr: ln.Addr()}
	h.message.Store(&message)
	h.server = &http.Server{
		Handler:           http.HandlerFunc(h.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go h.server.Serve(ln) // returns ErrServerClosed on stop
	return h, nil
}

func (h *helloService) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, *h.message.Load())
}

func (h *helloService) setMessage(message string) { h.message.Store(&message) }

// stop closes the listener and waits briefly for answers in flight.
func (h *helloService) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := h.server.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = h.server.Close()
	}
	return err
}
