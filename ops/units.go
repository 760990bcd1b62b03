package ops

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Unit operations: each is a systemd job on container@NAME.service, then a wait until
// the registry, which follows systemd's signals, shows the outcome (settle). A job's
// end and the state signals travel separately, so the job's result alone says little.

// settleTimeout bounds every wait for a state after a job.
const settleTimeout = 90 * time.Second

// settle waits until done holds for the container's state and the count of its unit's
// state reports so far, or the container is gone.
func (m *Manager) settle(ctx context.Context, name string, done func(st State, reports uint64) bool) error {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	return m.reg.waitFor(ctx, func() bool {
		c := m.reg.records[name]
		return c == nil || done(m.reg.stateLocked(c), m.reg.seq[name])
	})
}

func (m *Manager) unitReports(name string) uint64 {
	m.reg.mu.Lock()
	defer m.reg.mu.Unlock()
	return m.reg.seq[name]
}

// Start starts the container and returns once it reported ready, or with the unit's
// failure. Start of a running container succeeds; start while creating waits for the
// build first. A stop, terminate or restart meanwhile overrides it (ErrOverridden).
func (m *Manager) Start(ctx context.Context, name string) error {
	return m.noted(name, m.startWith(ctx, name, opStart, m.sup.start))
}

// Restart stops and starts the container.
func (m *Manager) Restart(ctx context.Context, name string) error {
	return m.noted(name, m.startWith(ctx, name, opRestart, m.sup.restart))
}

func (m *Manager) startWith(ctx context.Context, name, kind string, job func(context.Context, string) error) error {
	c, err := m.reg.lookup(name)
	if err != nil {
		return err
	}
	ctx, lastLook, end := m.beginOp(ctx, c, kind)
	defer end()
	// A build in progress ends first, this process's or another's, outside the unit
	// slot, which Destroy must not wait on for a whole build.
	buildErr := m.WaitBuilt(ctx, name)
	if err := m.waitForeign(ctx, name); err != nil {
		buildErr = err // another process's build (the command line's, the mount's)
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	unlock, err := c.unitSlot.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := m.requireSystem(name, buildErr); err != nil {
		return err
	}
	if err := lastLook(); err != nil {
		return err // another process's stop since the watcher's last look
	}
	before, began := m.unitReports(name), time.Now()
	jobErr := job(ctx, UnitName(name))
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if jobErr == nil {
		m.settle(ctx, name, func(st State, reports uint64) bool {
			return st.Running() || st.Down() && reports > before
		})
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if st, _ := m.State(name); st.Running() {
			m.reg.noteError(name, nil)
			return nil
		}
	}
	if err := lastLook(); err != nil {
		return err // down by another process's stop or terminate: no failure
	}
	return m.startFailure(name, jobErr, began)
}

// hasSystem tells whether the container has a system to start; an error when it is
// gone.
func (m *Manager) hasSystem(name string) (bool, error) {
	conf, err := m.Conf(name)
	if err != nil {
		return false, err
	}
	sys, _ := systemGeneration(m.l.SystemOf(name, conf))
	return sys != "", nil
}

// requireSystem fails when the container has no system to start. A failed build
// leaves the previous system, which starts; its error matters only when there is none.
func (m *Manager) requireSystem(name string, buildErr error) error {
	if has, err := m.hasSystem(name); err != nil || has {
		return err // gone meanwhile, or ready
	}
	if buildErr != nil {
		return buildErr
	}
	return fmt.Errorf("%w: %s (see build.log)", ErrNotBuilt, name)
}

// startFailure says why a start did not end with the container running, from systemd
// itself: a late signal may still say it runs.
func (m *Manager) startFailure(name string, jobErr error, began time.Time) error {
	unit := UnitName(name)
	us := m.sup.unitStateOf(m.ctx, unit)
	if jobErr == nil && us.ActiveState == unitActive {
		return nil
	}
	reason := fmt.Sprintf("%s is %s (result: %s)", unit, us.ActiveState, us.Result)
	if jobErr != nil {
		reason = fmt.Sprintf("%v; %s", jobErr, reason)
	}
	if step := stepError(m.ctx, unit, began); step != "" {
		reason += ": " + step
	}
	return fmt.Errorf("%w: %s; see its log", ErrStartFailed, reason)
}

// Stop stops the container and returns once it is down. It overrides a start or
// restart in progress.
func (m *Manager) Stop(ctx context.Context, name string) error {
	return m.noted(name, m.stopWith(ctx, name, opStop, m.sup.stop))
}

// Terminate kills every process of the container at once (machinectl terminate).
func (m *Manager) Terminate(ctx context.Context, name string) error {
	return m.noted(name, m.stopWith(ctx, name, opTerminate, m.sup.kill))
}

func (m *Manager) stopWith(ctx context.Context, name, kind string, job func(context.Context, string) error) error {
	c, err := m.reg.lookup(name)
	if err != nil {
		return err
	}
	ctx, _, end := m.beginOp(ctx, c, kind)
	defer end()
	if err := job(ctx, UnitName(name)); err != nil {
		// systemd has nothing to kill in a unit that is down (or not loaded): the
		// container is terminated already, as a stop of a stopped one is done. A word
		// written to state must be idempotent.
		if st, _ := m.State(name); kind != opTerminate || !st.Down() || ctx.Err() != nil {
			return err
		}
	}
	clearsError := kind == opStop
	if clearsError {
		m.reg.noteError(name, nil)
	}
	return m.settle(ctx, name, func(st State, _ uint64) bool { return st.Down() })
}

// Reload activates the current system of a running container without a restart.
func (m *Manager) Reload(ctx context.Context, name string) error {
	return m.noted(name, m.reload(ctx, name))
}

func (m *Manager) reload(ctx context.Context, name string) error {
	if _, err := m.reg.lookup(name); err != nil {
		return err
	}
	if st, _ := m.State(name); !st.Running() {
		return fmt.Errorf("%w: %s is %s, not running: nothing to reload", ErrInvalid, name, st)
	}
	return m.reloadUnit(ctx, name)
}

func (m *Manager) reloadUnit(ctx context.Context, name string) error {
	began := time.Now()
	if err := m.sup.reload(ctx, UnitName(name)); err != nil {
		// The step says why: a guest's control socket that leads out of its tree.
		if step := stepError(m.ctx, UnitName(name), began); step != "" {
			return fmt.Errorf("reload %s: %w: %s (see log)", name, err, step)
		}
		return fmt.Errorf("reload %s: %w (see log)", name, err)
	}
	return nil
}

// StartAutostart starts, one after another, every stopped container whose conf says
// AUTO_START=1: what the host's boot does for them, done when nixcfs mount starts (as a
// boot-time unit). It returns the names it started and the errors of the others.
func (m *Manager) StartAutostart(ctx context.Context) ([]string, error) {
	var started []string
	var errs []error
	for _, name := range m.List() {
		conf, err := m.Conf(name)
		if err != nil || conf.Get("AUTO_START") != "1" {
			continue
		}
		if st, _ := m.State(name); st.Busy() {
			continue
		}
		if err := m.Start(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("autostart %s: %w", name, err))
			continue
		}
		started = append(started, name)
	}
	return started, errors.Join(errs...)
}
