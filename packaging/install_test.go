package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nixcfs/internal/guestroot"
	"nixcfs/testhost"
)

// make install on a systemd host, inside the test host: the files land in /usr/local,
// the unit verifies with the man pages it names installed, and once enabled it comes
// up with multi-user.target as at boot: the mount is there and a container with
// AUTO_START=1 runs. Stopping the unit unmounts and leaves the container running;
// make uninstall disables it and removes every file.
func TestInstallOnSystemdHost(t *testing.T) {
	p := testhost.Require(t)
	const mnt = "/mnt/nixc"
	// The test host's /usr is the machine's, read-only: /usr/local gets a writable
	// layer of its own for this test.
	layer := t.TempDir()
	for _, d := range []string{"upper", "work"} {
		os.Mkdir(filepath.Join(layer, d), 0o755)
	}
	run(t, nil, "mount", "-t", "overlay", "overlay", "-o",
		"lowerdir=/usr/local,upperdir="+layer+"/upper,workdir="+layer+"/work", "/usr/local")
	t.Cleanup(func() { exec.Command("umount", "/usr/local").Run() })

	// Builds inside the test host need its Nix settings (no nixbld group), and the
	// guest system for <nixpkgs/nixos>: a drop-in gives the unit both.
	nixConf := t.TempDir()
	os.WriteFile(filepath.Join(nixConf, "nix.conf"), []byte("build-users-group =\nsandbox = false\nsubstituters =\n"), 0o644)
	dropIn := "/run/systemd/system/nixcfs.service.d"
	os.MkdirAll(dropIn, 0o755)
	os.WriteFile(filepath.Join(dropIn, "50-testhost.conf"), []byte("[Service]\nEnvironment=NIXCFS_NIXOS_PATH="+p.Guest+" NIX_CONF_DIR="+nixConf+"\n"), 0o644)
	t.Cleanup(func() {
		os.RemoveAll(dropIn)
		exec.Command("systemctl", "daemon-reload").Run()
	})

	run(t, nil, "make", "--no-print-directory", "install")
	t.Cleanup(func() {
		exec.Command("systemctl", "disable", "--now", "nixcfs.service").Run()
		cmd := exec.Command("make", "--no-print-directory", "uninstall")
		cmd.Dir, cmd.Env = repo, cleanEnv()
		cmd.Run()
		os.Remove(mnt)
	})
	for _, f := range installed("/usr/local") {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	// systemd-analyze verify runs `man` for each man: page of the unit's Documentation=.
	// The test host's /etc is empty, and man-db stops without a manpath.config: an
	// empty one, and MANPATH the directory make install put them in.
	if _, err := os.Stat("/etc/manpath.config"); os.IsNotExist(err) {
		os.WriteFile("/etc/manpath.config", nil, 0o644)
		t.Cleanup(func() { os.Remove("/etc/manpath.config") })
	}
	unit := "/usr/local/lib/systemd/system/nixcfs.service"
	verify := exec.Command("systemd-analyze", "verify", unit)
	verify.Env = append(os.Environ(), "MANPATH=/usr/local/share/man")
	if out, err := verify.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify %s (with its man pages): %v\n%s", unit, err, out)
	}

	bin := "/usr/local/bin/nixcfs"
	guestEnv := []string{"NIXCFS_NIXOS_PATH=" + p.Guest}
	run(t, guestEnv, bin, "create", "inst1", "--auto-start")
	t.Cleanup(func() {
		cmd := exec.Command(p.Bin, "destroy", "inst1")
		cmd.Env = append(os.Environ(), guestEnv...)
		cmd.Run()
	})

	// As at boot: multi-user.target pulls in what is enabled, and its start job waits
	// for the unit, which is active once the filesystem is mounted (Type=notify).
	run(t, nil, "systemctl", "enable", "nixcfs.service")
	run(t, nil, "systemctl", "start", "multi-user.target")
	if got := strings.TrimSpace(run(t, nil, "systemctl", "is-active", "nixcfs.service")); got != "active" {
		t.Fatalf("nixcfs.service is %s after multi-user.target started", got)
	}
	if !mountedAt(t, mnt) {
		t.Fatalf("%s is not mounted while nixcfs.service is active", mnt)
	}
	entries, err := os.ReadDir(mnt)
	if err != nil || len(entries) == 0 || entries[0].Name() != "events" {
		t.Errorf("ls %s: %v %v", mnt, entries, err)
	}
	waitFile(t, mnt+"/inst1/state", "running\n", 60*time.Second)
	if log := run(t, nil, "journalctl", "-u", "nixcfs.service", "-o", "cat"); !strings.Contains(log, `"message":"autostarted"`) {
		t.Errorf("the journal does not say inst1 was autostarted:\n%s", log)
	}

	run(t, nil, "systemctl", "stop", "nixcfs.service")
	if mountedAt(t, mnt) {
		t.Errorf("%s is still mounted after systemctl stop nixcfs", mnt)
	}
	// The containers are units of their own: they go on without the mount.
	if got := run(t, guestEnv, bin, "status", "inst1"); got != "up\n" {
		t.Errorf("nixcfs status inst1 after systemctl stop nixcfs: %q, want up", got)
	}
	if out, err := exec.Command("systemctl", "is-active", "container@inst1.service").Output(); string(out) != "active\n" {
		t.Errorf("container@inst1.service after systemctl stop nixcfs: %q, %v", out, err)
	}
	run(t, guestEnv, bin, "stop", "inst1")
	run(t, guestEnv, bin, "destroy", "inst1")

	run(t, nil, "make", "--no-print-directory", "uninstall")
	for _, f := range installed("/usr/local") {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("make uninstall left %s", f)
		}
	}
	if _, err := os.Lstat("/etc/systemd/system/multi-user.target.wants/nixcfs.service"); err == nil {
		t.Error("make uninstall left nixcfs.service enabled")
	}
	if got := strings.TrimSpace(run(t, nil, "systemctl", "show", "-p", "LoadState", "--value", "nixcfs.service")); got != "not-found" {
		t.Errorf("after make uninstall systemd still has nixcfs.service: %s", got)
	}
}

// mountedAt tells whether a nixcfs filesystem is mounted at path.
func mountedAt(t *testing.T, path string) bool {
	t.Helper()
	fstype, err := guestroot.MountedAt(path)
	if err != nil {
		t.Fatal(err)
	}
	return fstype == "fuse.nixcfs"
}

// waitFile waits until path holds want.
func waitFile(t *testing.T, path, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := os.ReadFile(path)
		if err == nil && string(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never held %q (last: %q, %v)", path, want, got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
