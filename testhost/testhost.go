// Package testhost holds what the integration tests share: the check that they run
// inside the disposable systemd host (testhost/run.sh), and a client for the guest's
// hello service.
package testhost

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// Paths are the nixcfs binary and the guest/ entry point the tests use.
type Paths struct{ Bin, Guest string }

// Require skips tb outside the test host (NIXCFS_TESTHOST=1, set by testhost/run.sh),
// with a one-line reason, and returns NIXCFS_BIN and NIXCFS_GUEST.
func Require(tb testing.TB) Paths {
	tb.Helper()
	if os.Getenv("NIXCFS_TESTHOST") != "1" {
		tb.Skip("integration test: runs inside the test host (make integration-test)")
	}
	p := Paths{Bin: os.Getenv("NIXCFS_BIN"), Guest: os.Getenv("NIXCFS_GUEST")}
	if p.Bin == "" || p.Guest == "" {
		tb.Fatal("NIXCFS_BIN and NIXCFS_GUEST must name the nixcfs binary and the guest/ directory")
	}
	return p
}

// Hello returns what the guest's hello service at addr answers, trimmed.
func Hello(tb testing.TB, addr string) string {
	tb.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		tb.Fatalf("GET %s: %v", addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(body))
}
