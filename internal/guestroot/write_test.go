package guestroot

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteFile(t *testing.T) {
	r, root, _ := hostTree(t)
	if err := r.MkdirAll("etc/nixos", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile(conf, []byte("{ }\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, conf)
	wantContent(t, p, "{ }\n")
	if fi, err := os.Stat(p); err != nil || fi.Mode() != 0o640 {
		t.Errorf("mode %v, %v; want 0640", fi.Mode(), err)
	}
	if err := r.WriteFile("/"+conf, []byte("{ x = 1; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantContent(t, p, "{ x = 1; }\n")
	if entries, _ := os.ReadDir(filepath.Join(root, "etc/nixos")); len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
	for _, bad := range []string{"", "/", "etc/", "etc/..", "etc/."} {
		if err := r.WriteFile(bad, nil, 0o644); err == nil {
			t.Errorf("WriteFile(%q) succeeded", bad)
		}
	}
	if err := r.WriteFile("missing/file", nil, 0o644); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("into a missing directory: %v", err)
	}
}

// A relative symlink that stays inside the tree is followed for the parent.
func TestWriteFileThroughInTreeSymlink(t *testing.T) {
	r, root, _ := hostTree(t)
	if err := os.MkdirAll(filepath.Join(root, "srv/nixos"), 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, "../srv/nixos", filepath.Join(root, "etc/nixos"))
	if err := r.WriteFile(conf, []byte("{ }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantContent(t, filepath.Join(root, "srv/nixos/configuration.nix"), "{ }\n")
}

func TestWriteEscapes(t *testing.T) {
	for _, tc := range []struct {
		what, link, target string
	}{
		{"etc is an absolute symlink to a host directory", "etc", "HOST"},
		{"etc/nixos climbs out", "etc/nixos", "../../host"},
		{"etc/nixos climbs to the machine's root", "etc/nixos", "../../../../../../../../.."},
	} {
		t.Run(tc.what, func(t *testing.T) {
			r, root, host := hostTree(t)
			hostFile(t, filepath.Join(host, "configuration.nix"), "host's own\n")
			hostFile(t, filepath.Join(host, "nixos/configuration.nix"), "host's own\n")
			target := tc.target
			if target == "HOST" {
				target = host
			}
			symlink(t, target, filepath.Join(root, tc.link))
			wantErr(t, r.WriteFile(conf, []byte("pwned"), 0o644), ErrEscape, conf)
			_, err := r.CreateIfMissing(conf, []byte("pwned"), 0o644)
			wantErr(t, err, ErrEscape, conf)
			wantErr(t, r.MkdirAll("etc/nixos/sub", 0o755), ErrEscape, "etc/nixos/sub")
			for _, p := range []string{filepath.Join(host, "sub"), filepath.Join(host, "nixos/sub")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("MkdirAll made %s on the host", p)
				}
			}
			if entries, _ := os.ReadDir(host); len(entries) != 2 {
				t.Errorf("host directory changed: %v", entries)
			}
		})
	}
}

// A symlink planted at the name is replaced by the file, never written through.
func TestWriteFileReplacesSymlink(t *testing.T) {
	r, root, host := hostTree(t)
	hostFile(t, filepath.Join(host, "resolv.conf"), "nameserver 192.0.2.1\n")
	for _, target := range []string{filepath.Join(host, "resolv.conf"), "../../host/resolv.conf", "/etc/resolv.conf", filepath.Join(host, "absent")} {
		os.RemoveAll(filepath.Join(root, "etc"))
		symlink(t, target, filepath.Join(root, "etc/resolv.conf"))
		if err := r.WriteFile("etc/resolv.conf", []byte("nameserver 10.0.0.1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, "etc/resolv.conf")
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("after replacing a symlink to %s: %v, %v", target, fi, err)
		}
		wantContent(t, p, "nameserver 10.0.0.1\n")
	}
	if _, err := os.Lstat(filepath.Join(host, "absent")); err == nil {
		t.Error("a dangling symlink's target was created on the host")
	}
}

// The temp file is created with O_EXCL|O_NOFOLLOW: a symlink at the temp name (here
// made predictable) is skipped, not written through.
func TestWriteFilePlantedTempName(t *testing.T) {
	r, root, host := hostTree(t)
	hostFile(t, filepath.Join(host, "shadow"), "host's own\n")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	names := []string{".resolv.conf.tmp1", ".resolv.conf.tmp2"}
	symlink(t, filepath.Join(host, "shadow"), filepath.Join(root, "etc", names[0]))
	next := 0
	tempName := func(string) string { next++; return names[next-1] }
	if err := r.writeFile("etc/resolv.conf", []byte("ok\n"), 0o644, tempName); err != nil {
		t.Fatal(err)
	}
	if next != 2 {
		t.Errorf("%d temp names tried, want 2", next)
	}
	wantContent(t, filepath.Join(root, "etc/resolv.conf"), "ok\n")
	wantSymlink(t, filepath.Join(root, "etc", names[0]), filepath.Join(host, "shadow"))
}

func TestWriteFileOverDirectory(t *testing.T) {
	r, root, _ := hostTree(t)
	if err := os.MkdirAll(filepath.Join(root, "etc/resolv.conf/x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile("etc/resolv.conf", []byte("x"), 0o644); err == nil {
		t.Error("replaced a directory")
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "etc")); len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
}

func TestCreateIfMissing(t *testing.T) {
	r, root, host := hostTree(t)
	hostFile(t, filepath.Join(host, "os-release"), "ID=host\n")
	if err := r.MkdirAll("etc", 0o755); err != nil {
		t.Fatal(err)
	}
	created, err := r.CreateIfMissing("etc/machine-id", nil, 0o444)
	if err != nil || !created {
		t.Fatalf("CreateIfMissing = %v, %v", created, err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "etc/machine-id")); err != nil || fi.Size() != 0 || fi.Mode() != 0o444 {
		t.Errorf("machine-id: %v, %v", fi, err)
	}
	write(t, filepath.Join(root, "etc/machine-id"), "abc\n")
	if created, err := r.CreateIfMissing("etc/machine-id", nil, 0o644); err != nil || created {
		t.Errorf("over an existing file: %v, %v", created, err)
	}
	wantContent(t, filepath.Join(root, "etc/machine-id"), "abc\n")

	for _, target := range []string{filepath.Join(host, "os-release"), filepath.Join(host, "absent"), "../../host/os-release", "/etc/os-release"} {
		p := filepath.Join(root, "etc/os-release")
		os.Remove(p)
		symlink(t, target, p)
		if created, err := r.CreateIfMissing("etc/os-release", nil, 0o644); err != nil || created {
			t.Errorf("over a symlink to %s: %v, %v", target, created, err)
		}
		wantSymlink(t, p, target)
	}
	if _, err := os.Lstat(filepath.Join(host, "absent")); err == nil {
		t.Error("a dangling symlink's target was created on the host")
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "etc")); len(entries) != 2 {
		t.Errorf("temp files left behind: %v", entries)
	}
}

func TestMkdirAll(t *testing.T) {
	r, root, _ := hostTree(t)
	if err := r.MkdirAll("var/lib/private", 0o700); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "var/lib/private")); err != nil || !fi.IsDir() {
		t.Fatalf("var/lib/private: %v, %v", fi, err)
	}
	if err := r.MkdirAll("var/lib/private", 0o700); err != nil {
		t.Errorf("again: %v", err)
	}
	for _, name := range []string{"", "/", ".", "var/./lib//"} {
		if err := r.MkdirAll(name, 0o755); err != nil {
			t.Errorf("MkdirAll(%q): %v", name, err)
		}
	}
	// In-tree symlinks are followed.
	symlink(t, "var/lib", filepath.Join(root, "lib"))
	if err := r.MkdirAll("lib/nixos", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/nixos")); err != nil {
		t.Error(err)
	}
	write(t, filepath.Join(root, "etc"), "a file")
	if err := r.MkdirAll("etc/nixos", 0o755); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("through a file: %v, want ENOTDIR", err)
	}
	if err := r.MkdirAll("etc", 0o755); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("at a file: %v, want ENOTDIR", err)
	}
	wantErr(t, r.MkdirAll("../outside", 0o755), ErrEscape, "../outside")
	if _, err := os.Lstat(filepath.Join(root, "../outside")); err == nil {
		t.Error("made a directory beside the tree")
	}
}
