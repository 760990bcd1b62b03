package ops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The kinds of unit operation. One of another kind overrides an operation in progress
// (overrides): a stop written while a start waits for a build or a boot acts at once,
// and the start ends with ErrOverridden. This holds across processes too (a stop from
// the command line overrides a start the mount waits on, and the other way round):
// each operation records itself in the container's data directory, one file per kind
// (DataDir/NAME/op-KIND: the process and the time), which a waiting operation of
// another process reads every foreignPoll.
const (
	opStart     = "start"
	opRestart   = "restart"
	opStop      = "stop"
	opTerminate = "terminate"
)

var opKinds = []string{opStart, opRestart, opStop, opTerminate}

func overrides(newKind, oldKind string) bool {
	return newKind != oldKind && !(newKind == opStart && oldKind == opRestart)
}

// unitOp is a unit operation in progress on a container, which a later one may
// override: its waits then end with an error that says so.
type unitOp struct {
	kind   string
	cancel context.CancelCauseFunc
}

// beginOp registers an operation of kind on c, overriding those in progress that it
// overrides, here and in other processes, and returns the context its waits use and
// the function that ends it.
func (m *Manager) beginOp(ctx context.Context, c *record, kind string) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	op := &unitOp{kind: kind, cancel: cancel}
	began := time.Now()
	m.l.recordOp(c.name, kind, began)
	m.reg.mu.Lock()
	for o := range c.ops {
		if overrides(kind, o.kind) {
			o.cancel(overridden(o.kind, c.name, kind, 0))
		}
	}
	c.ops[op] = struct{}{}
	m.reg.mu.Unlock()
	done := make(chan struct{})
	go m.watchOtherOps(ctx, c.name, kind, began, cancel, done)
	return ctx, func() {
		m.reg.mu.Lock()
		delete(c.ops, op)
		m.reg.mu.Unlock()
		cancel(nil)
		<-done
	}
}

func overridden(kind, name, by string, pid int) error {
	if pid != 0 {
		return fmt.Errorf("%w: %s of %s overridden by %s (process %d)", ErrOverridden, kind, name, by, pid)
	}
	return fmt.Errorf("%w: %s of %s overridden by %s", ErrOverridden, kind, name, by)
}

// watchOtherOps cancels an operation of kind begun at began once another process
// records an operation that overrides it, until ctx ends.
func (m *Manager) watchOtherOps(ctx context.Context, name, kind string, began time.Time, cancel context.CancelCauseFunc, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(foreignPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, other := range opKinds {
			if !overrides(other, kind) {
				continue
			}
			if pid, at, ok := m.l.readOp(name, other); ok && pid != os.Getpid() && at.After(began) {
				cancel(overridden(kind, name, other, pid))
				return
			}
		}
	}
}

func (l Layout) opPath(name, kind string) string {
	return filepath.Join(l.DataPath(name), "op-"+kind)
}

// recordOp records that this process began an operation of kind at that time, for
// the operations of other processes that it overrides. A record is news, not state:
// not synced to disk, and one that cannot be written only loses that news. A reader
// that finds it half-written reads it again at its next look.
func (l Layout) recordOp(name, kind string, at time.Time) {
	if err := os.MkdirAll(l.DataPath(name), 0o700); err != nil {
		return
	}
	os.WriteFile(l.opPath(name, kind), fmt.Appendf(nil, "%d %d\n", os.Getpid(), at.UnixNano()), 0o600)
}

// readOp reads the last record of an operation of kind.
func (l Layout) readOp(name, kind string) (pid int, at time.Time, ok bool) {
	data, err := os.ReadFile(l.opPath(name, kind))
	if err != nil {
		return 0, time.Time{}, false
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0, time.Time{}, false
	}
	pid, err1 := strconv.Atoi(f[0])
	ns, err2 := strconv.ParseInt(f[1], 10, 64)
	return pid, time.Unix(0, ns), err1 == nil && err2 == nil
}
