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
// another process reads every foreignPoll and once more right before it acts (a start
// before its job). A record counts when it is not the one there when the waiting
// operation began: so records of dead processes, and a wall clock stepped back, do
// not. What remains is the instant between that last look and systemd's job, as
// between two systemctl commands.
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
// overrides, here and in other processes. It returns the context its waits use,
// check, which tells (and ends the operation) when another process overrode it, for a
// last look before it acts, and the function that ends it.
func (m *Manager) beginOp(ctx context.Context, c *record, kind string) (context.Context, func() error, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	op := &unitOp{kind: kind, cancel: cancel}
	seen := m.l.readOps(c.name)
	m.l.recordOp(c.name, kind)
	m.reg.mu.Lock()
	for o := range c.ops {
		if overrides(kind, o.kind) {
			o.cancel(overridden(o.kind, c.name, kind, 0))
		}
	}
	c.ops[op] = struct{}{}
	m.reg.mu.Unlock()
	check := func() error {
		if err := m.l.overriddenSince(c.name, kind, seen); err != nil {
			cancel(err)
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return nil
	}
	done := make(chan struct{})
	go watchOtherOps(ctx, check, done)
	return ctx, check, func() {
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

// watchOtherOps checks every foreignPoll until ctx ends (check ends it when another
// process overrode the operation).
func watchOtherOps(ctx context.Context, check func() error, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(foreignPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			check()
		}
	}
}

// opRecord is what an operation left: its process and when it began (nanoseconds).
type opRecord struct {
	pid int
	at  int64
}

func (l Layout) opPath(name, kind string) string {
	return filepath.Join(l.DataPath(name), "op-"+kind)
}

// recordOp records that this process begins an operation of kind, for the operations
// of other processes that it overrides. A record is news, not state: not synced to
// disk, and one that cannot be written only loses that news. It is renamed into place,
// so that a reader sees it whole. A container whose conf file is gone (destroyed)
// gets none: its data directory is gone with it, and one made here while another
// process destroyed it goes again.
func (l Layout) recordOp(name, kind string) {
	if _, err := os.Stat(l.ConfPath(name)); err != nil {
		return
	}
	dir := l.DataPath(name)
	os.MkdirAll(l.DataDir, 0o700)
	made := os.Mkdir(dir, 0o700) == nil
	tmp, err := os.CreateTemp(dir, ".op-"+kind+".tmp*")
	if err != nil {
		return
	}
	_, werr := fmt.Fprintf(tmp, "%d %d\n", os.Getpid(), time.Now().UnixNano())
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), l.opPath(name, kind)) != nil {
		os.Remove(tmp.Name())
	}
	if _, err := os.Stat(l.ConfPath(name)); made && err != nil {
		os.Remove(l.opPath(name, kind))
		os.Remove(dir) // unless another process put files there since
	}
}

// readOp reads the last record of an operation of kind.
func (l Layout) readOp(name, kind string) (opRecord, bool) {
	data, err := os.ReadFile(l.opPath(name, kind))
	if err != nil {
		return opRecord{}, false
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return opRecord{}, false
	}
	pid, err1 := strconv.Atoi(f[0])
	at, err2 := strconv.ParseInt(f[1], 10, 64)
	return opRecord{pid, at}, err1 == nil && err2 == nil
}

// readOps reads the records of every kind.
func (l Layout) readOps(name string) map[string]opRecord {
	seen := map[string]opRecord{}
	for _, kind := range opKinds {
		if r, ok := l.readOp(name, kind); ok {
			seen[kind] = r
		}
	}
	return seen
}

// overriddenSince is the error of an operation of kind that another process overrode
// by an operation recorded since seen; nil when none did.
func (l Layout) overriddenSince(name, kind string, seen map[string]opRecord) error {
	for _, other := range opKinds {
		if !overrides(other, kind) {
			continue
		}
		if r, ok := l.readOp(name, other); ok && r.pid != os.Getpid() && r != seen[other] {
			return overridden(kind, name, other, r.pid)
		}
	}
	return nil
}
