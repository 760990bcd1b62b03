package guestroot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// guestTree fills root with what a hostile guest may leave behind, pointing at host.
func guestTree(t *testing.T, root, host string) {
	t.Helper()
	write(t, filepath.Join(root, "etc/nixos/configuration.nix"), "{ }\n")
	write(t, filepath.Join(root, "var/lib/private/x/y/z"), "deep\n")
	symlink(t, host, filepath.Join(root, "etc/abs"))
	symlink(t, "../../host", filepath.Join(root, "etc/rel"))
	symlink(t, filepath.Join(host, "keep"), filepath.Join(root, "etc/file-link"))
	symlink(t, host, filepath.Join(root, "var/lib/private/x/y/up"))
	if err := unix.Mkfifo(filepath.Join(root, "etc/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(root, "etc/zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
		t.Fatal(err)
	}
	// Modes do not stop root, but a walk that relied on them would.
	if err := os.Chmod(filepath.Join(root, "var/lib/private"), 0); err != nil {
		t.Fatal(err)
	}
}

func wantGone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there: %v", path, err)
	}
}

func wantNoMounts(t *testing.T, dir string) {
	t.Helper()
	if m, err := MountsUnder(dir); err != nil || len(m) > 0 {
		t.Errorf("mounts left under %s: %v, %v", dir, m, err)
	}
}

func TestRemoveTreeSymlinksInside(t *testing.T) {
	_, root, host := hostTree(t)
	hostFile(t, filepath.Join(host, "keep"), "host data\n")
	guestTree(t, root, host)
	if err := RemoveTree(root); err != nil {
		t.Fatal(err)
	}
	wantGone(t, root)
	if err := RemoveTree(root); err != nil {
		t.Errorf("a missing tree: %v", err)
	}
}

// A root path that is itself a symlink: the link goes, not what it points at.
func TestRemoveTreeDirIsSymlink(t *testing.T) {
	_, root, host := hostTree(t)
	hostFile(t, filepath.Join(host, "keep"), "host data\n")
	link := filepath.Join(filepath.Dir(root), "link")
	symlink(t, host, link)
	if err := RemoveTree(link); err != nil {
		t.Fatal(err)
	}
	wantGone(t, link)
}

func TestRemoveTreeRefusesRoot(t *testing.T) {
	if err := RemoveTree("/"); err == nil {
		t.Fatal("RemoveTree(/) succeeded")
	}
}

func TestRemoveTreeMounts(t *testing.T) {
	privateMountNamespace(t)
	_, root, host := hostTree(t)
	hostFile(t, filepath.Join(host, "keep"), "host data\n")
	hostFile(t, filepath.Join(host, "resolv.conf"), "nameserver 192.0.2.1\n")
	guestTree(t, root, host)
	for _, d := range []string{"mnt/data", "var/with space", "run", "nix/store"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mount(t, host, filepath.Join(root, "mnt/data"), "")
	mount(t, host, filepath.Join(root, "var/with space"), "")
	mount(t, filepath.Join(host, "resolv.conf"), filepath.Join(root, "etc/nixos/configuration.nix"), "")
	// Two mounts at one place, and one inside another.
	mount(t, "tmpfs", filepath.Join(root, "run"), "tmpfs")
	mount(t, "tmpfs", filepath.Join(root, "run"), "tmpfs")
	if err := os.Mkdir(filepath.Join(root, "run/host"), 0o755); err != nil {
		t.Fatal(err)
	}
	mount(t, host, filepath.Join(root, "run/host"), "")
	// nspawn's read-only store, and the tree mounted on itself.
	mount(t, host, filepath.Join(root, "nix/store"), "")
	if err := unix.Mount("", filepath.Join(root, "nix/store"), "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	mount(t, root, root, "")

	m, err := MountsUnder(root)
	if err != nil || len(m) != 8 {
		t.Fatalf("MountsUnder = %q, %v; want 8", m, err)
	}
	for i := 1; i < len(m); i++ {
		if strings.Count(m[i], "/") > strings.Count(m[i-1], "/") {
			t.Errorf("MountsUnder = %q, not deepest first", m)
		}
	}
	if err := RemoveTree(root); err != nil {
		t.Fatal(err)
	}
	wantGone(t, root)
	wantNoMounts(t, root)
}

// /var/lib/nixos-containers may be a symlink: mounts are found by the real path.
func TestRemoveTreeParentSymlink(t *testing.T) {
	privateMountNamespace(t)
	_, root, host := hostTree(t)
	hostFile(t, filepath.Join(host, "keep"), "host data\n")
	containers := filepath.Join(filepath.Dir(root), "containers")
	symlink(t, filepath.Dir(root), containers)
	viaLink := filepath.Join(containers, "root")
	guestTree(t, root, host)
	if err := os.MkdirAll(filepath.Join(root, "mnt"), 0o755); err != nil {
		t.Fatal(err)
	}
	mount(t, host, filepath.Join(root, "mnt"), "")
	if m, err := MountsUnder(viaLink); err != nil || len(m) != 1 || m[0] != filepath.Join(root, "mnt") {
		t.Fatalf("MountsUnder(%s) = %q, %v", viaLink, m, err)
	}
	if err := RemoveTree(viaLink); err != nil {
		t.Fatal(err)
	}
	wantGone(t, root)
	wantNoMounts(t, root)
	wantSymlink(t, containers, filepath.Dir(root))
}

// The deletion itself, should a mount be left in the tree, stops at it.
func TestRemoveDirStopsAtMount(t *testing.T) {
	privateMountNamespace(t)
	_, root, host := hostTree(t)
	hostFile(t, filepath.Join(host, "keep"), "host data\n")
	hostFile(t, filepath.Join(host, "sub/keep"), "host data\n")
	if err := os.MkdirAll(filepath.Join(root, "mnt/data"), 0o755); err != nil {
		t.Fatal(err)
	}
	mount(t, host, filepath.Join(root, "mnt/data"), "")
	parent, err := unix.Open(filepath.Dir(root), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(parent)
	err = removeDir(parent, "root")
	if !errors.Is(err, syscall.EBUSY) || !strings.Contains(err.Error(), "mnt/data:") {
		t.Errorf("error %v, want EBUSY naming mnt/data", err)
	}
}

// However deep the guest nests directories, the walk holds a few descriptors.
func TestRemoveTreeDeep(t *testing.T) {
	_, root, _ := hostTree(t)
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	const depth = 3000 // deeper than PATH_MAX allows to name
	for i := range depth {
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			unix.Mknodat(fd, "f", unix.S_IFREG|0o644, 0)
		}
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		fd = next
	}
	unix.Close(fd)
	var limit unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	if limit.Cur >= depth {
		// With fewer descriptors allowed than levels, a walk that held one per level
		// would fail.
		low := limit
		low.Cur = 256
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
			t.Fatal(err)
		}
		defer unix.Setrlimit(unix.RLIMIT_NOFILE, &limit)
	}
	if err := RemoveTree(root); err != nil {
		t.Fatal(err)
	}
	wantGone(t, root)
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:   "/a b",
		`/tab\011x`: "/tab\tx",
		`/back\134`: `/back\`,
		`/short\04`: `/short\04`,
		`/plain`:    "/plain",
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
