package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveControl serves g's control socket in a temporary directory.
func serveControl(t *testing.T, g *guest) string {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "init.sock")
	ctl, err := listenControl(socket, g, g.log)
	must(t, err)
	go ctl.serve()
	t.Cleanup(func() { ctl.close(5 * time.Second) })
	return socket
}

var httpClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true},
	Timeout:   5 * time.Second,
}

// hello GETs a path from the hello service on port.
func hello(port int) (string, error) {
	resp, err := httpClient.Get(fmt.Sprintf("http://127.0.0.1:%d/any/path", port))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func twoFreePorts(t *testing.T) (int, int) {
	for {
		a, b := freePort(t), freePort(t)
		if a != b {
			return a, b
		}
	}
}

func readKeys(t *testing.T, g *guest) map[string]string {
	t.Helper()
	dir := filepath.Join(g.root, authorizedKeysDir)
	entries, err := os.ReadDir(dir)
	must(t, err)
	keys := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		keys[e.Name()] = string(data)
	}
	return keys
}

func TestActivateOverControlSocket(t *testing.T) {
	t.Parallel()
	g, names := newTestGuest(t)
	store := t.TempDir()
	port1, port2 := twoFreePorts(t)
	one := writeSystem(t, filepath.Join(store, "a-nixos-system-one"), testConfig{
		hostName: "one",
		hello:    &HelloConfig{Enable: true, Port: port1, Message: "first"},
		keys:     map[string][]string{"alice": {"ssh-ed25519 A alice"}, "bob": {"ssh-ed25519 B bob"}},
	})
	two := writeSystem(t, filepath.Join(store, "b-nixos-system-two"), testConfig{
		hostName: "two",
		hello:    &HelloConfig{Enable: true, Port: port2, Message: "second"},
		keys:     map[string][]string{"alice": {"ssh-ed25519 C alice", "ssh-ed25519 D alice"}},
	})
	three := writeSystem(t, filepath.Join(store, "c-nixos-system-two"), testConfig{
		hostName: "two",
		hello:    &HelloConfig{Enable: true, Port: port2, Message: "third"},
	})
	off := writeSystem(t, filepath.Join(store, "d-nixos-system-off"), testConfig{hostName: "off"})

	// Boot: init applies its own system before serving the socket.
	must(t, g.activate(one))
	if got := names.last(); got != "one" {
		t.Errorf("hostname after boot = %q, want one", got)
	}
	if got, err := hello(port1); err != nil || got != "first\n" {
		t.Errorf("hello after boot = %q, %v; want \"first\\n\"", got, err)
	}
	if keys := readKeys(t, g); len(keys) != 2 || keys["alice"] != "ssh-ed25519 A alice\n" || keys["bob"] != "ssh-ed25519 B bob\n" {
		t.Errorf("authorized keys after boot = %q", keys)
	}

	socket := serveControl(t, g)
	ask := func(line string) (string, error) { return request(socket, line, 10*time.Second) }

	// A new port, hostname and keys.
	if answer, err := ask("activate " + two); err != nil || answer != "ok\n" {
		t.Fatalf("activate two = %q, %v", answer, err)
	}
	if got := names.last(); got != "two" {
		t.Errorf("hostname = %q, want two", got)
	}
	if got, err := hello(port2); err != nil || got != "second\n" {
		t.Errorf("hello on the new port = %q, %v; want \"second\\n\"", got, err)
	}
	if _, err := hello(port1); err == nil {
		t.Errorf("hello still answers on the old port %d", port1)
	}
	if keys := readKeys(t, g); len(keys) != 1 || keys["alice"] != "ssh-ed25519 C alice\nssh-ed25519 D alice\n" {
		t.Errorf("authorized keys = %q, want alice's two new keys and bob's file gone", keys)
	}
	if target, err := os.Readlink(filepath.Join(g.root, "run", "current-system")); err != nil || target != two {
		t.Errorf("/run/current-system -> %q, %v; want %s", target, err, two)
	}
	answer, err := ask("status")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, want := range []string{"ok\n", "system " + two + "\n", fmt.Sprintf("pid %d\n", os.Getpid()), "hostname two\n", fmt.Sprintf("hello 127.0.0.1:%d\n", port2)} {
		if !strings.Contains(answer, want) {
			t.Errorf("status answer %q lacks %q", answer, want)
		}
	}

	// Only the message changes: served at once, same port.
	if answer, err := ask("activate " + three); err != nil || answer != "ok\n" {
		t.Fatalf("activate three = %q, %v", answer, err)
	}
	if got, err := hello(port2); err != nil || got != "third\n" {
		t.Errorf("hello with the new message = %q, %v; want \"third\\n\"", got, err)
	}
	if keys := readKeys(t, g); len(keys) != 0 {
		t.Errorf("authorized keys = %q, want none", keys)
	}

	// A system that cannot be loaded changes nothing.
	answer, err = ask("activate " + filepath.Join(store, "missing"))
	if err == nil || !strings.HasPrefix(answer, "error: activate ") || strings.Count(answer, "\n") != 1 {
		t.Errorf("activate of a missing system = %q, %v; want one error line", answer, err)
	}
	if answer, _ := ask("status"); !strings.Contains(answer, "system "+three+"\n") {
		t.Errorf("status after a failed activate = %q, want still %s", answer, three)
	}

	// The service off.
	if answer, err := ask("activate " + off); err != nil || answer != "ok\n" {
		t.Fatalf("activate off = %q, %v", answer, err)
	}
	if _, err := hello(port2); err == nil {
		t.Errorf("hello still answers after services.hello.enable = false")
	}
	if answer, _ := ask("status"); !strings.Contains(answer, "hello off\n") {
		t.Errorf("status = %q, want hello off", answer)
	}
}

