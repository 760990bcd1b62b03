package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

	// Another process holds it (flock(1)), for a build that fails.
	os.WriteFile(l.intentPath("fw"), []byte("build 1 abc\n"), 0o600)
	l.saveBuildOutcome("fw", "abc", fmt.Errorf("%w: nix-build: exit status 1", ErrBuildFailed))
	holder := exec.Command("flock", "-o", l.lockPath("fw"), "sleep", "60") // -o: sleep does not inherit the lock
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}               // flock and its sleep, killed together
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func() { syscall.Kill(-holder.Process.Pid, syscall.SIGKILL) }
	defer kill()
	for busy, _ := m.otherProcessHolds("fw"); !busy; busy, _ = m.otherProcessHolds("fw") {
		if ctx.Err() != nil {
			t.Fatal("flock never took the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- m.waitForeign(ctx, "fw") }()
	// It follows that build meanwhile: the container shows config building.
	for st, _ := m.Status("fw"); st.Config != BuildBuilding; st, _ = m.Status("fw") {
		if ctx.Err() != nil {
			t.Fatal("the wait never showed the other process's build")
		}
		time.Sleep(10 * time.Millisecond)
	}
	kill()
	holder.Wait()
	if err := <-done; !errors.Is(err, ErrBuildFailed) {
		t.Errorf("after the other process's failed build: %v", err)
	}
	if st, _ := m.Status("fw"); st.Config != BuildFailed || st.BuildProgress != nil {
		t.Errorf("status after it: %+v", st)
	}
}
