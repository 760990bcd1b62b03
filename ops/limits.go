package ops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// Resource limits are properties of the container's unit, set over D-Bus as
// `systemctl set-property` sets them: kept in a drop-in under systemControlDirs (so
// they hold across restarts and reboots, under nixcfs's template and NixOS's alike)
// and applied at once to a running container. They are read back from systemd.

// systemControlDirs hold systemd's drop-ins of set-property, persistent and runtime.
var systemControlDirs = []string{"/etc/systemd/system.control", "/run/systemd/system.control"}

// limitEvents are the kinds of event a change of each limit is told by.
var limitEvents = map[string]EventKind{
	"memory.max": EventMemoryMax, "cpu.max": EventCPUMax, "pids.max": EventPidsMax,
	"cpu.weight": EventCPUWeight, "io.weight": EventIOWeight,
}

// Limits are the container's resource limits, as systemd holds them now.
//
// What systemd said is kept for limitsMaxAge, so that a burst of reads (ls -l stats
// every limit file twice) asks it once; a change through nixcfs is seen at once.
func (m *Manager) Limits(ctx context.Context, name string) (Limits, error) {
	c, err := m.reg.lookup(name)
	if err != nil {
		return Limits{}, err
	}
	m.reg.mu.Lock()
	cached, at := c.limits, c.limitsAt
	m.reg.mu.Unlock()
	if cached != nil && time.Since(at) < limitsMaxAge {
		return *cached, nil
	}
	l, err := m.sup.limits(ctx, UnitName(name))
	if err != nil {
		return Limits{}, err
	}
	m.reg.mu.Lock()
	c.limits, c.limitsAt = &l, time.Now()
	m.reg.mu.Unlock()
	return l, nil
}

// limitsMaxAge is how long what systemd said of a container's limits is taken as
// true: changes made with systemctl set-property, which systemd sends no signal for,
// show after it.
const limitsMaxAge = time.Second

// SetLimits writes limits by key (LimitKeys), in cgroup v2's syntax: all of them, or
// none when one is bad (ErrInvalid) or systemd refuses them. A running container has
// them at once.
func (m *Manager) SetLimits(ctx context.Context, name string, values map[string]string) error {
	return m.noted(name, m.setLimits(ctx, name, values))
}

func (m *Manager) setLimits(ctx context.Context, name string, values map[string]string) error {
	if _, err := m.reg.lookupForChange(name); err != nil {
		return err
	}
	if len(values) == 0 {
		return nil
	}
	if _, err := (Limits{}).With(values); err != nil {
		return err // before anything is asked of systemd
	}
	unit := UnitName(name)
	cur, err := m.sup.limits(ctx, unit)
	if err != nil {
		return err
	}
	next, err := cur.With(values)
	if err != nil {
		return err
	}
	err = m.sup.setProperties(ctx, unit, limitProperties(cur, next, values))
	m.reg.mu.Lock()
	defer m.reg.mu.Unlock()
	if c := m.reg.records[name]; c != nil {
		c.limits = nil // read again, whatever systemd took
	}
	if err != nil {
		return err
	}
	for _, k := range LimitKeys {
		if _, ok := values[k]; ok {
			m.reg.publishLocked(name, limitEvents[k], next.Text(k))
		}
	}
	return nil
}

// limitProperties are the unit properties that make the written keys of next so.
func limitProperties(cur, next Limits, values map[string]string) []sd.Property {
	prop := func(name string, v uint64) sd.Property {
		return sd.Property{Name: name, Value: dbus.MakeVariant(v)}
	}
	var props []sd.Property
	for _, k := range LimitKeys {
		if _, ok := values[k]; !ok {
			continue
		}
		switch k {
		case "memory.max":
			props = append(props, prop("MemoryMax", next.MemoryMax))
		case "cpu.max":
			if next.CPUPeriod != cur.CPUPeriod {
				props = append(props, prop("CPUQuotaPeriodUSec", next.CPUPeriod))
			}
			props = append(props, prop("CPUQuotaPerSecUSec", next.CPUQuota))
		case "pids.max":
			props = append(props, prop("TasksMax", next.TasksMax))
		case "cpu.weight":
			props = append(props, prop("CPUWeight", next.CPUWeight))
		case "io.weight":
			props = append(props, prop("IOWeight", next.IOWeight))
		}
	}
	return props
}

// limitProps are the Service properties that hold the limits.
var limitProps = []string{"MemoryMax", "CPUQuotaPerSecUSec", "CPUQuotaPeriodUSec", "TasksMax", "CPUWeight", "IOWeight"}

// limits reads the unit's limits, property by property: far cheaper than all of the
// Service interface's hundreds at once.
func (s *supervisor) limits(ctx context.Context, unit string) (Limits, error) {
	var v [6]uint64
	for i, name := range limitProps {
		p, err := s.conn.GetServicePropertyContext(ctx, unit, name)
		if err != nil {
			return Limits{}, fmt.Errorf("%w: read limits of %s: %v", ErrUnitOperation, unit, err)
		}
		var ok bool
		if v[i], ok = p.Value.Value().(uint64); !ok {
			v[i] = NoLimit
		}
	}
	return Limits{MemoryMax: v[0], CPUQuota: v[1], CPUPeriod: v[2], TasksMax: v[3], CPUWeight: v[4], IOWeight: v[5]}, nil
}

// setProperties sets unit properties persistently (runtime=false), as set-property.
func (s *supervisor) setProperties(ctx context.Context, unit string, props []sd.Property) error {
	if err := s.conn.SetUnitPropertiesContext(ctx, unit, false, props...); err != nil {
		var dbusErr dbus.Error
		if errors.As(err, &dbusErr) && dbusErr.Name == "org.freedesktop.DBus.Error.InvalidArgs" {
			return fmt.Errorf("%w: %s: %v", ErrInvalid, unit, err)
		}
		return fmt.Errorf("%w: set limits of %s: %v", ErrUnitOperation, unit, err)
	}
	return nil
}

// forgetLimits removes the drop-ins of the container's limits, so that a container
// made later under the same name starts without them, and has systemd read its unit
// again if there were any.
func (m *Manager) forgetLimits(ctx context.Context, name string) error {
	removed := false
	for _, dir := range systemControlDirs {
		d := filepath.Join(dir, UnitName(name)+".d")
		if _, err := os.Lstat(d); err != nil {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("remove limits of %s: %w", name, err)
		}
		removed = true
	}
	if !removed {
		return nil
	}
	if err := m.sup.conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("systemd daemon-reload: %w", err)
	}
	return nil
}
