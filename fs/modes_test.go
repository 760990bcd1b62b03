package fs

import (
	"os"
	"strings"
	"testing"

	"nixcfs/ops"
)

// The files that may hold secrets (a configuration's passwords and keys, and the logs
// that echo them) are root's alone; the others are root's to write and everyone's to
// read, or read-only.
func TestFileModes(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{current: 1, gens: []fakeGeneration{{n: 1, text: ops.DefaultConfig("web", "")}},
		rejected: []byte("{ }\n")}, false)
	os.WriteFile(f.buildLogPath("web"), []byte("building\n"), 0o644)
	want := map[string]string{
		"config.nix": "600", "build.log": "400", "log": "400",
		"generations/1/config.nix": "400", "config.nix.rejected": "400",
		"state": "644", "address": "644", "host-address": "644", "autostart": "644",
		"ports": "644", "generation": "644", "memory.max": "644", "cpu.max": "644",
		"pids.max": "644", "cpu.weight": "644", "io.weight": "644",
		"status": "444", "stats": "444", "events": "444",
		"generations/1/system": "444", "generations/1/built": "444",
	}
	for file, mode := range want {
		if got := mustSh(t, mnt, `stat -c %a:%U:%F $MNT/web/`+file); got != mode+":root:regular file\n" &&
			got != mode+":root:regular empty file\n" {
			t.Errorf("%s: %s, want mode %s, root's, a regular file", file, strings.TrimSpace(got), mode)
		}
	}
	// Every regular file of the directory has its mode checked here.
	for _, name := range FileNames() {
		if _, ok := want[name]; !ok && name != "generations" {
			t.Errorf("%s: no mode checked", name)
		}
	}
}

// With --allow-other (Options.AllowOther) other users read the container's files but
// the secret ones, and write none; without it they read nothing. As root, the mount
// needs no user_allow_other in /etc/fuse.conf (that is fusermount's rule for users).
// The reader is nobody; it reaches the mount through a directory it cannot search
// (the test's temporary one) by starting in the container's directory, entered as
// root.
func TestAllowOther(t *testing.T) {
	asNobody := `cd $MNT/web && setpriv --reuid=65534 --regid=65534 --clear-groups `
	for _, allow := range []bool{true, false} {
		f, mnt, _ := mountFakeWith(t, Options{AllowOther: allow})
		f.add("web", &fakeContainer{current: 1, gens: []fakeGeneration{{n: 1, text: ops.DefaultConfig("web", "")}}}, false)
		os.WriteFile(f.buildLogPath("web"), []byte("building\n"), 0o644)
		f.set(func() { f.journal = "2024-01-01T00:00:00+0000 host systemd[1]: Started container web.\n" })
		if !allow {
			failSh(t, mnt, asNobody+`cat state`, "Permission denied")
			continue
		}
		if got := mustSh(t, mnt, asNobody+`sh -c 'cat state status memory.max generations/1/system && ls -l > /dev/null && id -u'`); !strings.HasPrefix(got, "stopped\nname web\n") || !strings.HasSuffix(got, "\n65534\n") {
			t.Errorf("nobody's reads:\n%s", got)
		}
		for _, secret := range []string{"config.nix", "build.log", "log", "generations/1/config.nix"} {
			failSh(t, mnt, asNobody+`cat `+secret, "Permission denied")
		}
		for _, write := range []string{`sh -c 'echo start > state'`, `sh -c 'echo 1G > memory.max'`, `sh -c 'echo x > config.nix'`, `touch scratch`} {
			failSh(t, mnt, asNobody+write, "Permission denied")
		}
		if st, _ := f.State("web"); st != ops.StateStopped {
			t.Errorf("nobody's write changed the state: %s", st)
		}
	}
}
