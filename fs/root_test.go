package fs

import (
	"context"
	"strings"
	"testing"
	"time"

	"nixcfs/ops"
)

func TestMkdirCreatesAndLsLists(t *testing.T) {
	f, mnt := mountFake(t)
	mustSh(t, mnt, `mkdir $MNT/web && mkdir $MNT/db`)
	if got := strings.Fields(mustSh(t, mnt, `ls $MNT`)); strings.Join(got, " ") != "db events web" {
		t.Errorf("ls = %v", got)
	}
	if got := strings.Fields(mustSh(t, mnt, `ls $MNT/web`)); strings.Join(got, " ") != "address autostart build.log config.nix cpu.max cpu.weight events generation generations host-address io.weight log memory.max pids.max ports state stats status" {
		t.Errorf("ls web = %v", got)
	}
	// Its first build runs in the background, as in ops: creating until it ends.
	if got := mustSh(t, mnt, `cat $MNT/web/state`); got != "creating\n" {
		t.Errorf("state after mkdir = %q", got)
	}
	f.WaitBuilt(context.Background(), "web")
	if got := mustSh(t, mnt, `cat $MNT/web/state`); got != "stopped\n" {
		t.Errorf("state after the build = %q", got)
	}
	if !f.Exists("web") {
		t.Error("backend has no web")
	}
}

func TestMkdirErrnos(t *testing.T) {
	f, mnt := mountFake(t)
	mustSh(t, mnt, `mkdir $MNT/web`)
	failSh(t, mnt, `mkdir $MNT/web`, "File exists")
	failSh(t, mnt, `mkdir $MNT/averyverylongname`, "File name too long")
	failSh(t, mnt, `mkdir $MNT/a.b`, "Invalid argument")
	f.set(func() { f.noAddress = true })
	failSh(t, mnt, `mkdir $MNT/full`, "No space left on device")
	failSh(t, mnt, `touch $MNT/file`, "Operation not permitted")
	failSh(t, mnt, `rm $MNT/events`, "Operation not permitted")
}

func TestRmdir(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("up", &fakeContainer{state: ops.StateRunning}, false)
	f.add("down", &fakeContainer{}, false)
	f.add("decl", &fakeContainer{declarative: true}, false)

	failSh(t, mnt, `rmdir $MNT/up`, "Device or resource busy")
	failSh(t, mnt, `rm -rf $MNT/up`, "Device or resource busy") // never kills a live container
	failSh(t, mnt, `rmdir $MNT/decl`, "Operation not permitted")
	failSh(t, mnt, `rm -rf $MNT/decl`, "Operation not permitted")
	mustSh(t, mnt, `rmdir $MNT/down && ! test -e $MNT/down`)
	f.add("down2", &fakeContainer{}, false)
	mustSh(t, mnt, `rm -rf $MNT/down2 && ! test -e $MNT/down2`)
	if f.Exists("down") || f.Exists("down2") || !f.Exists("up") || !f.Exists("decl") {
		t.Errorf("containers left: %v", f.List())
	}
}

// Containers made or removed by nixos-container show within a second, also when the
// kernel had their entry cached.
func TestChangesFromOutsideShow(t *testing.T) {
	f, mnt := mountFake(t)
	mustSh(t, mnt, `! test -e $MNT/other`)
	f.add("other", &fakeContainer{}, true)
	eventually(t, time.Second, "other appears", func() bool {
		out, ok := sh(t, mnt, `cat $MNT/other/state && ls $MNT`)
		return ok && strings.Contains(out, "other")
	})
	mustSh(t, mnt, `stat $MNT/other/state >/dev/null`) // cached now
	f.removeOutside("other")
	eventually(t, time.Second, "other vanishes", func() bool {
		_, ok := sh(t, mnt, `! test -e $MNT/other && ! ls $MNT | grep -q other`)
		return ok
	})
}

// The container's own files go with the container: removing one does nothing.
func TestOwnFilesStay(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	mustSh(t, mnt, `rm $MNT/web/state $MNT/web/config.nix`)
	mustSh(t, mnt, `test "$(cat $MNT/web/state)" = stopped && grep -q isContainer $MNT/web/config.nix`)
	failSh(t, mnt, `mv $MNT/web/state $MNT/web/other`, "Operation not permitted")
	failSh(t, mnt, `mv $MNT/web/config.nix $MNT/web/status`, "Operation not permitted")
	mustSh(t, mnt, `test -f $MNT/web/state && test -f $MNT/web/config.nix && ! test -e $MNT/web/other`)
}

func TestStatusText(t *testing.T) {
	s := ops.Status{Name: "foo", State: ops.StateRunning, Unit: ops.UnitName("foo"), Leader: 42, Config: ops.BuildBuilt}
	text := statusText(s)
	for _, want := range []string{"name foo\n", "state running\n", "unit container@foo.service\n", "leader 42\n", "config built\n", "error -\n", "autostart 0\n",
		"build_progress -\n", "build_fetched -\n", "building -\n", "build_since -\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	// While a build runs: its progress.
	s.Config = ops.BuildBuilding
	s.BuildProgress = &ops.BuildProgress{Built: 12, ToBuild: 140, Fetched: 3, ToFetch: 10, Building: "dep-13",
		Since: time.Date(2026, 5, 7, 10, 0, 0, 0, time.UTC)}
	text = statusText(s)
	for _, want := range []string{"config building\n", "build_progress 12/140\n", "build_fetched 3/10\n",
		"building dep-13\n", "build_since 2026-05-07T10:00:00Z\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
}

// generations is a symlink to a directory that is not listed: ls shows the generations,
// and rmdir deletes one, but rm -rf of a stopped container, which destroys it, never
// descends into its history.
func TestGenerationsFiles(t *testing.T) {
	f, mnt := mountFake(t)
	mustSh(t, mnt, `mkdir $MNT/web`)
	f.WaitBuilt(context.Background(), "web")
	mustSh(t, mnt, `printf '# two\n' > $MNT/web/config.nix && printf '# three\n' > $MNT/web/config.nix`)
	if got := mustSh(t, mnt, `ls $MNT/web/generations/; cat $MNT/web/generation`); got != "1\n2\n3\n3\n" {
		t.Errorf("generations: %q", got)
	}
	if got := mustSh(t, mnt, `ls $MNT/web/generations/2; cat $MNT/web/generations/2/config.nix $MNT/web/generations/2/system`); got != "built\nconfig.nix\nsystem\n# two\n/nix/store/fake-web-2\n" {
		t.Errorf("generation 2: %q", got)
	}
	mustSh(t, mnt, `echo 2 > $MNT/web/generation && test "$(cat $MNT/web/config.nix)" = "# two"`)
	failSh(t, mnt, `echo 9 > $MNT/web/generation`, "Invalid argument")
	failSh(t, mnt, `echo two > $MNT/web/generation`, "Invalid argument")
	failSh(t, mnt, `rmdir $MNT/web/generations/2`, "Device or resource busy")
	mustSh(t, mnt, `rmdir $MNT/web/generations/1 && ! test -e $MNT/web/generations/1`)
	mustSh(t, mnt, `rm -rf $MNT/web && ! test -e $MNT/web`)
	if f.Exists("web") {
		t.Error("rm -rf did not destroy the stopped container")
	}
}
