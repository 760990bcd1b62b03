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
// with its reason; the cut-off error when that process died in it); nil when no other
// process held the lock. A lock this process holds (a build of its own, queued after
// those WaitBuilt waited for) is no other process's: it does not wait for that.
func (m *Manager) waitForeign(ctx context.Context, name string) error {
	if busy, err := m.l.otherHolds(name); !busy || err != nil {
		return err
	}
	f := &foreignBuild{m: m, name: name, log: foreignLog{path: m.l.BuildLogPath(name),
		lines: nixLines{extra: m.nix.extra, skipNotes: true}}}
	defer f.log.close()
	tick := time.NewTicker(foreignPoll)
	defer tick.Stop()
	for {
		f.look()
		select {
		case <-ctx.Done():
			f.end(BuildUnknown, "")
			return context.Cause(ctx)
		case <-tick.C:
		}
		if busy, err := m.l.otherHolds(name); err != nil {
			f.end(BuildUnknown, "")
			return err
		} else if !busy {
			break
		}
	}
	f.readLog() // its last lines (of the build followed: a new one's intent is not taken up)
	f.log.lines.flush()
	if f.intent != (intentMark{}) && f.intent == m.l.readIntentMark(name) {
		// The lock was let go of, and the intent of the build followed is still
		// there: its process died in it. Recovery, as at a start, says how far it
		// got (cut off, or built when it had switched the profile). When another
		// operation took the lock since, it is not tried: the next start recovers.
		if err := m.recoverContainer(ctx, name, false); err != nil {
			m.log.Warn().Err(err).Str("container", name).Msg("recovery")
		}
	}
	state, reason := f.outcome()
	f.end(state, reason)
	if state == BuildFailed {
		return fmt.Errorf("%w: %s", ErrBuildFailed, reason)
	}
	return nil
}

// foreignBuild is another process's build that a start here follows.
type foreignBuild struct {
	m         *Manager
	name      string
	log       foreignLog
	following bool       // this start shows it (beginForeign)
	intent    intentMark // its intent: a new one is a new build
}

// look reads the intent, and the log of a build.
func (f *foreignBuild) look() {
	if mark := f.m.l.readIntentMark(f.name); mark.kind().building() {
		if mark != f.intent {
			// A build marked since: its log was emptied before (buildLocked), so it
			// is read from its start.
			f.intent = mark
			f.log.reset()
		}
		f.following = f.following || f.m.reg.beginForeign(f.name)
	}
	f.readLog()
}

// readLog reads what the build followed added to its log: once one was seen, also
// after its intent is gone (the build ended: its last lines).
func (f *foreignBuild) readLog() {
	if f.intent == (intentMark{}) {
		return
	}
	if p, moved := f.log.read(); f.following && moved {
		f.m.reg.noteForeign(f.name, p)
	}
}

// outcome is what the build followed saved: BuildUnknown when the outcome there is
// another build's (that one was cancelled, and saved none), known by the id of its
// intent.
func (f *foreignBuild) outcome() (BuildState, string) {
	if f.intent == (intentMark{}) {
		return BuildUnknown, "" // the lock was held for no build
	}
	last, followed := f.m.l.loadBuildOutcome(f.name), f.intent.of()
	if last.id != followed.id || last.hash != followed.hash {
		return BuildUnknown, ""
	}
	return last.state, last.reason
}

// end shows the outcome of the build followed; with none (BuildUnknown: the wait
// ended first, or that build saved none) what was shown before it.
func (f *foreignBuild) end(state BuildState, reason string) {
	if !f.following {
		return
	}
	idle := BuildUnknown // what Status shows for a container with no build state
	if has, _ := f.m.hasSystem(f.name); state == BuildUnknown && has {
		idle = BuildBuilt
	}
	f.m.reg.endForeign(f.name, state, reason, idle)
}

// foreignLog is a build log that another process writes, read from its start.
type foreignLog struct {
	path  string
	f     *os.File
	off   int64
	lines nixLines
	buf   []byte // what each read reads into (feed copies it)
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
		l.reset()
	}
	moved := false
	if l.buf == nil {
		l.buf = make([]byte, 64*1024)
	}
	for {
		n, err := l.f.ReadAt(l.buf, l.off)
		l.off += int64(n)
		moved = l.lines.feed(l.buf[:n]) || moved
		if err != nil || n == 0 { // io.EOF: all there is, for now
			return l.lines.nix.p, moved
		}
	}
}

// reset reads the log from its start again.
func (l *foreignLog) reset() {
	l.off, l.lines = 0, nixLines{extra: l.lines.extra, skipNotes: l.lines.skipNotes}
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
	c.foreignPrev, c.build = c.build, BuildBuilding
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

// endForeign shows the outcome another process saved for its build. With none (the
// wait here ended first, and the build goes on elsewhere; or the lock was held for no
// build) the container shows what it did before, and watchers are told so: idle, when
// that was no build state at all.
func (r *registry) endForeign(name string, state BuildState, reason string, idle BuildState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.records[name]
	if c == nil || c.foreign == nil {
		return
	}
	c.foreign = nil
	defer r.changed.Broadcast()
	if c.running != nil {
		return // a build of its own began meanwhile: it tells
	}
	if state == BuildUnknown {
		c.build = c.foreignPrev
		if shown := c.build; shown != BuildUnknown {
			r.publishLocked(name, EventConfig, shown.String())
		} else {
			r.publishLocked(name, EventConfig, idle.String())
		}
		return
	}
	r.setBuildLocked(c, state, reason)
}
