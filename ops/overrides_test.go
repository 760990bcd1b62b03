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

// An operation of another process overrides one that waits here, as one of this
// process does: the record it leaves in the data directory ends the wait within a
// poll, with ErrOverridden naming it. Records of this process, of the same kind, of
// a kind that does not override, or from before the wait began override nothing.
func TestOtherProcessOverrides(t *testing.T) {
	l := Layout{DataDir: t.TempDir()}
	m := bareManager(l, "ov")
	c := m.reg.records["ov"]
	other := os.Getpid() + 100000 // no process of ours
	write := func(kind string, pid int, at time.Time) {
		t.Helper()
		if err := os.WriteFile(l.opPath("ov", kind), fmt.Appendf(nil, "%d %d\n", pid, at.UnixNano()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(l.DataPath("ov"), 0o700)
	write(opStop, other, time.Now().Add(-time.Second)) // before the start began

	ctx, end := m.beginOp(context.Background(), c, opRestart)
	defer end()
	write(opStop, os.Getpid(), time.Now()) // this process's: beginOp's own business
	write(opRestart, other, time.Now())    // the same kind
	write(opStart, other, time.Now())      // a start does not override a restart
	stillWaits(t, ctx, 3*foreignPoll)

	write(opTerminate, other, time.Now())
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

// This process's operations leave their record for the others.
func TestOperationsRecordThemselves(t *testing.T) {
	l := Layout{DataDir: t.TempDir()}
	m := bareManager(l, "ov")
	before := time.Now()
	_, end := m.beginOp(context.Background(), m.reg.records["ov"], opStop)
	end()
	pid, at, ok := l.readOp("ov", opStop)
	if !ok || pid != os.Getpid() || at.Before(before) || at.After(time.Now()) {
		t.Errorf("record of a stop: %d %v %v", pid, at, ok)
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
