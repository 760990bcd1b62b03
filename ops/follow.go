package ops

import (
	"context"
	"path/filepath"
	"strings"
)

// The Manager's view follows two sources without polling: systemd's PropertiesChanged
// signals for the units (followSystemd), and inotify on the conf directory for
// containers made, edited or removed by other programs (followConfDir).

// readAll fills the registry at start: units first, then conf files, so that no change
// falls between the subscription (made by newSupervisor) and the reading.
func (m *Manager) readAll(ctx context.Context) error {
	if err := m.resync(ctx); err != nil {
		return err
	}
	names, err := listConfNames(m.l.ConfDir)
	if err != nil {
		return err
	}
	for _, n := range names {
		m.refreshConf(n, false)
	}
	return nil
}

// resync reads every container unit's state at once (start-up, or after signals were
// dropped).
func (m *Manager) resync(ctx context.Context) error {
	snap, err := m.sup.snapshot(ctx)
	if err != nil {
		return err
	}
	for unit, st := range snap {
		if name, ok := containerOfUnit(unit); ok {
			snap[unit] = m.withLeader(name, st)
		}
	}
	m.reg.mu.Lock()
	defer m.reg.mu.Unlock()
	for name := range m.reg.units {
		if _, ok := snap[UnitName(name)]; !ok {
			m.reg.setUnitLocked(name, unitState{ActiveState: unitInactive, SubState: unitDead})
		}
	}
	for unit, st := range snap {
		if name, ok := containerOfUnit(unit); ok {
			m.reg.setUnitLocked(name, st)
		}
	}
	return nil
}

// withLeader completes a unit state with the container's leader (its init, the child
// of nspawn), read from /proc outside the registry's lock. A signal of an active unit
// may lack the main PID: the one known before stands.
func (m *Manager) withLeader(name string, st unitState) unitState {
	m.reg.mu.Lock()
	old := m.reg.units[name]
	m.reg.mu.Unlock()
	switch {
	case unitUp(st.ActiveState):
		if st.MainPID == 0 {
			st.MainPID = old.MainPID
		}
		st.Leader = old.Leader
		if st.MainPID != old.MainPID || old.Leader == 0 {
			st.Leader, _ = LeaderOf(st.MainPID)
		}
	case st.ActiveState == unitInactive || st.ActiveState == unitFailed:
		st.Leader = 0
	default:
		st.Leader = old.Leader // starting or stopping: whatever was known
	}
	return st
}

func (m *Manager) followSystemd() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case err := <-m.sup.errs:
			m.log.Warn().Err(err).Msg("systemd signals dropped; reading unit states again")
			if err := m.resync(m.ctx); err != nil {
				m.log.Error().Err(err).Msg("resync")
			}
		case u := <-m.sup.updates:
			name, ok := containerOfUnit(u.UnitName)
			if !ok {
				continue
			}
			m.reg.mu.Lock()
			st := m.reg.units[name]
			moved := applyChanged(&st, u.Changed)
			m.reg.mu.Unlock()
			if !moved {
				continue
			}
			if st.ActiveState != unitActivating && st.ActiveState != unitDeactivating {
				// Transitions only: main PID and result are not in the signal.
				st.MainPID, st.Result = 0, ""
				m.sup.fillDetails(m.ctx, u.UnitName, &st)
			}
			st = m.withLeader(name, st)
			m.reg.mu.Lock()
			m.reg.setUnitLocked(name, st)
			m.reg.mu.Unlock()
		}
	}
}

func (m *Manager) followConfDir() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case err, ok := <-m.fsw.Errors:
			if !ok {
				return
			}
			m.log.Warn().Err(err).Msg("inotify")
		case ev, ok := <-m.fsw.Events:
			if !ok {
				return
			}
			name, isConf := strings.CutSuffix(filepath.Base(ev.Name), ".conf")
			if isConf && nameRE.MatchString(name) {
				m.refreshConf(name, true)
			}
		}
	}
}

// refreshConf reads NAME.conf again: a container appears, changes or vanishes. A
// container whose first build runs here is left to that build, which knows whether it
// was removed meanwhile (finishBuild).
func (m *Manager) refreshConf(name string, announce bool) {
	path := m.l.ConfPath(name)
	m.reg.mu.Lock()
	_, known := m.reg.records[name]
	_, unitKnown := m.reg.units[name]
	m.reg.mu.Unlock()
	var st unitState
	if !known && !unitKnown {
		// Asked once, when it first appears, outside the locks.
		st = m.withLeader(name, m.sup.unitStateOf(m.ctx, UnitName(name)))
	}
	m.confMu.Lock()
	defer m.confMu.Unlock()
	conf, err := ReadConf(path)
	if err != nil {
		m.reg.mu.Lock()
		if c := m.reg.records[name]; c != nil && !c.creating {
			m.reg.forgetLocked(c)
		}
		m.reg.mu.Unlock()
		return
	}
	decl := isDeclarative(path)
	last := m.l.loadBuildOutcome(name)
	outcome, reason := last.state, last.reason
	m.reg.mu.Lock()
	defer m.reg.mu.Unlock()
	c := m.reg.records[name]
	if c == nil {
		c = newRecord(name)
		c.conf, c.declarative = conf, decl
		c.build, c.lastErr, c.buildErr = outcome, reason, reason
		m.reg.records[name] = c
		if _, known := m.reg.units[name]; !known {
			m.reg.units[name] = st // unless a signal came while systemd was asked
		}
		m.reg.setUnitLocked(name, m.reg.units[name])
		if announce {
			m.log.Info().Str("container", name).Msg("container appeared")
			m.reg.announceLocked(c)
		} else {
			c.announced = true // known from the start: its removal is news
		}
		return
	}
	c.declarative = decl
	m.reg.setConfLocked(c, conf)
}
