package ops

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"nixcfs/internal/cgroup"
)

// Live usage of a container: its unit's cgroup counters (package cgroup), the host
// side of its veth pair, and how long its unit has been active. Reading them runs no
// process; systemd is asked once per start, for the unit's cgroup and start time.

// Stats are a container's usage now; all zero while it is down.
type Stats struct {
	MemoryCurrent uint64 `json:"memory_current"` // bytes
	MemoryPeak    uint64 `json:"memory_peak"`    // bytes; 0 where the kernel keeps no peak
	CPUUsageUsec  uint64 `json:"cpu_usage_usec"`
	Tasks         uint64 `json:"tasks"`
	IOReadBytes   uint64 `json:"io_read_bytes"`
	IOWriteBytes  uint64 `json:"io_write_bytes"`
	NetRxBytes    uint64 `json:"net_rx_bytes"` // as the guest sees them
	NetTxBytes    uint64 `json:"net_tx_bytes"`
	UptimeS       uint64 `json:"uptime_s"`
}

// StatField is one of the stats by its key (its JSON name).
type StatField struct {
	Key   string
	Value uint64
}

// Fields are the stats in a stable order.
func (s Stats) Fields() []StatField {
	return []StatField{
		{"memory_current", s.MemoryCurrent}, {"memory_peak", s.MemoryPeak},
		{"cpu_usage_usec", s.CPUUsageUsec}, {"tasks", s.Tasks},
		{"io_read_bytes", s.IOReadBytes}, {"io_write_bytes", s.IOWriteBytes},
		{"net_rx_bytes", s.NetRxBytes}, {"net_tx_bytes", s.NetTxBytes},
		{"uptime_s", s.UptimeS},
	}
}

// unitRuns remembers, for each running container, what systemd said of its unit when
// it started. Its mu is taken alone, for memory work only.
type unitRuns struct {
	mu     sync.Mutex
	hs     cgroup.Hierarchies // the mounted hierarchies, read once
	hsRead bool
	runs   map[string]unitRun
}

// unitRun is one start of a unit, known by its main process.
type unitRun struct {
	mainPID     int
	cgroup      string // ControlGroup
	activeSince time.Time
}

// Stats reads the container's usage. It is zero while the container is down.
func (m *Manager) Stats(ctx context.Context, name string) (Stats, error) {
	m.reg.mu.Lock()
	c, err := m.reg.lookupLocked(name)
	if err != nil {
		m.reg.mu.Unlock()
		return Stats{}, err
	}
	up, mainPID := m.reg.stateLocked(c).Busy(), m.reg.units[name].MainPID
	private := c.conf.Get("PRIVATE_NETWORK") == "1"
	m.reg.mu.Unlock()
	if !up {
		m.runs.forget(name)
		return Stats{}, nil
	}
	run, err := m.unitRunOf(ctx, name, mainPID)
	if err != nil || run.cgroup == "" {
		return Stats{}, err // no group: the unit went down meanwhile
	}
	counters := m.runs.hierarchies().Read(run.cgroup)
	s := Stats{
		MemoryCurrent: counters.MemoryCurrent, MemoryPeak: counters.MemoryPeak,
		CPUUsageUsec: counters.CPUUsageUsec, Tasks: counters.Tasks,
		IOReadBytes: counters.IOReadBytes, IOWriteBytes: counters.IOWriteBytes,
	}
	if private {
		s.NetRxBytes, s.NetTxBytes = guestNetBytes(name)
	}
	if !run.activeSince.IsZero() {
		s.UptimeS = uint64(time.Since(run.activeSince) / time.Second)
	}
	return s, nil
}

// unitRunOf is what systemd says of the unit's current start, asked once per main
// process (while it starts or stops, when there is none, at every call).
func (m *Manager) unitRunOf(ctx context.Context, name string, mainPID int) (unitRun, error) {
	if run, ok := m.runs.get(name, mainPID); ok {
		return run, nil
	}
	unit := UnitName(name)
	p, err := m.sup.conn.GetServicePropertyContext(ctx, unit, "ControlGroup")
	if err != nil {
		return unitRun{}, fmt.Errorf("%w: control group of %s: %v", ErrUnitOperation, unit, err)
	}
	run := unitRun{mainPID: mainPID}
	run.cgroup, _ = p.Value.Value().(string)
	if p, err := m.sup.conn.GetUnitPropertyContext(ctx, unit, "ActiveEnterTimestamp"); err == nil {
		if us, ok := p.Value.Value().(uint64); ok && us > 0 {
			run.activeSince = time.UnixMicro(int64(us))
		}
	}
	if mainPID > 0 && run.cgroup != "" && !run.activeSince.IsZero() {
		m.runs.put(name, run)
	}
	return run, nil
}

func (u *unitRuns) get(name string, mainPID int) (unitRun, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	run, ok := u.runs[name]
	return run, ok && mainPID > 0 && run.mainPID == mainPID
}

func (u *unitRuns) put(name string, run unitRun) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.runs == nil {
		u.runs = map[string]unitRun{}
	}
	u.runs[name] = run
}

func (u *unitRuns) forget(name string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.runs, name)
}

// hierarchies are the cgroup mounts, read at the first use: they do not move while
// the host runs.
func (u *unitRuns) hierarchies() cgroup.Hierarchies {
	u.mu.Lock()
	hs, read := u.hs, u.hsRead
	u.mu.Unlock()
	if read {
		return hs
	}
	hs, err := cgroup.Mounted()
	if err != nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.hs, u.hsRead = hs, true
	return hs
}

// guestNetBytes are the bytes the guest received and sent: what the host side of its
// veth pair sent and received. The host side is ve-NAME, or vb-NAME when nspawn
// attached it to a bridge (NixOS's template with HOST_BRIDGE).
func guestNetBytes(name string) (rx, tx uint64) {
	for _, ifname := range []string{HostInterface(name), "vb-" + name} {
		link, err := netlink.LinkByName(ifname)
		if err != nil {
			continue
		}
		if st := link.Attrs().Statistics; st != nil {
			return st.TxBytes, st.RxBytes
		}
	}
	return 0, 0
}
