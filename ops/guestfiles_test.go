package ops

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// show-host-key: a key the guest turned into a symlink to a host file is refused, and
// says so, unless the other key is there.
func TestHostKeyRefusesAnEscapeAndSaysSo(t *testing.T) {
	l := Layout{StateDir: t.TempDir()}
	ssh := filepath.Join(l.RootPath("hk"), "etc", "ssh")
	if err := os.MkdirAll(ssh, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := l.HostKey("hk"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no key: %v, want not-exist", err)
	}
	secret := filepath.Join(t.TempDir(), "host-secret")
	if err := os.WriteFile(secret, []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(ssh, "ssh_host_ed25519_key.pub")); err != nil {
		t.Fatal(err)
	}
	key, err := l.HostKey("hk")
	if !errors.Is(err, ErrEscape) || len(key) != 0 {
		t.Errorf("ed25519 key a symlink out, no ECDSA key: %q, %v; want ErrEscape", key, err)
	}
	if err := os.WriteFile(filepath.Join(ssh, "ssh_host_ecdsa_key.pub"), []byte("ecdsa-sha2-nistp256 AAAA\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if key, err := l.HostKey("hk"); err != nil || string(key) != "ecdsa-sha2-nistp256 AAAA\n" {
		t.Errorf("with an ECDSA key too: %q, %v", key, err)
	}
}
