package ops

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"nixcfs/internal/crash"
)

// Builds of one container never overlap and run in the order they were queued: a
// build is queued (queueLocked, which numbers it), waits for its turn and runs in the
// background under the manager's context (runQueued), and is finished (finishBuild),
// which records its outcome for status and for waiters (waitRun, WaitBuilt). The
// caller that queued it may stop waiting; the build goes on.

// buildRun is one build of a container's system.
type buildRun struct {
	ctx      context.Context // under the manager's: Close and Destroy cancel it
	cancel   context.CancelFunc
	ticket   uint64  // its place in the container's queue of builds
	op       *opLock // the container's operation lock, when its creator holds it already
	hash     string  // of the configuration text it builds; "" for none (a flake, a system)
	switchTo int     // for a switch of generation, the generation
	reason   string  // of its failure, read from the log under the operation lock
	// Guarded by the registry's mu.
	finished bool
	err      error
	// progress is read from nix's lines while it runs (noteProgress); progressSent
	// is when its last event went out, progressDue that another is scheduled.
	progress     BuildProgress
	progressSent time.Time
	progressDue  bool
}

// queueLocked makes the next build of c, to run after those queued before it. Its
// context exists from then on, so that Destroy can cancel a build before it runs.
func (m *Manager) queueLocked(c *record) *buildRun {
	ctx, cancel := context.WithCancel(m.ctx)
	c.queued++
	return &buildRun{ctx: ctx, cancel: cancel, ticket: c.queued}
}

// beginLocked makes run the build of c that runs now.
func (m *Manager) beginLocked(c *record, run *buildRun) {
	c.served, c.running, c.build = run.ticket, run, BuildBuilding
	run.progress = BuildProgress{Since: time.Now()}
}

// runQueued runs a queued build in the background once it is its turn: it goes on when
// the caller stops waiting, and Destroy or Close cancel it.
func (m *Manager) runQueued(c *record, run *buildRun, build func(context.Context) error) {
	m.goBackground(func() {
		defer run.cancel()
		var gone bool
		err := m.reg.waitFor(run.ctx, func() bool {
			switch {
			case c.running == run: // begun by its creator
				return true
			case c.running != nil || c.served+1 != run.ticket:
				return false
			case c.destroying:
				// Its turn is taken all the same: a destroy that fails leaves the
				// queue to the builds after it.
				c.served, gone = run.ticket, true
				return true
			}
			m.beginLocked(c, run)
			m.reg.publishLocked(c.name, EventConfig, BuildBuilding.String())
			return true
		})
		if gone {
			err = fmt.Errorf("%w: %s", ErrNotFound, c.name)
		}
		start := time.Now()
		if err == nil {
			err = m.buildLocked(run, c.name, build)
		} else {
			run.op.done()
		}
		m.finishBuild(c, run, err, time.Since(start))
	})
}

