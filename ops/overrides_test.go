package ops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// overrideLayout is a layout with the container ov's conf file, for the records of
// unit operations.
func overrideLayout(t *testing.T) Layout {
	l := Layout{DataDir: t.TempDir(), ConfDir: t.TempDir()}
	if err := os.WriteFile(l.ConfPath("ov"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(l.DataPath("ov"), 0o700)
	return l
}

// An operation of another process overrides one that waits here, as one of this
// process does: the record it leaves in the data directory ends the wait within a
// poll, with ErrOverridden naming it. Records of this process, of the same kind, of
// a kind that does not override, or there already when the wait began (a dead
// process's, even one dated after it: a clock stepped back) override nothing.
func TestOtherProcessOverrides(t *testing.T) {
	l := overrideLayout(t)
	m := bareManager(l, "ov")
	c := m.reg.records["ov"]
	other := os.Getpid() + 100000 // no process of ours
	write := func(kind string, pid int, at time.Time) {
		t.Helper()
		if err := os.WriteFile(l.opPath("ov", kind), fmt.Appendf(nil, "%d %d\n", pid, at.UnixNano()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(opStop, other, time.Now().Add(time.Hour)) // a dead process's, in the future

	ctx, lastLook, end := m.beginOp(context.Background(), c, opRestart)
	defer end()
	write(opTerminate, os.Getpid(), time.Now()) // this process's: beginOp's own business
	write(opRestart, other, time.Now())         // the same kind
	write(opStart, other, time.Now())           // a start does not override a restart
	stillWaits(t, ctx, 3*foreignPoll)
	if err := lastLook(); err != nil {
		t.Fatalf("last look: %v", err)
	}

	write(opTerminate, other, time.Now().Add(-time.Hour)) // new, though dated before
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a terminate of another process did not override the restart")
	}
	err := context.Cause(ctx)
	if !errors.Is(err, ErrOverridden) || !strings.Contains(err.Error(), fmt.Sprintf("restart of ov overridden by terminate (process %d)", other)) {
		t.Errorf("cause %v", err)
	}
}

// The last look before an operation acts sees a record the watcher has not yet.
func TestLastLookSeesOverrideAtOnce(t *testing.T) {
	l := overrideLayout(t)
	m := bareManager(l, "ov")
	ctx, lastLook, end := m.beginOp(context.Background(), m.reg.records["ov"], opStart)
	defer end()
	other := os.Getpid() + 100000
	os.WriteFile(l.opPath("ov", opStop), fmt.Appendf(nil, "%d %d\n", other, time.Now().UnixNano()), 0o600)
	if err := lastLook(); !errors.Is(err, ErrOverridden) {
		t.Fatalf("last look right after another process's stop: %v", err)
	}
	if !errors.Is(context.Cause(ctx), ErrOverridden) {
		t.Errorf("the operation's context: %v", context.Cause(ctx))
	}
}

// This process's operations leave their record for the others, whole; a container
// whose conf file is gone (destroyed) gets none, nor its data directory back.
func TestOperationsRecordThemselves(t *testing.T) {
	l := overrideLayout(t)
	m := bareManager(l, "ov", "gone")
	before := time.Now().UnixNano()
	_, _, end := m.beginOp(context.Background(), m.reg.records["ov"], opStop)
	end()
	r, ok := l.readOp("ov", opStop)
	if !ok || r.pid != os.Getpid() || r.at < before || r.at > time.Now().UnixNano() {
		t.Errorf("record of a stop: %+v %v", r, ok)
	}
	if entries, _ := os.ReadDir(l.DataPath("ov")); len(entries) != 1 {
		t.Errorf("data directory holds %v, want the record alone", entries)
	}
	_, _, end = m.beginOp(context.Background(), m.reg.records["gone"], opStop)
	end()
	if _, err := os.Stat(l.DataPath("gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a destroyed container's data directory: %v", err)
	}
}

func stillWaits(t *testing.T, ctx context.Context, d time.Duration) {
	t.Helper()
	select {
	case <-ctx.Done():
		t.Fatalf("overridden: %v", context.Cause(ctx))
	case <-time.After(d):
	}
}
