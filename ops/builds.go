package ops

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Builds of one container never overlap: a build is claimed (claimBuild waits until
// none runs), run in the background under the manager's context (runBuild), and
// finished (finishBuild), which records its outcome for status and for waiters
// (WaitBuilt). The caller that claimed it may stop waiting; the build goes on.

// buildRun is one build of a container's system.
type buildRun struct {
	ctx    context.Context // under the manager's: Close and Destroy cancel it
	cancel context.CancelFunc
	// Guarded by the registry's mu.
	finished bool
	err      error
}

// claimLocked marks a build of c as begun. Its context exists from the claim on, so
// that Destroy can cancel a build that is claimed but not yet running.
func (m *Manager) claimLocked(c *record) *buildRun {
	ctx, cancel := context.WithCancel(m.ctx)
	run := &buildRun{ctx: ctx, cancel: cancel}
	c.running, c.build = run, BuildBuilding
	return run
}

// claimBuild waits until no build of c runs (its result is not ours), then claims a
// new one: each caller's text is the one built.
func (m *Manager) claimBuild(ctx context.Context, c *record) (*buildRun, error) {
	var run *buildRun
	err := m.reg.waitFor(ctx, func() bool {
		if c.running != nil {
			return false
		}
		if !c.destroying {
			run = m.claimLocked(c)
			m.reg.publishLocked(c.name, EventConfig, BuildBuilding.String())
		}
		return true
	})
	if err == nil && run == nil {
		err = fmt.Errorf("%w: %s", ErrNotFound, c.name)
	}
	return run, err
}

// runBuild runs a claimed build in the background: it goes on when the caller stops
// waiting, and Destroy or Close cancel it.
func (m *Manager) runBuild(c *record, run *buildRun, build func(context.Context) error) {
	m.goBackground(func() {
		defer run.cancel()
		start := time.Now()
		err := run.ctx.Err() // cancelled before it began
		if err == nil {
			err = build(run.ctx)
		}
		m.finishBuild(c, run, err, time.Since(start))
	})
}

// finishBuild records a build's outcome: the container's build state and error, and
// the end of its first build (creating).
func (m *Manager) finishBuild(c *record, run *buildRun, err error, took time.Duration) {
	var reason string
	if err != nil {
		reason = oneLine(buildError(m.l.BuildLogPath(c.name), err)) // reads the log: not under the lock
	}
	_, confErr := os.Stat(m.l.ConfPath(c.name))
	m.reg.mu.Lock()
	defer m.reg.mu.Unlock()
	wasCreating := c.creating
	c.creating = false
	run.finished, run.err = true, err
	c.running, c.last = nil, run
	m.reg.changed.Broadcast()
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
		c.build, c.lastErr = BuildFailed, reason
		m.log.Warn().Str("container", c.name).Dur("took", took).Str("error", reason).Msg("build failed")
		m.reg.publishLocked(c.name, EventConfig, BuildFailed.String())
		m.reg.publishLocked(c.name, EventError, reason)
	} else {
		c.build, c.lastErr = BuildBuilt, ""
		m.log.Info().Str("container", c.name).Dur("took", took).Msg("built")
		m.reg.publishLocked(c.name, EventConfig, BuildBuilt.String())
	}
	if wasCreating {
		m.reg.publishLocked(c.name, EventState, m.reg.stateLocked(c).String())
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

// WaitBuilt waits for the build in progress, or else takes the last one, and returns
// its error; nil when the container was never built here.
func (m *Manager) WaitBuilt(ctx context.Context, name string) error {
	c, err := m.reg.lookup(name)
	if err != nil {
		return err
	}
	m.reg.mu.Lock()
	run := c.running
	if run == nil {
		run = c.last
	}
	m.reg.mu.Unlock()
	if run == nil {
		return nil
	}
	return m.waitRun(ctx, run)
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
// or from its configuration.nix.
func (m *Manager) buildSystem(ctx context.Context, name string, conf Conf) error {
	if flake := conf.Get("FLAKE"); flake != "" {
		return m.nix.buildFlake(ctx, m.l.ProfilePath(name), m.l.GCRootPath(name), flake, m.l.BuildLogPath(name))
	}
	return m.nix.build(ctx, m.l.ProfilePath(name), m.l.GCRootPath(name), m.l.ConfigPath(name), m.l.BuildLogPath(name))
}

// OpenBuildLog opens the log of the container's last build, which grows while a build
// runs; os.ErrNotExist when there was none.
func (m *Manager) OpenBuildLog(name string) (*os.File, error) {
	if _, err := m.reg.lookup(name); err != nil {
		return nil, err
	}
	return os.Open(m.l.BuildLogPath(name))
}
