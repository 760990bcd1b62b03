package main

import (
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// boot as runInit does it, in a temporary root: the system applied,
// /run/booted-system linked, READY=1 sent, the control socket answering;
// and STOPPING=1 on shutdown.
func TestBoot(t *testing.T) {
	t.Parallel()
	g, names := newTestGuest(t)
	port := freePort(t)
	system := writeSystem(t, filepath.Join(t.TempDir(), "z-nixos-system-booted"), testConfig{
		hostName: "booted",
		hello:    &HelloConfig{Enable: true, Port: port, Message: "up"},
		keys:     map[string][]string{"root": {"ssh-ed25519 R root"}},
	})
	cfg, err := loadConfig(system)
	must(t, err)
	notifySocket := filepath.Join(t.TempDir(), "notify")
	notifications, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifySocket, Net: "unixgram"})
	must(t, err)
	defer notifications.Close()
	socket := filepath.Join(t.TempDir(), "init.sock")

	shutdown := g.boot(system, cfg, socket, notifySocket)
	if got := receive(t, notifications); got != "READY=1\nSTATUS=Running z-nixos-system-booted" {
		t.Errorf("notification = %q", got)
	}
	if got := names.last(); got != "booted" {
		t.Errorf("hostname = %q", got)
	}
	for _, link := range []string{"run/booted-system", "run/current-system"} {
		if target, err := os.Readlink(filepath.Join(g.root, link)); err != nil || target != system {
			t.Errorf("%s -> %q, %v; want %s", link, target, err, system)
		}
	}
	if keys := readKeys(t, g); keys["root"] != "ssh-ed25519 R root\n" {
		t.Errorf("authorized keys = %q", keys)
	}
	if target, err := os.Readlink(filepath.Join(g.root, "bin/sh")); err != nil || target != system+"/sw/bin/sh" {
		t.Errorf("/bin/sh -> %q, %v", target, err)
	}
	for name, want := range map[string]string{"passwd": "root:x:0:0:", "hostname": "booted\n", "profile": "PATH="} {
		if data, err := os.ReadFile(filepath.Join(g.root, "etc", name)); err != nil || !strings.Contains(string(data), want) {
			t.Errorf("/etc/%s = %q, %v; want it to hold %q", name, data, err, want)
		}
	}
	if got, err := hello(port); err != nil || got != "up\n" {
		t.Errorf("hello = %q, %v", got, err)
	}
	if answer, err := request(socket, "status", 5*time.Second); err != nil || !strings.Contains(answer, "system "+system+"\n") {
		t.Errorf("status = %q, %v", answer, err)
	}

	shutdown()
	if got := receive(t, notifications); !strings.HasPrefix(got, "STOPPING=1\n") {
		t.Errorf("notification on shutdown = %q", got)
	}
	if _, err := request(socket, "status", time.Second); err == nil {
		t.Errorf("the control socket still answers after shutdown")
	}
	if _, err := hello(port); err == nil {
		t.Errorf("hello still answers after shutdown")
	}
}

func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	n, err := conn.Read(buf)
	must(t, err)
	return string(buf[:n])
}

// Go lets init catch systemd's real-time stop signals (SIGRTMIN+3 is what
// nspawn sends a NixOS container) and busybox halt's and poweroff's.
func TestStopSignals(t *testing.T) {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, stopSignals()...)
	defer signal.Stop(stop)
	for _, sig := range []syscall.Signal{sigRTMIN + 3, sigRTMIN + 4, syscall.SIGUSR1, syscall.SIGUSR2} {
		must(t, syscall.Kill(os.Getpid(), sig))
		select {
		case got := <-stop:
			if got != sig {
				t.Errorf("caught %v, want %v", got, sig)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("signal %d not caught", int(sig))
		}
	}
}
