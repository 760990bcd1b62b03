package ops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// Status is what is known of one container, as its `status` file and `nixcfs status
// --json` show it. Reading it asks nobody: the registry is kept current by signals.
type Status struct {
	Name         string     `json:"name"`
	State        State      `json:"state"`
	Unit         string     `json:"unit"`
	ActiveState  string     `json:"active_state"`
	SubState     string     `json:"sub_state"`
	Leader       int        `json:"leader"`
	Since        time.Time  `json:"since"`
	HostAddress  string     `json:"host_address"`
	LocalAddress string     `json:"local_address"`
	HostBridge   string     `json:"host_bridge,omitempty"`
	HostPort     string     `json:"host_port,omitempty"`
	Interface    string     `json:"interface"`
	System       string     `json:"system"`
	Generation   int        `json:"generation"`
	Config       BuildState `json:"config"`
	Autostart    bool       `json:"autostart"`
	Declarative  bool       `json:"declarative"`
	Error        string     `json:"error"`
	Notice       string     `json:"notice,omitempty"`
	// BuildProgress is how far the build in progress is; nil when none runs.
	BuildProgress *BuildProgress `json:"build_progress,omitempty"`
}

// List returns the names of all containers, sorted.
func (m *Manager) List() []string { return m.reg.names() }

// Exists tells whether a container of that name is known.
func (m *Manager) Exists(name string) bool {
	m.reg.mu.Lock()
	defer m.reg.mu.Unlock()
	return m.reg.records[name] != nil
}

// State is the container's state.
func (m *Manager) State(name string) (State, error) {
	m.reg.mu.Lock()
	defer m.reg.mu.Unlock()
	c := m.reg.records[name]
	if c == nil {
		return StateStopped, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return m.reg.stateLocked(c), nil
}

// Status is everything the `status` file shows.
func (m *Manager) Status(name string) (Status, error) {
	m.reg.mu.Lock()
	c := m.reg.records[name]
	if c == nil {
		m.reg.mu.Unlock()
		return Status{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	u := m.reg.units[name]
	st := Status{
		Name: name, State: m.reg.stateLocked(c), Unit: UnitName(name),
		ActiveState: u.ActiveState, SubState: u.SubState, Since: u.Since,
		Leader: u.Leader, HostAddress: c.conf.Get("HOST_ADDRESS"),
		LocalAddress: c.conf.Get("LOCAL_ADDRESS"), HostBridge: c.conf.Get("HOST_BRIDGE"),
		HostPort: c.conf.Get("HOST_PORT"), Config: c.build,
		Autostart: c.conf.Get("AUTO_START") == "1", Error: c.lastErr, Notice: c.notice,
		Declarative: c.declarative,
	}
	if c.conf.Get("PRIVATE_NETWORK") == "1" {
		st.Interface = HostInterface(name)
	}
	if c.running != nil {
		p := c.running.progress
		st.BuildProgress = &p
	} else if c.foreign != nil {
		p := *c.foreign
		st.BuildProgress = &p
	}
	sysLink := m.l.SystemOf(name, c.conf)
	m.reg.mu.Unlock()
	if st.ActiveState == "" {
		st.ActiveState, st.SubState = unitInactive, unitDead
	}
	st.System, st.Generation = systemGeneration(sysLink)
	if st.Config == BuildUnknown && st.System != "" {
		st.Config = BuildBuilt
	}
	return st, nil
}

// Conf returns a copy of the container's conf file as last read.
func (m *Manager) Conf(name string) (Conf, error) {
	m.reg.mu.Lock()
	defer m.reg.mu.Unlock()
	c, err := m.reg.lookupLocked(name)
	if err != nil {
		return Conf{}, err
	}
	return c.conf.clone(), nil
}

var generationRE = regexp.MustCompile(`-(\d+)-link$`)

// systemGeneration reads the profile's current system and generation number.
func systemGeneration(systemLink string) (system string, gen int) {
	target, err := os.Readlink(systemLink)
	if err != nil {
		return "", 0
	}
	// system -> system-N-link -> /nix/store/...
	if m := generationRE.FindStringSubmatch(target); m != nil {
		gen, _ = strconv.Atoi(m[1])
	}
	system, err = filepath.EvalSymlinks(systemLink)
	if err != nil {
		return "", gen
	}
	return system, gen
}

// Watch streams the changes of the container name, or of every container when name is
// "", from now on until ctx ends. A reader that falls more than its buffer behind loses
// events rather than holding up the manager.
func (m *Manager) Watch(ctx context.Context, name string) <-chan Event {
	return m.reg.watch(ctx, name)
}

// NoteError records a failure that the caller saw on the container's behalf (a value
// one of its files does not take) as the `error` of its status, and tells watchers.
func (m *Manager) NoteError(name string, err error) { m.reg.noteError(name, err) }
