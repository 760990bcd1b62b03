package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A build log another process writes is read as it grows, a line cut in two
// included, and from its start again once a new build truncated it.
func TestForeignLogFollowsGrowthAndTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build.log")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var out bytes.Buffer
	l := &foreignLog{path: path, lines: nixLines{extra: newLineWriter(&out)}}
	defer l.close()
	if _, moved := l.read(); moved {
		t.Error("an empty log moved the progress")
	}
	w.WriteString("these 3 derivations will be built:\n  /nix/store/a-x.drv\nbuilding '/nix/store/aaaa-dep-1.drv'")
	if p, moved := l.read(); !moved || p.ToBuild != 3 || p.Building != "" {
		t.Errorf("after the first lines: %+v %v", p, moved)
	}
	w.WriteString("...\nbuilding '/nix/store/bbbb-dep-2.drv'...\n")
	if p, moved := l.read(); !moved || p.Built != 1 || p.Building != "dep-2" {
		t.Errorf("after the cut line's end: %+v %v", p, moved)
	}
	if _, moved := l.read(); moved {
		t.Error("nothing new moved the progress")
	}
	// A new build truncates the log and writes it again, shorter.
	w.Truncate(0)
	w.Seek(0, 0)
	w.WriteString("this derivation will be built:\n")
	if p, moved := l.read(); !moved || p.ToBuild != 1 || p.Built != 0 || p.Building != "" {
		t.Errorf("after a truncation: %+v %v", p, moved)
	}
	want := "these 3 derivations will be built:\n  /nix/store/a-x.drv\nbuilding '/nix/store/aaaa-dep-1.drv'...\n" +
		"building '/nix/store/bbbb-dep-2.drv'...\nthis derivation will be built:\n"
	if out.String() != want {
		t.Errorf("lines passed on:\n%q\nwant\n%q", out.String(), want)
	}
}

// A log that does not exist yet is no progress, and is read once it does.
func TestForeignLogMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build.log")
	l := &foreignLog{path: path}
	defer l.close()
	if _, moved := l.read(); moved {
		t.Error("a missing log moved the progress")
	}
	os.WriteFile(path, []byte("this path will be fetched (1 MiB download):\n"), 0o600)
	if p, moved := l.read(); !moved || p.ToFetch != 1 {
		t.Errorf("%+v %v", p, moved)
	}
}

// A start waits for another process's operation, not for one of this process's own:
// a build this process queued after those WaitBuilt waited for holds the same lock,
// and waiting for it could wait for ever (its text may wait on the very start).
func TestWaitForeignWaitsForOtherProcessesOnly(t *testing.T) {
	l := Layout{DataDir: t.TempDir(), LogDir: t.TempDir()}
	m := bareManager(l, "fw")
	m.nix = &builder{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	op, ok, err := l.tryLockOp("fw")
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := m.waitForeign(ctx, "fw"); err != nil {
		t.Errorf("with this process's own lock held: %v", err)
	}
	op.release()
	if l.heldHere("fw") {
		t.Error("released, still held here")
	}
}

// foreignTest is a Manager that knows the container fw, with nowhere a system of it;
// nix's lines it passes on go to out (nil: nowhere). Its context ends the test's waits
// after 20 s.
func foreignTest(t *testing.T, out io.Writer) (Layout, *Manager, context.Context) {
	l := Layout{DataDir: t.TempDir(), LogDir: t.TempDir(), ProfileDir: t.TempDir()}
	m := bareManager(l, "fw")
	m.nix = &builder{extra: newLineWriter(out)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return l, m, ctx
}

// otherBuild is a build of another process: flock(1) holds the container's lock, its
// intent says build, until end, which removes the intent first, as a build that ends
// does, unless it dies in it.
func otherBuild(t *testing.T, l Layout, name string) (end func(dies bool)) {
	t.Helper()
	os.MkdirAll(l.DataPath(name), 0o700)
	os.WriteFile(l.lockPath(name), nil, 0o644)
	holder := exec.Command("flock", "-o", l.lockPath(name), "sleep", "60") // -o: sleep does not inherit the lock
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}               // flock and its sleep, killed together
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func() { syscall.Kill(-holder.Process.Pid, syscall.SIGKILL); holder.Wait() }
	t.Cleanup(kill)
	for busy, _ := l.otherHolds(name); !busy; busy, _ = l.otherHolds(name) {
		time.Sleep(10 * time.Millisecond)
	}
	os.WriteFile(l.intentPath(name), fmt.Appendf(nil, "build 1 abc %d\n", time.Now().UnixNano()), 0o600)
	return func(dies bool) {
		if !dies {
			os.Remove(l.intentPath(name))
		}
		kill()
	}
}

// waitShows polls the container's status until ok holds, for at most 10 s.
func waitShows(t *testing.T, m *Manager, name, what string, ok func(Status) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st, _ := m.Status(name); ok(st) {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("status never showed %s: %+v", what, st)
		}
	}
}

