package guestroot

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const conf = "etc/nixos/configuration.nix"

func TestReadFileInside(t *testing.T) {
	r, root, _ := hostTree(t)
	write(t, filepath.Join(root, "srv/config.nix"), "{ }\n")
	// NixOS keeps configuration.nix elsewhere through relative links; they stay inside.
	symlink(t, "../../srv/config.nix", filepath.Join(root, conf))
	for _, name := range []string{conf, "/" + conf, "srv/../srv/config.nix"} {
		data, err := r.ReadFile(name, 1<<20)
		if err != nil || string(data) != "{ }\n" {
			t.Errorf("ReadFile(%q) = %q, %v", name, data, err)
		}
	}
	fi, err := r.Stat(conf)
	if err != nil || fi.Size() != 4 || !fi.Mode().IsRegular() {
		t.Errorf("Stat = %v, %v", fi, err)
	}
	if _, err := r.ReadFile("etc/missing", 10); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

func TestReadFileEscapes(t *testing.T) {
	for _, tc := range []struct {
		what, link, target string
	}{
		{"etc is an absolute symlink to a host directory", "etc", "HOST"},
		{"etc/nixos climbs out", "etc/nixos", "../../../.."},
		{"the file is an absolute symlink to a host file", conf, "HOST/passwd"},
		{"the file is a symlink to the machine's passwd", conf, "/etc/passwd"},
		{"the file is a symlink to /dev/zero", conf, "/dev/zero"},
		{"the file leads through /proc/self/root", conf, "/proc/self/root/etc/passwd"},
		{"a relative symlink climbs out to the host file", conf, "../../../host/nixos/configuration.nix"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			r, root, host := hostTree(t)
			hostFile(t, filepath.Join(host, "passwd"), "root:x:0:0::/root:/bin/sh\n")
			write(t, filepath.Join(host, "nixos/configuration.nix"), "host's own\n")
			target := tc.target
			if len(target) >= 4 && target[:4] == "HOST" {
				target = host + target[4:]
			}
			symlink(t, target, filepath.Join(root, tc.link))
			_, err := r.ReadFile(conf, 1<<20)
			wantErr(t, err, ErrEscape, conf)
			_, err = r.Stat(conf)
			wantErr(t, err, ErrEscape, conf)
		})
	}
	r, _, _ := hostTree(t)
	_, err := r.ReadFile("../root/etc", 10)
	wantErr(t, err, ErrEscape, "../root/etc")
}

