package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// TestMain lets the test binary stand in for a system's
// bin/switch-to-configuration, so reload can run the real client code.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "switch-to-configuration" {
		os.Exit(runSwitch(os.Args[0], os.Args[1:], os.Getenv("NIXCFS_TEST_CONTROL_SOCKET"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// testConfig is a config.json as guest/modules.nix writes it.
type testConfig struct {
	hostName string
	hello    *HelloConfig
	keys     map[string][]string
}

func (c testConfig) json(t *testing.T) []byte {
	t.Helper()
	hello := HelloConfig{Port: 80, Message: "Hello from " + c.hostName}
	if c.hello != nil {
		hello = *c.hello
	}
	users := map[string]any{}
	for name, keys := range c.keys {
		user := map[string]any{
			"isNormalUser": true,
			"home":         "/home/" + name,
			"group":        "users",
			"openssh":      map[string]any{"authorizedKeys": map[string]any{"keys": keys}},
		}
		if name == "root" { // as guest/modules.nix defines it
			user = map[string]any{
				"uid": 0, "home": "/root", "group": "root", "description": "System administrator",
				"openssh": user["openssh"],
			}
		}
		users[name] = user
	}
	data, err := json.Marshal(map[string]any{
		"boot":       map[string]any{"isContainer": true},
		"networking": map[string]any{"hostName": c.hostName, "useDHCP": false},
		"services": map[string]any{
			"hello":   hello,
			"openssh": map[string]any{"enable": false},
		},
		"users":  map[string]any{"users": users},
		"system": map[string]any{"stateVersion": "25.11", "name": c.hostName},
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// writeSystem makes a system directory (a stand-in for a store path) holding
// config.json and sw/bin/sh and sw/bin/env (stand-ins for busybox links),
// and returns its path.
func writeSystem(t *testing.T, dir string, c testConfig) string {
	t.Helper()
	for _, d := range []string{"bin", "sw/bin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, program := range []string{"sh", "env"} {
		writeExecutable(t, filepath.Join(dir, "sw", "bin", program), nil, 0o755)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), c.json(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeExecutable writes a program that the test (or the code under test) will
// exec, through writeProgram: with plain os.WriteFile a fork in a parallel test
// may inherit the write fd and make the exec fail with ETXTBSY.
func writeExecutable(t *testing.T, path string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := writeProgram(path, data, perm); err != nil {
		t.Fatal(err)
	}
}

// hostnames records what init would have set with sethostname.
type hostnames struct {
	mu    sync.Mutex
	names []string
}

func (h *hostnames) set(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.names = append(h.names, name)
	return nil
}

func (h *hostnames) last() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.names) == 0 {
		return ""
	}
	return h.names[len(h.names)-1]
}

// newTestGuest returns a guest rooted in a temporary directory, its hello
// service on localhost, its children run by os/exec.
func newTestGuest(t *testing.T) (*guest, *hostnames) {
	t.Helper()
	root := t.TempDir()
	names := &hostnames{}
	g := &guest{
		root:        root,
		helloHost:   "127.0.0.1",
		profile:     filepath.Join(root, "profile"),
		setHostname: names.set,
		runChild:    execRun,
		log:         slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
	t.Cleanup(g.shutdown)
	return g, names
}

func execRun(path string, args ...string) ([]byte, int, error) {
	out, err := exec.Command(path, args...).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out, exit.ExitCode(), nil
	}
	return out, 0, err
}

// freePort returns a localhost TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
