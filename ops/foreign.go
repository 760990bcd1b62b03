package ops

import (
	"context"
	"fmt"
	"os"
	"time"
)

// Builds of other processes. The command line and the mount build a container one at
// a time, under its operation lock (intents.go). A start waits for another process's
// build as for one of its own (waitForeign), and meanwhile reads that build's progress
// from the build log, which every build writes as nix runs: status and watchers (the
// command line's progress line, the mount's status and events) show it as this
// process's own.

// foreignPoll is how often the lock of another process is tried, and its build log
// read.
const foreignPoll = 200 * time.Millisecond

// waitForeign waits until no other process holds the container's operation lock, and
// follows its build meanwhile. It returns the outcome that build saved (ErrBuildFailed
// with its reason); nil when no other process held the lock. A lock this process
// holds (a build of its own, queued after those WaitBuilt waited for) is no other
// process's: it does not wait for that.
func (m *Manager) waitForeign(ctx context.Context, name string) error {
	if busy, err := m.otherProcessHolds(name); !busy || err != nil {
		return err
	}
	log := &foreignLog{path: m.l.BuildLogPath(name), lines: nixLines{extra: m.nix.extra}}
	defer log.close()
	following := false
	defer func() {
		if following {
			state, reason, _ := m.l.loadBuildOutcome(name)
			m.reg.endForeign(name, state, reason)
		}
	}()
	tick := time.NewTicker(foreignPoll)
	defer tick.Stop()
	for {
		if kind, _, _ := m.l.readIntent(name); kind == intentBuild || kind == intentSwitch || kind == intentCreate {
			following = following || m.reg.beginForeign(name)
		}
		if following {
			if p, moved := log.read(); moved {
				m.reg.noteForeign(name, p)
			}
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C:
		}
		if busy, err := m.otherProcessHolds(name); err != nil {
			return err
		} else if !busy {
			break
		}
	}
	if state, reason, _ := m.l.loadBuildOutcome(name); state == BuildFailed {
		return fmt.Errorf("%w: %s", ErrBuildFailed, reason)
	}
	return nil
}

// otherProcessHolds tells whether another process holds the container's operation
// lock.
func (m *Manager) otherProcessHolds(name string) (bool, error) {
	op, free, err := m.l.tryLockOp(name)
	switch {
	case err != nil:
		return false, err
	case free:
		op.release() // not done: an intent there is a dead process's, for recovery
		return false, nil
	}
	return !m.l.heldHere(name), nil
}

// foreignLog is a build log that another process writes, read from its start.
type foreignLog struct {
	path  string
	f     *os.File
	off   int64
	lines nixLines
}

// read reads what was added since it last did, and tells the progress and whether it
// moved.
func (l *foreignLog) read() (BuildProgress, bool) {
	if l.f == nil {
		f, err := os.Open(l.path)
		if err != nil {
			return l.lines.nix.p, false
		}
		l.f = f
	}
	if fi, err := l.f.Stat(); err == nil && fi.Size() < l.off {
		// Truncated: a build begun since, whose lines start again.
		l.off, l.lines = 0, nixLines{extra: l.lines.extra}
	}
	moved := false
	buf := make([]byte, 64*1024)
	for {
		n, err := l.f.ReadAt(buf, l.off)
		l.off += int64(n)
		moved = l.lines.feed(buf[:n]) || moved
		if err != nil || n == 0 { // io.EOF: all there is, for now
			return l.lines.nix.p, moved
		}
	}
}

func (l *foreignLog) close() {
	if l.f != nil {
		l.f.Close()
	}
}

// beginForeign shows another process's build as the container's own: building, with
// its progress. False when this process builds it itself, or a start here already
// follows it.
func (r *registry) beginForeign(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.records[name]
	if c == nil || c.running != nil || c.foreign != nil {
		return false
	}
	c.foreign = &BuildProgress{Since: time.Now()}
	c.build = BuildBuilding
	r.publishLocked(name, EventConfig, BuildBuilding.String())
	r.changed.Broadcast()
	return true
}

// noteForeign keeps the progress of another process's build for Status, and publishes
// it (foreignPoll paces it).
func (r *registry) noteForeign(name string, p BuildProgress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.records[name]
	if c == nil || c.foreign == nil {
		return
	}
	p.Since = c.foreign.Since
	*c.foreign = p
	r.publishLocked(name, EventProgress, p.String())
}

// endForeign shows the outcome another process saved for its build (unknown: the
// build was cut off, or the lock held for no build).
func (r *registry) endForeign(name string, state BuildState, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.records[name]
	if c == nil || c.foreign == nil {
		return
	}
	c.foreign = nil
	if c.running != nil {
		return // a build of its own began meanwhile: it tells
	}
	c.build = state
	switch state {
	case BuildFailed:
		c.lastErr, c.buildErr = reason, reason
		r.publishLocked(name, EventConfig, BuildFailed.String())
		r.publishLocked(name, EventError, reason)
	case BuildBuilt:
		c.lastErr, c.buildErr = "", ""
		r.publishLocked(name, EventConfig, BuildBuilt.String())
	}
	r.changed.Broadcast()
}
