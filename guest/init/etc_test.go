package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteEtc(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	system := writeSystem(t, filepath.Join(t.TempDir(), "x-nixos-system-etc"), testConfig{hostName: "etc"})
	cfg := usersConfig(t, `"alice": {"isNormalUser": true, "group": "users", "home": "/home/alice", "createHome": true, "initialPassword": "pw"}`)
	cfg.Networking.HostName = "etc"
	must(t, writeEtc(root, system, cfg, fakeHash))

	for link, target := range map[string]string{"bin/sh": "sw/bin/sh", "usr/bin/env": "sw/bin/env"} {
		if got, err := os.Readlink(filepath.Join(root, link)); err != nil || got != filepath.Join(system, target) {
			t.Errorf("/%s -> %q, %v; want %s", link, got, err, filepath.Join(system, target))
		}
	}
	files := map[string]struct {
		mode os.FileMode
		has  string
	}{
		"etc/passwd":   {0o644, "root:x:0:0:System administrator:/root:/run/current-system/sw/bin/sh\n"},
		"etc/group":    {0o644, "wheel:x:1:\n"},
		"etc/shadow":   {0o600, "root:!:1::::::\nalice:HASH(pw):1::::::\n"},
		"etc/profile":  {0o644, `export PATH="/run/wrappers/bin:/run/current-system/sw/bin:/bin"`},
		"etc/shells":   {0o644, "/run/current-system/sw/bin/sh\n"},
		"etc/hostname": {0o644, "etc\n"},
	}
	for name, want := range files {
		path := filepath.Join(root, name)
		data, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(data), want.has) {
			t.Errorf("/%s = %q, %v; want it to hold %q", name, data, err, want.has)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want.mode {
			t.Errorf("/%s mode %v, %v; want %v", name, fi.Mode().Perm(), err, want.mode)
		}
	}
	for dir, mode := range map[string]os.FileMode{"root": 0o700, "var/empty": 0o555, "home/alice": 0o700} {
		if fi, err := os.Stat(filepath.Join(root, dir)); err != nil || !fi.IsDir() || fi.Mode().Perm() != mode {
			t.Errorf("/%s: %v, %v; want a directory, mode %v", dir, fi, err, mode)
		}
	}
	if os.Geteuid() == 0 {
		fi, err := os.Stat(filepath.Join(root, "home/alice"))
		must(t, err)
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1000 || st.Gid != 100 {
			t.Errorf("/home/alice owned by %d:%d, want 1000:100", st.Uid, st.Gid)
		}
	}

	// Again: nothing changes, not even the files' inodes.
	inodes := map[string]uint64{}
	for name := range files {
		fi, err := os.Stat(filepath.Join(root, name))
		must(t, err)
		inodes[name] = fi.Sys().(*syscall.Stat_t).Ino
	}
	must(t, writeEtc(root, system, cfg, fakeHash))
	for name, ino := range inodes {
		if fi, err := os.Stat(filepath.Join(root, name)); err != nil || fi.Sys().(*syscall.Stat_t).Ino != ino {
			t.Errorf("/%s was rewritten though nothing changed", name)
		}
	}

	// root sets a password (as busybox's passwd would); a new system with a
	// new user keeps it, and keeps alice's uid.
	shadow := filepath.Join(root, "etc/shadow")
	data, err := os.ReadFile(shadow)
	must(t, err)
	must(t, os.WriteFile(shadow, []byte(strings.Replace(string(data), "root:!:1::::::", "root:$6$x$y:20000:0:99999:7:::", 1)), 0o600))
	cfg2 := usersConfig(t, `"aaron": {"isNormalUser": true, "group": "users", "home": "/home/aaron"},
		"alice": {"isNormalUser": true, "group": "users", "home": "/home/alice", "createHome": true}`)
	must(t, writeEtc(root, system, cfg2, fakeHash))
	data, err = os.ReadFile(shadow)
	must(t, err)
	if !strings.Contains(string(data), "root:$6$x$y:20000:0:99999:7:::\n") || !strings.Contains(string(data), "alice:HASH(pw):1::::::\n") {
		t.Errorf("shadow after a new activation:\n%s", data)
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	must(t, err)
	if !strings.Contains(string(passwd), "alice:x:1000:") || !strings.Contains(string(passwd), "aaron:x:1001:") {
		t.Errorf("passwd after a new activation:\n%s", passwd)
	}
}

// A system without sw/bin (built before the guest had busybox) leaves
// /bin/sh alone and says why; the rest is written.
func TestWriteEtcWithoutBusybox(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	system := t.TempDir()
	err := writeEtc(root, system, usersConfig(t, ""), fakeHash)
	if err == nil || !strings.Contains(err.Error(), "the system has no "+system+"/sw/bin/sh") {
		t.Errorf("writeEtc = %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "bin/sh")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/bin/sh: %v; want none", err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/passwd")); err != nil {
		t.Errorf("/etc/passwd: %v", err)
	}
}

// The real busybox, chrooted into a root that init laid out: su as root
// needs no password, reads /etc/profile and passes the exit status on.
func TestBusyboxSuInLaidOutRoot(t *testing.T) {
	t.Parallel()
	busybox := staticBusybox(t)
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	root := t.TempDir()
	// The system's path must be the same inside the chroot: ROOT/ROOT links
	// back to /.
	inside := filepath.Join(root, root)
	must(t, os.MkdirAll(filepath.Dir(inside), 0o755))
	must(t, os.Symlink("/", inside))
	system := filepath.Join(root, "nix/store/x-nixos-system-su")
	must(t, os.MkdirAll(system, 0o755))
	store := filepath.Join(root, "nix/store/y-busybox")
	data, err := os.ReadFile(busybox)
	must(t, err)
	writeExecutable(t, store, data, 0o555)
	applets, err := busyboxApplets(store)
	must(t, err)
	must(t, layOutBusybox(filepath.Join(system, "sw/bin"), store, applets))
	must(t, replaceSymlink(system, filepath.Join(root, "run/current-system")))
	cfg := usersConfig(t, `"alice": {"isNormalUser": true, "group": "users", "home": "/home/alice", "createHome": true}`)
	must(t, writeEtc(root, system, cfg, hashPassword))

	su := func(args ...string) (string, int) {
		cmd := exec.Command(filepath.Join(system, "sw/bin/su"), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/usr/bin:/bin", "TERM=dumb"}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return string(out), exit.ExitCode()
		}
		must(t, err)
		return string(out), 0
	}
	if out, code := su("root", "-l", "-c", `echo "$PATH"; id -un; pwd; exit 7`); code != 7 ||
		out != "/run/wrappers/bin:/run/current-system/sw/bin:/bin\nroot\n/root\n" {
		t.Errorf("su root -l -c ... = %q, exit %d", out, code)
	}
	if out, code := su("alice", "-l", "-c", "exec id"); code != 0 || out != "uid=1000(alice) gid=100(users) groups=100(users)\n" {
		t.Errorf("su alice -l -c 'exec id' = %q, exit %d", out, code)
	}
	if out, code := su("root", "-c", "/bin/sh -c 'echo via /bin/sh'"); code != 0 || out != "via /bin/sh\n" {
		t.Errorf("/bin/sh = %q, exit %d", out, code)
	}
}
