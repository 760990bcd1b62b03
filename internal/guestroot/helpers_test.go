package guestroot

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hostTree makes a temp directory holding "root" (a container's root tree, opened) and
// "host" (files of the host that must survive whatever the guest planted).
func hostTree(t *testing.T) (r *Root, root, host string) {
	t.Helper()
	base := t.TempDir()
	root, host = filepath.Join(base, "root"), filepath.Join(base, "host")
	for _, d := range []string{root, host} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, root, host
}

// hostFile writes a host file whose content a test checks at its end.
func hostFile(t *testing.T, path, content string) {
	t.Helper()
	write(t, path, content)
	t.Cleanup(func() {
		data, err := os.ReadFile(path)
		if err != nil || string(data) != content {
			t.Errorf("host file %s changed: %q, %v (want %q)", path, data, err, content)
		}
	})
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

// wantErr checks that err matches target and names the path inside the tree.
func wantErr(t *testing.T, err, target error, name string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
	if !strings.Contains(err.Error(), name+":") {
		t.Errorf("error %q does not name %s", err, name)
	}
}

func wantContent(t *testing.T, path, content string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(data, []byte(content)) {
		t.Fatalf("%s: %q, %v; want %q", path, data, err, content)
	}
}

func wantSymlink(t *testing.T, path, target string) {
	t.Helper()
	got, err := os.Readlink(path)
	if err != nil || got != target {
		t.Fatalf("%s: symlink to %q, %v; want the symlink to %q left alone", path, got, err, target)
	}
}

// privateMountNamespace moves the calling test's goroutine, locked to its thread, into
// a mount namespace of its own in which no mount propagates back to the machine. The
// thread is never unlocked, so Go ends it with the test and the namespace, with every
// mount the test made in it, goes away even if a cleanup never ran. Call it first
// thing in the test, before anything that starts goroutines.
func privateMountNamespace(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("mount namespaces need root")
	}
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		t.Fatalf("unshare the mount namespace: %v", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		t.Fatalf("make mounts private: %v", err)
	}
}

// mount mounts (bind, if fstype is "") src at dst and unmounts it at cleanup, before a
// temp directory holding it is removed (cleanups run last-in first-out).
func mount(t *testing.T, src, dst, fstype string) {
	t.Helper()
	flags := uintptr(0)
	if fstype == "" {
		flags = unix.MS_BIND
	}
	if err := unix.Mount(src, dst, fstype, flags, ""); err != nil {
		t.Fatalf("mount %s on %s: %v", src, dst, err)
	}
	t.Cleanup(func() { unix.Unmount(dst, unix.MNT_DETACH) })
}

// procInTree mounts a proc at the tree's proc/, as a running container's root reached
// through /proc/PID/root has one: its magic links (proc/self/root, proc/self/fd/N)
// lead anywhere on the host. Call privateMountNamespace first.
func procInTree(t *testing.T, root string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	mount(t, "proc", filepath.Join(root, "proc"), "proc")
}

// snapshot describes every entry under dir (type, mode, size, link target) and each
// file's content, for a check that nothing there changed.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d", p, fi.Mode(), fi.Size())
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", target)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %q", data)
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
