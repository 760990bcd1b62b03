package ops

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// What crashed processes leave beside the containers' files, a Manager's start sweeps
// (recover, then EmptyTrash as the mount calls it): a temp file of an atomic write into
// the conf directory over a minute old, the out-link of a build whose process is gone,
// a root tree moved aside to be deleted. A fresh temp file (another process's write in
// progress), the out-link of a live build, and everything else stay; the trash is
// deleted without following its links to the host.
func TestStartupSweeps(t *testing.T) {
	base := t.TempDir()
	l := Layout{ConfDir: filepath.Join(base, "conf"), StateDir: filepath.Join(base, "state"),
		GCRootDir: filepath.Join(base, "gcroots"), DataDir: filepath.Join(base, "data")}
	for _, d := range []string{l.ConfDir, l.StateDir, l.GCRootPath("sw"), l.DataDir, filepath.Join(base, "host")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := func(path, content string, age time.Duration) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		then := time.Now().Add(-age)
		if err := os.Chtimes(path, then, then); err != nil {
			t.Fatal(err)
		}
		return path
	}
	link := func(target, path string) string {
		t.Helper()
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// A PID that was a process and is no more. (Reused by another process within this
	// test, it would keep its out-link: the test would fail, never pass wrongly.)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	hostData := file(filepath.Join(base, "host", "data"), "the host's own\n", 0)

	oldTemp := file(filepath.Join(l.ConfDir, ".sw.conf.tmp123456"), "PRIVATE_NETWORK=1\n", 2*time.Minute)
	freshTemp := file(filepath.Join(l.ConfDir, ".sw.conf.tmp654321"), "PRIVATE_NETWORK=1\n", 0)
	oldConf := file(l.ConfPath("sw"), "PRIVATE_NETWORK=1\n", 2*time.Minute)
	system := "/nix/store/00000000000000000000000000000000-nixos-system-sw"
	deadLink := link(system, filepath.Join(l.GCRootPath("sw"), fmt.Sprintf("%s%d", outLinkPrefix, gone.Process.Pid)))
	liveLink := link(system, filepath.Join(l.GCRootPath("sw"), fmt.Sprintf("%s%d", outLinkPrefix, os.Getpid())))
	// nix-build's temporary links (OUT.tmp-PID-RANDOM), of a dead build and of a live one.
	deadTmp := link(system, fmt.Sprintf("%s.tmp-%d-12345", deadLink, gone.Process.Pid))
	liveTmp := link(system, fmt.Sprintf("%s.tmp-%d-12345", liveLink, os.Getpid()))
	otherRoot := link(system, filepath.Join(l.GCRootPath("sw"), "result"))
	trash := filepath.Join(l.StateDir, trashPrefix+"123456")
	file(filepath.Join(trash, "sw", "etc", "nixos", "configuration.nix"), "{ }\n", 0)
	link(filepath.Join(base, "host"), filepath.Join(trash, "sw", "hostdir"))
	link(hostData, filepath.Join(trash, "sw", "etc", "hostfile"))
	liveTree := file(filepath.Join(l.RootPath("sw"), "etc", "nixos", "configuration.nix"), "{ }\n", 0)

	m := bareManager(l)
	m.recover(context.Background())
	m.EmptyTrash()

	for _, p := range []string{oldTemp, deadLink, deadTmp, trash} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("left behind: %s", p)
		}
	}
	for _, p := range []string{freshTemp, oldConf, liveLink, liveTmp, otherRoot, liveTree} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("swept away: %v", err)
		}
	}
	if data, err := os.ReadFile(hostData); err != nil || string(data) != "the host's own\n" {
		t.Errorf("the host's file a link in the trash pointed at: %q, %v", data, err)
	}
}

// An operation that marked no intent (a generation's deletion) leaves a dead process's
// intent for recovery when it is done; one that marked its own removes it.
func TestDoneRemovesOnlyItsOwnIntent(t *testing.T) {
	l := Layout{DataDir: t.TempDir()}
	os.MkdirAll(l.DataPath("di"), 0o700)
	os.WriteFile(l.intentPath("di"), []byte("build 1 dead\n"), 0o600)
	op, err := l.lockOp(context.Background(), "di")
	if err != nil {
		t.Fatal(err)
	}
	op.done()
	if kind, _, hash := l.readIntent("di"); kind != intentBuild || hash != "dead" {
		t.Errorf("a dead process's intent, after an operation that marked none: %q %q", kind, hash)
	}
	op, err = l.lockOp(context.Background(), "di")
	if err != nil {
		t.Fatal(err)
	}
	if err := op.mark(intentBuild, 2, "own"); err != nil {
		t.Fatal(err)
	}
	op.done()
	if kind, _, _ := l.readIntent("di"); kind != "" {
		t.Errorf("its own intent, after it was done: %q", kind)
	}
}

// A create whose process died after its first build switched the profile built: its
// text (the one written last) is no text written and never built. One that died before
// did not, also when the profile an earlier container of that name left has
// generations.
func TestRecoverCreate(t *testing.T) {
	for _, c := range []struct {
		name          string
		before, after int // the profile's generation when the create began, when it died
		want          BuildState
	}{
		{"built", 0, 1, BuildBuilt},
		{"cut off", 0, 0, BuildFailed},
		{"built over a profile left", 3, 4, BuildBuilt},
		{"cut off over a profile left", 3, 3, BuildFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			l := Layout{DataDir: filepath.Join(base, "data"), ConfDir: filepath.Join(base, "conf"),
				ProfileDir: filepath.Join(base, "profiles"), GCRootDir: filepath.Join(base, "gcroots"),
				StateDir: filepath.Join(base, "state"), LogDir: filepath.Join(base, "log")}
			for _, d := range []string{l.DataPath("cb"), l.ConfDir, l.ProfilePath("cb")} {
				os.MkdirAll(d, 0o755)
			}
			generation := func(n int) {
				link := fmt.Sprintf("system-%d-link", n)
				os.Symlink(t.TempDir(), filepath.Join(l.ProfilePath("cb"), link))
				os.Remove(l.SystemLink("cb"))
				os.Symlink(link, l.SystemLink("cb"))
			}
			if c.before > 0 {
				generation(c.before)
			}
			m := bareManager(l)
			op, err := m.markCreate("cb", "{ }\n")
			if err != nil {
				t.Fatal(err)
			}
			hash := configHash("{ }\n")
			if err := l.noteWritten("cb", hash); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(l.ConfPath("cb"), []byte("PRIVATE_NETWORK=1\n"), 0o644)
			if c.after > c.before {
				generation(c.after)
			}
			op.release() // as its process dying would

			m.recover(context.Background())
			if last := l.loadBuildOutcome("cb"); last.state != c.want || last.hash != hash {
				t.Errorf("outcome after recovery: %+v, want %v of the create's text", last, c.want)
			}
		})
	}
}

// heldHere tells whether this process holds the container's operation lock.
func (l Layout) heldHere(name string) bool {
	heldOps.Lock()
	defer heldOps.Unlock()
	return heldOps.n[l.lockPath(name)] > 0
}

// readIntent is the intent left in the container's data directory ("" for none), and
// the generation and text hash its mark recorded.
func (l Layout) readIntent(name string) (kind intentKind, generation int, hash string) {
	in := l.readIntentMark(name).of()
	return in.kind, in.generation, in.hash
}
