package guestroot

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
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

// A running container's proc is mounted in its tree: a relative symlink that stays
// inside until it meets a magic link there (proc/self/root, proc/self/fd/N of a host
// directory the process holds open) would lead to the host. Writes and directories
// through one are refused, and nothing is made on the host. (No subtests: they would
// run on other threads, outside this one's mount namespace.)
func TestWritesThroughMagicLinks(t *testing.T) {
	privateMountNamespace(t)
	r, root, host := hostTree(t)
	procInTree(t, root)
	write(t, filepath.Join(host, "nixos/configuration.nix"), "host's own\n")
	hostDir, err := os.Open(filepath.Join(host, "nixos"))
	if err != nil {
		t.Fatal(err)
	}
	defer hostDir.Close()
	before := snapshot(t, host)
	for _, target := range []string{
		"../proc/self/root" + filepath.Join(host, "nixos"),
		"../proc/thread-self/root" + filepath.Join(host, "nixos"),
		fmt.Sprintf("../proc/self/fd/%d", hostDir.Fd()),
	} {
		link := filepath.Join(root, "etc/nixos")
		os.Remove(link)
		symlink(t, target, link)
		// The naive way reaches the host: the test is set up right.
		if data, err := os.ReadFile(filepath.Join(root, conf)); err != nil || string(data) != "host's own\n" {
			t.Fatalf("%s: the plant does not lead to the host's file: %q, %v", target, data, err)
		}
		for _, tc := range []struct {
			what, name string
			err        error
		}{
			{"WriteFile", conf, r.WriteFile(conf, []byte("pwned\n"), 0o644)},
			{"MkdirAll below the link", "etc/nixos/sub", r.MkdirAll("etc/nixos/sub", 0o755)},
			{"MkdirAll of the link", "etc/nixos", r.MkdirAll("etc/nixos", 0o755)},
			{"CreateIfMissing", "etc/nixos/new", func() error {
				_, err := r.CreateIfMissing("etc/nixos/new", []byte("pwned\n"), 0o644)
				return err
			}()},
		} {
			wantErr(t, tc.err, ErrEscape, tc.name)
			if !strings.Contains(tc.err.Error(), "magic link") {
				t.Errorf("%s through %s: error %q does not say it is a magic link", tc.what, target, tc.err)
			}
		}
		if after := snapshot(t, host); after != before {
			t.Errorf("%s: the host's directory changed:\n%s\nwas:\n%s", target, after, before)
		}
	}
}

// A write onto a full filesystem fails with ENOSPC, naming the file, and leaves the
// old content and no temp file; the space the temp file took is given back.
func TestWriteFileNoSpace(t *testing.T) {
	privateMountNamespace(t)
	r, root, _ := hostTree(t)
	dir := filepath.Join(root, "etc/nixos")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount a 64 KiB tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := r.WriteFile(conf, []byte("{ }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 128<<10)
	err := r.WriteFile(conf, big, 0o644)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a 128 KiB write onto a 64 KiB tmpfs: %v, want ENOSPC", err)
	}
	wantErr(t, err, syscall.ENOSPC, conf)
	wantContent(t, filepath.Join(root, conf), "{ }\n")
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
	// Freed: a write that fits after the old file does.
	fits := bytes.Repeat([]byte("y"), 32<<10)
	if err := r.WriteFile(conf, fits, 0o644); err != nil {
		t.Errorf("a 32 KiB write after the failed one: %v", err)
	}
}