func TestControlErrors(t *testing.T) {
	t.Parallel()
	g, _ := newTestGuest(t)
	socket := serveControl(t, g)
	for _, tc := range []struct{ request, want string }{
		{"frobnicate", "error: unknown command \"frobnicate\""},
		{"activate", "error: usage: activate STOREPATH"},
		{"activate relative/path", "error: activate relative/path"},
	} {
		answer, err := request(socket, tc.request, 5*time.Second)
		if err == nil || !strings.HasPrefix(answer, tc.want) {
			t.Errorf("%q answered %q, %v; want %q...", tc.request, answer, err, tc.want)
		}
	}
}

func TestReloadReportsFailure(t *testing.T) {
	t.Parallel()
	g, _ := newTestGuest(t)
	stc := filepath.Join(g.profile, "bin", "switch-to-configuration")
	must(t, os.MkdirAll(filepath.Dir(stc), 0o755))
	writeExecutable(t, stc, []byte("#!/bin/sh\necho \"cannot $1 today\" >&2\nexit 3\n"), 0o755)
	socket := serveControl(t, g)

	answer, err := request(socket, "reload", 10*time.Second)
	want := "error: switch-to-configuration test: exit status 3\ncannot test today\n"
	if err == nil || answer != want {
		t.Errorf("reload = %q, %v; want %q", answer, err, want)
	}
}

// TestReload runs the whole loop as in a container: reload starts the
// profile's switch-to-configuration (this test binary, see TestMain) through
// the reaper; it sends activate back over the socket.
// Not parallel: the reaper waits for every child of the test process.
func TestReload(t *testing.T) {
	exe, err := os.Executable()
	must(t, err)
	g, names := newTestGuest(t)
	reaper := newReaper()
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	go reaper.loop(sigchld)
	t.Cleanup(func() {
		signal.Stop(sigchld)
		close(sigchld)
	})
	g.runChild = reaper.run

	system := writeSystem(t, filepath.Join(t.TempDir(), "x-nixos-system-reloaded"), testConfig{hostName: "reloaded"})
	must(t, os.Symlink(exe, filepath.Join(system, "bin", "switch-to-configuration")))
	must(t, os.Symlink(system, g.profile))
	socket := serveControl(t, g)
	t.Setenv("NIXCFS_TEST_CONTROL_SOCKET", socket)

	answer, err := request(socket, "reload", 30*time.Second)
	if err != nil || !strings.HasPrefix(answer, "ok\n") || !strings.Contains(answer, "activating the configuration "+system) {
		t.Fatalf("reload = %q, %v", answer, err)
	}
	if got := names.last(); got != "reloaded" {
		t.Errorf("hostname after reload = %q, want reloaded", got)
	}
}

func TestSwitchToConfiguration(t *testing.T) {
	t.Parallel()
	g, names := newTestGuest(t)
	socket := serveControl(t, g)
	dir := t.TempDir()
	system := writeSystem(t, filepath.Join(dir, "store", "y-nixos-system-switched"), testConfig{hostName: "switched"})
	profile := filepath.Join(dir, "system")
	must(t, os.Symlink(system, profile))
	argv0 := filepath.Join(profile, "bin", "switch-to-configuration")

	switchTo := func(socket string, args ...string) (int, string, string) {
		var stdout, stderr strings.Builder
		code := runSwitch(argv0, args, socket, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	if code, stdout, _ := switchTo(socket, "dry-activate"); code != 0 || !strings.Contains(stdout, "would activate "+system) {
		t.Errorf("dry-activate: exit %d, stdout %q", code, stdout)
	}
	if code, _, _ := switchTo(socket, "boot"); code != 0 {
		t.Errorf("boot: exit %d", code)
	}
	if got := names.last(); got != "" {
		t.Errorf("dry-activate or boot set the hostname to %q", got)
	}
	if code, stdout, stderr := switchTo(socket, "test"); code != 0 || stdout != "ok\n" {
		t.Errorf("test: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if got := names.last(); got != "switched" {
		t.Errorf("hostname after test = %q, want switched", got)
	}
	if code, _, stderr := switchTo(filepath.Join(dir, "nobody.sock"), "switch"); code == 0 || !strings.Contains(stderr, "cannot reach init") {
		t.Errorf("switch without init: exit %d, stderr %q", code, stderr)
	}
	for _, args := range [][]string{nil, {"reboot"}, {"test", "extra"}} {
		if code, _, stderr := switchTo(socket, args...); code != 1 || !strings.HasPrefix(stderr, "usage:") {
			t.Errorf("switch-to-configuration %v: exit %d, stderr %q; want usage", args, code, stderr)
		}
	}
}

func TestReaperRun(t *testing.T) {
	// Not parallel: the reaper waits for every child of the test process.
	reaper := newReaper()
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	go reaper.loop(sigchld)
	defer func() {
		signal.Stop(sigchld)
		close(sigchld)
	}()

	out, code, err := reaper.run("/bin/sh", "-c", "echo out; echo err >&2; exit 3")
	if err != nil || code != 3 || string(out) != "out\nerr\n" {
		t.Errorf("run = %q, %d, %v; want \"out\\nerr\\n\", 3", out, code, err)
	}
	if _, _, err := reaper.run("/nonexistent/program"); err == nil {
		t.Errorf("run of a missing program succeeded")
	}

	// A child nobody waits for (an orphan, in a container) is reaped.
	orphan, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "exit 0"}, &os.ProcAttr{})
	must(t, err)
	pid := orphan.Pid
	orphan.Release()
	deadline := time.Now().Add(5 * time.Second)
	for {
		// A zombie still takes signal 0; a reaped process is gone.
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d was not reaped", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
