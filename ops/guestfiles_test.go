package ops

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// bareManager is a Manager over the layout l that knows the containers names, with no
// systemd, inotify or builder: for the methods that only read and write files and note
// the outcome in Status.
func bareManager(l Layout, names ...string) *Manager {
	m := &Manager{l: l, log: zerolog.Nop(), reg: newRegistry(zerolog.Nop())}
	for _, n := range names {
		m.reg.records[n] = newRecord(n)
	}
	return m
}

// wantStatusError checks that the container's status error line holds each of want.
func wantStatusError(t *testing.T, m *Manager, name string, want ...string) {
	t.Helper()
	st, err := m.Status(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(st.Error, w) {
			t.Errorf("status error %q does not say %q", st.Error, w)
		}
	}
}

// show-host-key: a key the guest turned into a symlink to a host file, a FIFO or a file
// over the cap is refused, and the status says so, naming the file, unless the other
// key is there.
func TestHostKeyRefusesAnEscapeAndSaysSo(t *testing.T) {
	l := Layout{StateDir: t.TempDir()}
	m := bareManager(l, "hk")
	ssh := filepath.Join(l.RootPath("hk"), "etc", "ssh")
	if err := os.MkdirAll(ssh, 0o755); err != nil {
		t.Fatal(err)
	}
	ed25519 := filepath.Join(ssh, "ssh_host_ed25519_key.pub")
	if _, err := m.HostKey("hk"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no key: %v, want not-exist", err)
	}
	if st, _ := m.Status("hk"); st.Error != "" {
		t.Errorf("no key noted as a failure: %q", st.Error)
	}

	secret := filepath.Join(t.TempDir(), "host-secret")
	if err := os.WriteFile(secret, []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, ed25519); err != nil {
		t.Fatal(err)
	}
	key, err := m.HostKey("hk")
	if !errors.Is(err, ErrEscape) || len(key) != 0 {
		t.Errorf("ed25519 key a symlink out, no ECDSA key: %q, %v; want ErrEscape", key, err)
	}
	wantStatusError(t, m, "hk", "etc/ssh/ssh_host_ed25519_key.pub", "leads out")

	os.Remove(ed25519)
	if err := unix.Mkfifo(ed25519, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := m.HostKey("hk"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("ed25519 key a FIFO: %v; want ErrNotRegular", err)
	}
	wantStatusError(t, m, "hk", "etc/ssh/ssh_host_ed25519_key.pub", "not a regular file: a FIFO")

	// The cap of small files (16 KiB) is reached, not passed.
	os.Remove(ed25519)
	atCap := strings.Repeat("k", maxSmallFile)
	if err := os.WriteFile(ed25519, []byte(atCap), 0o644); err != nil {
		t.Fatal(err)
	}
	if key, err := m.HostKey("hk"); err != nil || string(key) != atCap {
		t.Errorf("a key of 16 KiB: %d bytes, %v", len(key), err)
	}
	if err := os.WriteFile(ed25519, []byte(strings.Repeat("k", 17<<10)), 0o644); err != nil {
		t.Fatal(err)
	}
	if key, err := m.HostKey("hk"); !errors.Is(err, ErrTooLarge) || len(key) != 0 {
		t.Errorf("a key of 17 KiB: %d bytes, %v; want ErrTooLarge", len(key), err)
	}
	wantStatusError(t, m, "hk", "etc/ssh/ssh_host_ed25519_key.pub", "file too large")

	os.Remove(ed25519)
	if err := os.Symlink(secret, ed25519); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ssh, "ssh_host_ecdsa_key.pub"), []byte("ecdsa-sha2-nistp256 AAAA\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if key, err := m.HostKey("hk"); err != nil || string(key) != "ecdsa-sha2-nistp256 AAAA\n" {
		t.Errorf("with an ECDSA key too: %q, %v", key, err)
	}
	if _, err := m.HostKey("nokey"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown container: %v, want ErrNotFound", err)
	}
}