// While a start waits for another process's build it shows it (config building, its
// progress from the log, not nixcfs's own lines), and then that build's outcome; a
// wait that ends first shows again what was before; a process that died in its build
// is a build cut off.
func TestWaitForeignFollowsAndReports(t *testing.T) {
	var out bytes.Buffer
	l, m, ctx := foreignTest(t, &out)
	m.reg.records["fw"].build = BuildBuilt // as its last build left it

	// A wait that ends first: status and watchers are told what was before.
	events := m.Watch(ctx, "fw")
	end := otherBuild(t, l, "fw")
	waitCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.waitForeign(waitCtx, "fw") }()
	waitShows(t, m, "fw", "config building", func(st Status) bool { return st.Config == BuildBuilding })
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("a wait cancelled: %v", err)
	}
	if st, _ := m.Status("fw"); st.Config != BuildBuilt || st.BuildProgress != nil || st.Error != "" {
		t.Errorf("after a cancelled wait, status shows %+v, want what it did before", st)
	}
	for _, want := range []string{BuildBuilding.String(), BuildBuilt.String()} {
		if ev := nextConfigEvent(t, events); ev != want {
			t.Errorf("watchers were told config %q, want %q", ev, want)
		}
	}

	// A build that fails, its log written as it goes.
	go func() { done <- m.waitForeign(ctx, "fw") }()
	os.WriteFile(l.BuildLogPath("fw"), []byte("$ nix-build x\nthese 2 derivations will be built:\nbuilding '/nix/store/aaaa-dep-1.drv'...\n"), 0o644)
	waitShows(t, m, "fw", "the progress", func(st Status) bool {
		return st.Config == BuildBuilding && st.BuildProgress != nil && st.BuildProgress.Building == "dep-1"
	})
	// Its last lines, written just before it ends, are passed on all the same.
	appendFile(t, l.BuildLogPath("fw"), "error: boom\n")
	savedByIts(l, "fw", fmt.Errorf("%w: nix-build: exit status 1", ErrBuildFailed))
	end(false)
	if err := <-done; !errors.Is(err, ErrBuildFailed) {
		t.Errorf("after the other process's failed build: %v", err)
	}
	if st, _ := m.Status("fw"); st.Config != BuildFailed || st.BuildProgress != nil {
		t.Errorf("status after it: %+v", st)
	}
	if want := "these 2 derivations will be built:\nbuilding '/nix/store/aaaa-dep-1.drv'...\nerror: boom\n"; out.String() != want {
		t.Errorf("lines passed on: %q, want nix's alone: %q", out.String(), want)
	}

	// A build that ends, and another process's intent there when its lock is let go
	// of (marked, and that process gone at once): the one followed ended as it
	// saved; not taken for cut off, nor that other intent recovered here.
	end = otherBuild(t, l, "fw")
	go func() { done <- m.waitForeign(ctx, "fw") }()
	waitShows(t, m, "fw", "config building", func(st Status) bool { return st.Config == BuildBuilding })
	savedByIts(l, "fw", nil)
	os.Remove(l.intentPath("fw"))
	os.WriteFile(l.intentPath("fw"), []byte("build 2 other x1\n"), 0o600)
	end(true) // the lock let go of, the new intent left
	if err := <-done; err != nil {
		t.Errorf("after the other process's build, with a third's intent there: %v", err)
	}
	if kind, _, hash := l.readIntent("fw"); kind != intentBuild || hash != "other" {
		t.Errorf("the third process's intent, left for recovery at a start: %q %q", kind, hash)
	}
	os.Remove(l.intentPath("fw"))

	// A build that ends, its lock taken at once by a build of this process, which
	// marks its own intent: the one followed ended as it saved, not cut off.
	end = otherBuild(t, l, "fw")
	go func() { done <- m.waitForeign(ctx, "fw") }()
	waitShows(t, m, "fw", "config building", func(st Status) bool { return st.Config == BuildBuilding })
	savedByIts(l, "fw", nil)
	end(false)
	own, err := l.lockOp(ctx, "fw")
	if err != nil {
		t.Fatal(err)
	}
	if err := own.mark(intentBuild, 2, "def"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("after the other process's build, with one of this process's begun: %v", err)
	}
	own.done()

	// A process that dies in its build.
	end = otherBuild(t, l, "fw")
	go func() { done <- m.waitForeign(ctx, "fw") }()
	waitShows(t, m, "fw", "config building", func(st Status) bool { return st.Config == BuildBuilding })
	end(true)
	if err := <-done; !errors.Is(err, ErrBuildFailed) || !strings.Contains(err.Error(), "cut off") {
		t.Errorf("after the other process died in its build: %v", err)
	}
}