func TestReadFileMessage(t *testing.T) {
	r, root, _ := hostTree(t)
	symlink(t, "/etc", filepath.Join(root, "etc"))
	_, err := r.ReadFile(conf, 10)
	want := "read etc/nixos/configuration.nix: a symlink or .. leads out of the container's root tree"
	if err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestReadFileNotRegular(t *testing.T) {
	r, root, _ := hostTree(t)
	if err := os.MkdirAll(filepath.Join(root, "etc/nixos"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "etc/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The guest's root may make device nodes; opening one on the host opens the host's
	// device (here /dev/zero's numbers).
	if err := unix.Mknod(filepath.Join(root, "etc/zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
		t.Fatal(err)
	}
	symlink(t, "fifo", filepath.Join(root, "etc/to-fifo"))
	symlink(t, "../zero", filepath.Join(root, "etc/nixos/to-zero"))
	for _, name := range []string{"etc/fifo", "etc/to-fifo", "etc/zero", "etc/nixos/to-zero", "etc/nixos", "."} {
		done := make(chan error, 1)
		go func() {
			_, err := r.ReadFile(name, 16<<20)
			done <- err
		}()
		select {
		case err := <-done:
			wantErr(t, err, ErrNotRegular, name)
		case <-time.After(5 * time.Second):
			// The goroutine stays blocked on the FIFO: end its open with a writer.
			if f, err := os.OpenFile(filepath.Join(root, "etc/fifo"), os.O_WRONLY, 0); err == nil {
				f.Close()
			}
			t.Fatalf("ReadFile(%q) blocked", name)
		}
	}
}

func TestReadFileCap(t *testing.T) {
	r, root, _ := hostTree(t)
	write(t, filepath.Join(root, "etc/exact"), "0123456789")
	if data, err := r.ReadFile("etc/exact", 10); err != nil || string(data) != "0123456789" {
		t.Errorf("file of exactly the cap: %q, %v", data, err)
	}
	_, err := r.ReadFile("etc/exact", 9)
	wantErr(t, err, ErrTooLarge, "etc/exact")

	big := filepath.Join(root, "var/big")
	write(t, big, "")
	if err := os.Truncate(big, 1<<30); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = r.ReadFile("var/big", 16<<20)
	runtime.ReadMemStats(&after)
	wantErr(t, err, ErrTooLarge, "var/big")
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("reading a 1 GiB file with a 16 MiB cap allocated %d bytes", alloc)
	}
}

// A file that claims to be small but is not (a file of /proc, or one that grows
// while read) is still cut at the cap.
func TestReadCappedIgnoresClaimedSize(t *testing.T) {
	fd, err := unix.Open("/dev/zero", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = readCapped(fd, 0, 16<<20)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("error %v, want ErrTooLarge", err)
	}
	// Doubling up to the cap: 16 MiB + 8 MiB + 4 MiB ...
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 33<<20 {
		t.Errorf("allocated %d bytes for a 16 MiB cap", alloc)
	}
}

// Magic links need a proc mounted inside the tree, as in a running container's root
// reached through /proc/PID/root; and a device may be bind-mounted over a file.
func TestReadFileMounts(t *testing.T) {
	privateMountNamespace(t)
	r, root, _ := hostTree(t)
	for _, d := range []string{"proc", "etc/nixos"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mount(t, "proc", filepath.Join(root, "proc"), "proc")
	symlink(t, "../../proc/self/root/etc/passwd", filepath.Join(root, conf))
	_, err := r.ReadFile(conf, 1<<20)
	wantErr(t, err, ErrEscape, conf)
	if !strings.Contains(err.Error(), "magic link") {
		t.Errorf("error %q does not say it is a magic link", err)
	}
	if _, err := r.ReadFile("proc/self/cwd/go.mod", 1<<20); !errors.Is(err, ErrEscape) {
		t.Errorf("through /proc/self/cwd: %v, want ErrEscape", err)
	}
	// /proc/self is an ordinary relative symlink, inside the tree.
	if data, err := r.ReadFile("proc/self/comm", 100); err != nil || len(data) == 0 {
		t.Errorf("proc/self/comm: %q, %v", data, err)
	}

	write(t, filepath.Join(root, "etc/machine-id"), "")
	mount(t, "/dev/zero", filepath.Join(root, "etc/machine-id"), "")
	_, err = r.ReadFile("etc/machine-id", 16<<20)
	wantErr(t, err, ErrNotRegular, "etc/machine-id")
}

func TestStatDoesNotOpen(t *testing.T) {
	r, root, _ := hostTree(t)
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := r.Stat("fifo")
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("Stat(fifo) = %v, %v", fi, err)
	}
	if _, ok := fi.Sys().(*syscall.Stat_t); !ok {
		t.Errorf("Sys() is %T", fi.Sys())
	}
}

// A symlink loop inside the tree is an ordinary error, not taken for an escape.
func TestReadFileSymlinkLoop(t *testing.T) {
	r, root, _ := hostTree(t)
	symlink(t, "b", filepath.Join(root, "a"))
	symlink(t, "a", filepath.Join(root, "b"))
	_, err := r.ReadFile("a", 10)
	if !errors.Is(err, syscall.ELOOP) || errors.Is(err, ErrEscape) {
		t.Errorf("error %v, want ELOOP and not ErrEscape", err)
	}
}
