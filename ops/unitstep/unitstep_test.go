package unitstep

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nixcfs/internal/guestroot"
	"nixcfs/ops"
)

func TestNspawnArgsFollowNixOS(t *testing.T) {
	dir := t.TempDir()
	l := ops.NewLayout()
	l.ProfileDir = filepath.Join(dir, "profiles")
	sys := filepath.Join(dir, "store", "sys")
	os.MkdirAll(sys, 0o755)
	os.WriteFile(filepath.Join(sys, "init"), nil, 0o755)
	os.MkdirAll(l.ProfilePath("foo"), 0o755)
	os.Symlink(sys, l.SystemLink("foo"))
	conf := ops.ParseConf([]byte("PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.1.1\nLOCAL_ADDRESS=10.233.1.2\nHOST_PORT=8080:80,tcp:2222:22\n"))
	args, err := NspawnArgs(l, "foo", conf)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	for _, want := range []string{"--keep-unit", "-M foo", "--notify-ready=yes", "--kill-signal=SIGRTMIN+3",
		"--bind-ro=/nix/store", "--network-namespace-path=/run/netns/nixcfs-foo",
		"--setenv=HOST_PORT=8080:80,tcp:2222:22", "--setenv=LOCAL_ADDRESS=10.233.1.2",
		"--bind=" + l.ProfilePath("foo") + ":/nix/var/nix/profiles"} {
		if !strings.Contains(joined, want) {
			t.Errorf("nspawn args lack %q: %s", want, joined)
		}
	}
	if strings.Contains(joined, "--port") {
		t.Errorf("nspawn refuses --port with --network-namespace-path: %s", joined)
	}
	if last := args[len(args)-1]; last != filepath.Join(sys, "init") {
		t.Errorf("init = %s, want the resolved store path", last)
	}
	if _, err := NspawnArgs(l, "bar", conf); !errors.Is(err, ops.ErrNotBuilt) {
		t.Errorf("unbuilt container: %v", err)
	}
}

// prepareRoot makes what nspawn and the guest's first boot expect in a root tree.
func TestPrepareRoot(t *testing.T) {
	root := t.TempDir()
	if err := prepareRoot(root); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		name string
		mode os.FileMode
	}{{"etc", 0o755}, {"var/lib", 0o755}, {"var/lib/private", 0o700}, {"root", 0o700}, {"usr", 0o755}} {
		fi, err := os.Lstat(filepath.Join(root, d.name))
		if err != nil || !fi.IsDir() || fi.Mode().Perm()&^d.mode != 0 {
			t.Errorf("%s: %v, %v; want a directory of mode %v at most", d.name, fi.Mode(), err, d.mode)
		}
	}
	for _, f := range []string{"etc/os-release", "etc/machine-id"} {
		if fi, err := os.Lstat(filepath.Join(root, f)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: %v, %v; want a regular file", f, fi, err)
		}
	}
	// Again over what it made: nothing to do, no error.
	if err := prepareRoot(root); err != nil {
		t.Errorf("a second time: %v", err)
	}
}

// A guest's etc, usr, var/lib, var/lib/private or root a symlink to a host directory,
// absolute or climbing out: the tree is refused (ErrEscape, naming the path), and
// nothing is made or changed in the host's directory.
func TestPrepareRootRefusesLinksOut(t *testing.T) {
	for _, planted := range []string{"etc", "usr", "var/lib", "var/lib/private", "root"} {
		for _, how := range []string{"absolute", "relative"} {
			t.Run(planted+"/"+how, func(t *testing.T) {
				base := t.TempDir()
				root, host := filepath.Join(base, "root"), filepath.Join(base, "host")
				if err := os.MkdirAll(filepath.Join(host, "keep"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(host, "keep", "file"), []byte("the host's own\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				before := hostSnapshot(t, host)
				link := filepath.Join(root, planted)
				if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
					t.Fatal(err)
				}
				target := host
				if how == "relative" {
					var err error
					if target, err = filepath.Rel(filepath.Dir(link), host); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.Symlink(target, link); err != nil {
					t.Fatal(err)
				}
				err := prepareRoot(root)
				if !errors.Is(err, guestroot.ErrEscape) {
					t.Errorf("prepareRoot: %v, want ErrEscape", err)
				} else if !strings.Contains(err.Error(), "mkdir "+planted+":") {
					t.Errorf("error %q does not name %s", err, planted)
				}
				if after := hostSnapshot(t, host); after != before {
					t.Errorf("the host's directory changed:\n%s\nwas:\n%s", after, before)
				}
				if got, err := os.Readlink(link); err != nil || got != target {
					t.Errorf("the guest's link: %q, %v; want it left to %q", got, err, target)
				}
			})
		}
	}
}

// hostSnapshot describes every entry under dir: name, type and mode, size, and each
// file's content.
func hostSnapshot(t *testing.T, dir string) string {
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
		fmt.Fprintf(&b, "%s %v %d %v", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
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