// appendFile adds text to the file at path.
func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// nextConfigEvent is the value of the next config event, waiting at most 10 s.
func nextConfigEvent(t *testing.T, events <-chan Event) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Kind == EventConfig {
				return ev.Value
			}
		case <-timeout:
			return "(none in 10 s)"
		}
	}
}

// A wait cancelled on a container with no build state (made by another process, never
// built here, no system yet) tells watchers so, as it told them of the build.
func TestWaitForeignCancelledTellsNoState(t *testing.T) {
	l, m, ctx := foreignTest(t, nil)
	events := m.Watch(ctx, "fw")
	otherBuild(t, l, "fw")
	waitCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.waitForeign(waitCtx, "fw") }()
	waitShows(t, m, "fw", "config building", func(st Status) bool { return st.Config == BuildBuilding })
	stop()
	<-done
	for _, want := range []string{BuildBuilding.String(), BuildUnknown.String()} {
		if ev := nextConfigEvent(t, events); ev != want {
			t.Errorf("watchers were told config %q, want %q", ev, want)
		}
	}
}

// A build followed that saved no outcome (cancelled) is no failure of an older build's,
// of the same text; a destroy's intent is never followed, nor finished here when its
// process dies.
func TestWaitForeignOnlyItsBuild(t *testing.T) {
	l, m, ctx := foreignTest(t, nil)
	m.reg.records["fw"].build = BuildFailed
	os.MkdirAll(l.DataPath("fw"), 0o700)
	l.saveBuildOutcome("fw", "abc", "an-older-build", fmt.Errorf("%w: an older build's failure of the same text", ErrBuildFailed))
	if last := l.loadBuildOutcome("fw"); last.state != BuildFailed {
		t.Fatalf("the older build's outcome: %+v", last)
	}

	end := otherBuild(t, l, "fw") // intent: build of abc
	done := make(chan error, 1)
	go func() { done <- m.waitForeign(ctx, "fw") }()
	waitShows(t, m, "fw", "config building", func(st Status) bool { return st.Config == BuildBuilding })
	end(false) // cancelled: no outcome saved
	if err := <-done; err != nil {
		t.Errorf("after a build that saved no outcome: %v", err)
	}
	if st, _ := m.Status("fw"); st.Config != BuildFailed {
		t.Errorf("status after it: %+v, want what it showed before", st)
	}

	end = otherBuild(t, l, "fw")
	os.WriteFile(l.intentPath("fw"), []byte("destroy 0 - d1\n"), 0o600)
	f := &foreignBuild{m: m, name: "fw", log: foreignLog{path: l.BuildLogPath("fw")}}
	f.look() // while that process holds the lock
	if f.following || f.intent != (intentMark{}) {
		t.Errorf("a destroy's intent taken up as a build's: following %v, %+v", f.following, f.intent)
	}
	end(true)
	if err := m.waitForeign(ctx, "fw"); err != nil {
		t.Errorf("after a destroy's process died: %v", err)
	}
	if kind, _, _ := l.readIntent("fw"); kind != intentDestroy {
		t.Errorf("the destroy's intent, left for recovery at a start: %q", kind)
	}
}

// savedByIts saves the outcome of the build whose intent is there, as that build does.
func savedByIts(l Layout, name string, err error) {
	in := l.readIntentMark(name).of()
	l.saveBuildOutcome(name, in.hash, in.id, err)
}