// buildLocked runs build under the container's operation lock, which keeps it apart
// from builds of other processes, and under the intent of a build, which a crash leaves
// for the next start to report. The outcome is kept for every process to show.
func (m *Manager) buildLocked(run *buildRun, name string, build func(context.Context) error) error {
	op := run.op
	if op == nil {
		var err error
		if op, err = m.l.lockOp(run.ctx, name); err != nil {
			return err
		}
		if _, err := os.Stat(m.l.ConfPath(name)); err != nil {
			op.release() // destroyed by another process while this build waited
			return fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		// Its log is emptied before the intent says a build runs: another process
		// that follows the build (foreign.go) never takes the last one's for it.
		os.Truncate(m.l.BuildLogPath(name), 0)
		kind, gen := intentBuild, 0
		if _, gen = systemGeneration(m.l.SystemLink(name)); run.switchTo != 0 {
			kind, gen = intentSwitch, run.switchTo
		}
		if err := op.mark(kind, gen, run.hash); err != nil {
			op.done()
			return err
		}
	}
	defer op.done()
	err := build(run.ctx)
	crash.At(crash.BuildDone)
	if !isCancel(err) {
		run.reason = m.l.saveBuildOutcome(name, run.hash, op.id, err)
	}
	return err
}

// finishBuild records a build's outcome: the container's build state and error, and
// the end of its first build (creating).
func (m *Manager) finishBuild(c *record, run *buildRun, err error, took time.Duration) {
	reason := run.reason
	if err != nil && reason == "" {
		reason = oneLine(buildError(m.l.BuildLogPath(c.name), err)) // reads the log: not under mu
	}
	_, generation := systemGeneration(m.l.SystemLink(c.name))
	_, confErr := os.Stat(m.l.ConfPath(c.name))
	m.reg.mu.Lock()
	defer m.reg.mu.Unlock()
	run.finished, run.err = true, err
	c.finished = max(c.finished, run.ticket)
	m.reg.changed.Broadcast()
	if c.running != run {
		return // never ran: its container went, or the manager closed
	}
	wasCreating := c.creating
	c.creating = false
	c.running, c.last = nil, run
	if m.reg.records[c.name] != c {
		return // never announced (a create undone), or gone
	}
	if wasCreating && os.IsNotExist(confErr) && !c.destroying {
		// Removed from outside (nixos-container destroy) during its first build, when
		// inotify's news was left to this build.
		m.reg.forgetLocked(c)
		return
	}
	if err != nil {
		m.log.Warn().Str("container", c.name).Dur("took", took).Str("error", reason).Msg("build failed")
		m.reg.setBuildLocked(c, BuildFailed, reason)
	} else {
		m.log.Info().Str("container", c.name).Dur("took", took).Int("generation", generation).Msg("built")
		m.reg.publishLocked(c.name, EventGeneration, strconv.Itoa(generation))
		m.reg.setBuildLocked(c, BuildBuilt, "")
	}
	if wasCreating {
		m.reg.publishLocked(c.name, EventState, m.reg.stateLocked(c).String())
	}
}

// setBuildLocked records the outcome of a build of c (built, or failed for reason), and
// tells watchers.
func (r *registry) setBuildLocked(c *record, state BuildState, reason string) {
	c.build, c.lastErr, c.buildErr = state, reason, reason
	r.publishLocked(c.name, EventConfig, state.String())
	if state == BuildFailed {
		r.publishLocked(c.name, EventError, reason)
	}
}

// buildError is the readable reason of a failed build: nix's "error:" line from the
// log, which says what is wrong with the configuration.
func buildError(logPath string, err error) string {
	if isCancel(err) {
		return "build cancelled"
	}
	if !errors.Is(err, ErrBuildFailed) {
		return err.Error() // not nix's: the log has nothing to add
	}
	f, ferr := os.Open(logPath)
	if ferr != nil {
		return err.Error()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "error:") {
			msg := strings.TrimSpace(strings.TrimPrefix(line, "error:"))
			if msg == "" && sc.Scan() { // nix 2.8 puts some messages on the next line
				msg = strings.TrimSpace(sc.Text())
			}
			return "build failed: " + msg + " (see build.log)"
		}
	}
	return err.Error()
}

// WaitBuilt waits until every build queued so far has ended, and returns the error of
// the last one that ran; nil when the container was never built here.
func (m *Manager) WaitBuilt(ctx context.Context, name string) error {
	c, err := m.reg.lookup(name)
	if err != nil {
		return err
	}
	m.reg.mu.Lock()
	queued := c.queued
	m.reg.mu.Unlock()
	var last *buildRun
	err = m.reg.waitFor(ctx, func() bool {
		last = c.last
		return c.finished >= queued
	})
	if err != nil || last == nil {
		return err
	}
	return last.err
}

// waitRun waits for a build's end and returns its error.
func (m *Manager) waitRun(ctx context.Context, run *buildRun) error {
	var err error
	werr := m.reg.waitFor(ctx, func() bool {
		err = run.err
		return run.finished
	})
	if werr != nil {
		return werr
	}
	return err
}

// buildSystem builds the container's system from its flake (FLAKE in the conf file)
// or from text, its configuration.nix as it was when the build was queued. nix
// evaluates a host-owned copy of the text, never the file in the root tree: nix would
// follow a guest's symlink there to a host file.
func (m *Manager) buildSystem(ctx context.Context, name string, conf Conf, text []byte) error {
	if flake := conf.Get("FLAKE"); flake != "" {
		return m.nix.buildFlake(ctx, m.l.ProfilePath(name), m.l.GCRootPath(name), flake, m.output(name))
	}
	input := m.l.BuildInputPath(name)
	if err := os.MkdirAll(filepath.Dir(input), 0o700); err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	if err := writeFileAtomic(input, text, 0o600); err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	if err := m.nix.build(ctx, m.l.ProfilePath(name), m.l.GCRootPath(name), input, m.output(name)); err != nil {
		return err
	}
	return m.l.saveGenerationText(name, text)
}

// OpenBuildLog opens the log of the container's last build, which grows while a build
// runs; os.ErrNotExist when there was none.
func (m *Manager) OpenBuildLog(name string) (*os.File, error) {
	if _, err := m.reg.lookup(name); err != nil {
		return nil, err
	}
	return os.Open(m.l.BuildLogPath(name))
}
