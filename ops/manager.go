package ops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"
)

// Options configure a Manager. The zero value of each field means the default.
type Options struct {
	Layout            Layout   // default DetectLayout()
	NixOSPath         string   // entry point for builds, default <nixpkgs/nixos>
	NixcfsBin         string   // this program, for the unit template; default os.Executable
	UnitDir           string   // where the runtime template goes, default /run/systemd/system
	UnitSearchDirs    []string // where a host's own container@.service is looked for
	MaxParallelBuilds int      // default 4
	// ReplaceTemplate rewrites nixcfs's container@.service for this binary even when a
	// working one is installed: for the long-running mount, not for one-shot verbs.
	ReplaceTemplate bool
	Log             zerolog.Logger
}

// Manager creates, builds, starts, stops, updates, inspects and destroys NixOS
// containers. Its view of every container is kept in memory, current from systemd's
// signals and from inotify on the conf directory; Status and List never ask systemd.
type Manager struct {
	l       Layout
	log     zerolog.Logger
	sup     *supervisor
	builder *builder
	fsw     *fsnotify.Watcher

	ctx    context.Context // ends with Close: background builds and loops
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	containers map[string]*container
	units      map[string]unitState // by container name, also for units without conf
	seq        map[string]uint64    // counts each container's unit state reports
	watchers   map[chan Event]struct{}
	changed    *sync.Cond // broadcast on every state change, for waiters
}

// container is the in-memory record of one container, guarded by Manager.mu.
type container struct {
	name        string
	conf        Conf
	declarative bool
	leader      int
	creating    bool      // its first build runs
	destroying  bool      // Destroy has begun: no new build or start
	config      string    // "", "building", "built", "failed"
	build       *buildRun // the build in progress
	lastBuild   *buildRun // the one before, for WaitBuilt
	lastErr     string
	// unitLock (one slot) keeps Start and Restart apart from Destroy, which would
	// otherwise race prestart recreating the root tree it removes.
	unitLock chan struct{}
}

// buildRun is one build of a container's system.
type buildRun struct {
	done   chan struct{} // closed when it ended; err is set then
	err    error
	ctx    context.Context // under the manager's: Close and Destroy cancel it
	cancel context.CancelFunc
}

func newContainer(name string) *container {
	return &container{name: name, unitLock: make(chan struct{}, 1)}
}

// lockUnit takes the container's unit lock, or gives up when ctx ends.
func (c *container) lockUnit(ctx context.Context) (unlock func(), err error) {
	select {
	case c.unitLock <- struct{}{}:
		return func() { <-c.unitLock }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// New connects to systemd, installs the unit template where the host has none, reads
// the conf directory and starts following changes.
func New(ctx context.Context, opts Options) (*Manager, error) {
	if opts.Layout == (Layout{}) {
		opts.Layout = DetectLayout()
	}
	if opts.NixcfsBin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		opts.NixcfsBin = exe
	}
	if opts.UnitDir == "" {
		opts.UnitDir = "/run/systemd/system"
	}
	if opts.UnitSearchDirs == nil {
		opts.UnitSearchDirs = []string{"/etc/systemd/system", "/run/systemd/system",
			"/usr/lib/systemd/system", "/lib/systemd/system"}
	}
	if opts.MaxParallelBuilds == 0 {
		opts.MaxParallelBuilds = 4
	}
	l := opts.Layout
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{l.ConfDir, 0o755}, {l.StateDir, 0o700}, {l.ProfileDir, 0o700}, {l.GCRootDir, 0o755}, {l.LogDir, 0o755}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("state directories: %w", err)
		}
	}
	sup, err := newSupervisor()
	if err != nil {
		return nil, err
	}
	tmpl, err := sup.installTemplate(ctx, opts.UnitDir, opts.UnitSearchDirs, opts.NixcfsBin, l, opts.ReplaceTemplate)
	if err != nil {
		sup.close()
		return nil, err
	}
	fsw, err := fsnotify.NewWatcher()
	if err == nil {
		err = fsw.Add(l.ConfDir)
	}
	if err != nil {
		sup.close()
		return nil, fmt.Errorf("watch %s: %w", l.ConfDir, err)
	}
	m := &Manager{
		l: l, log: opts.Log, sup: sup, fsw: fsw,
		builder:    newBuilder(opts.NixOSPath, opts.MaxParallelBuilds),
		containers: map[string]*container{},
		units:      map[string]unitState{},
		seq:        map[string]uint64{},
		watchers:   map[chan Event]struct{}{},
	}
	m.changed = sync.NewCond(&m.mu)
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.log.Debug().Str("template", tmpl).Str("conf_dir", l.ConfDir).Msg("manager started")

	// Subscribed first, then read, so that no change falls between the two.
	if err := m.resync(ctx); err != nil {
		m.Close()
		return nil, err
	}
	names, err := listConfNames(l.ConfDir)
	if err != nil {
		m.Close()
		return nil, err
	}
	for _, n := range names {
		m.refreshConf(n, false)
	}
	m.wg.Add(2)
	go m.followSystemd()
	go m.followConfDir()
	return m, nil
}

// Close stops following changes and cancels background builds.
func (m *Manager) Close() error {
	m.cancel()
	m.fsw.Close()
	m.sup.close()
	m.wg.Wait()
	m.mu.Lock()
	for ch := range m.watchers {
		delete(m.watchers, ch)
		close(ch)
	}
	m.mu.Unlock()
	return nil
}

// Layout is where this manager keeps its files.
func (m *Manager) Layout() Layout { return m.l }

// List returns the names of all containers, sorted.
func (m *Manager) List() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.containers))
	for n := range m.containers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Exists tells whether a container of that name is known.
func (m *Manager) Exists(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.containers[name] != nil
}

// lookup finds a container that exists and is not being destroyed.
func (m *Manager) lookup(name string) (*container, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.containers[name]
	if c == nil || c.destroying {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return c, nil
}

// mutable is lookup for operations that change a container: declarative ones are
// managed by the host's NixOS configuration and refused.
func (m *Manager) mutable(name string) (*container, error) {
	c, err := m.lookup(name)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.declarative {
		return nil, fmt.Errorf("%w: %s", ErrDeclarative, name)
	}
	return c, nil
}

// stateLocked is the one word of SPEC.md's `state` file.
func (m *Manager) stateLocked(c *container) string {
	if c.creating {
		return "creating"
	}
	switch m.units[c.name].ActiveState {
	case "active", "reloading":
		return "running"
	case "activating":
		return "starting"
	case "deactivating":
		return "stopping"
	case "failed":
		return "failed"
	default:
		return "stopped"
	}
}

// State is the container's state word.
func (m *Manager) State(name string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.containers[name]
	if c == nil {
		return "", fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return m.stateLocked(c), nil
}

// Status is everything the `status` file shows.
func (m *Manager) Status(name string) (Status, error) {
	m.mu.Lock()
	c := m.containers[name]
	if c == nil {
		m.mu.Unlock()
		return Status{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	u := m.units[name]
	st := Status{
		Name: name, State: m.stateLocked(c), Unit: UnitName(name),
		ActiveState: u.ActiveState, SubState: u.SubState, Since: u.Since,
		Leader: c.leader, HostAddress: c.conf.Get("HOST_ADDRESS"),
		LocalAddress: c.conf.Get("LOCAL_ADDRESS"), HostBridge: c.conf.Get("HOST_BRIDGE"),
		HostPort: c.conf.Get("HOST_PORT"), Config: c.config,
		Autostart: c.conf.Get("AUTO_START") == "1", Error: c.lastErr,
		Declarative: c.declarative,
	}
	if c.conf.Get("PRIVATE_NETWORK") == "1" {
		st.Interface = HostInterface(name)
	}
	sysLink := systemLinkOf(m.l, name, c.conf)
	m.mu.Unlock()
	if st.ActiveState == "" {
		st.ActiveState, st.SubState = "inactive", "dead"
	}
	st.System, st.Generation = systemGeneration(sysLink)
	if st.Config == "" && st.System != "" {
		st.Config = "built"
	}
	return st, nil
}

// Conf returns a copy of the container's conf file as last read.
func (m *Manager) Conf(name string) (Conf, error) {
	c, err := m.lookup(name)
	if err != nil {
		return Conf{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return Conf{lines: append([]string(nil), c.conf.lines...)}, nil
}

// ---- changes from outside: systemd signals and the conf directory ----

// resync reads every container unit's state at once (start-up, or after signals were
// dropped).
func (m *Manager) resync(ctx context.Context) error {
	snap, err := m.sup.snapshot(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.units {
		if _, ok := snap[UnitName(name)]; !ok {
			m.setUnitLocked(name, unitState{ActiveState: "inactive", SubState: "dead"})
		}
	}
	for unit, st := range snap {
		if name, ok := containerOfUnit(unit); ok {
			m.setUnitLocked(name, st)
		}
	}
	return nil
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
			m.mu.Lock()
			st := m.units[name]
			moved := applyChanged(&st, u.Changed)
			m.mu.Unlock()
			if !moved {
				continue
			}
			if st.ActiveState != "activating" && st.ActiveState != "deactivating" {
				// Transitions only: main PID and result are not in the signal.
				st.MainPID, st.Result = 0, ""
				m.sup.fillDetails(m.ctx, u.UnitName, &st)
			}
			m.mu.Lock()
			m.setUnitLocked(name, st)
			m.mu.Unlock()
		}
	}
}

// setUnitLocked records a unit's state, finds the leader, and tells watchers.
func (m *Manager) setUnitLocked(name string, st unitState) {
	old := m.units[name]
	c := m.containers[name]
	var before string
	if c != nil {
		before = m.stateLocked(c)
	}
	if st.ActiveState == "active" || st.ActiveState == "reloading" {
		if st.MainPID == 0 {
			st.MainPID = old.MainPID
		}
	}
	m.units[name] = st
	m.seq[name]++
	if c == nil {
		m.changed.Broadcast()
		return
	}
	switch st.ActiveState {
	case "active", "reloading":
		if l, err := leaderOf(st.MainPID); err == nil {
			c.leader = l
		}
	case "inactive", "failed":
		c.leader = 0
	}
	if after := m.stateLocked(c); after != before {
		m.log.Info().Str("container", name).Str("state", after).Str("unit_result", st.Result).Msg("state changed")
		m.publishLocked(name, "state", after)
	}
	m.changed.Broadcast()
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
			base := filepath.Base(ev.Name)
			name, isConf := strings.CutSuffix(base, ".conf")
			if !isConf || !nameRE.MatchString(name) {
				continue
			}
			m.refreshConf(name, true)
		}
	}
}

// refreshConf reads NAME.conf again: a container appears, changes or vanishes.
func (m *Manager) refreshConf(name string, announce bool) {
	path := m.l.ConfPath(name)
	conf, err := ReadConf(path)
	if err != nil {
		m.mu.Lock()
		c := m.containers[name]
		if c != nil && !c.creating {
			delete(m.containers, name)
			m.log.Info().Str("container", name).Msg("container removed")
			m.publishLocked(name, "container", "removed")
			m.changed.Broadcast()
		}
		m.mu.Unlock()
		return
	}
	decl := isDeclarative(path)
	m.mu.Lock()
	c := m.containers[name]
	_, unitKnown := m.units[name]
	m.mu.Unlock()
	var st unitState
	if c == nil && !unitKnown {
		st = m.sup.unitStateOf(m.ctx, UnitName(name)) // once, when it first appears
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.containers[name] == nil {
		c = newContainer(name)
		c.conf, c.declarative = conf, decl
		m.containers[name] = c
		if _, known := m.units[name]; !known {
			m.units[name] = st // unless a signal came while systemd was asked
		}
		m.setUnitLocked(name, m.units[name])
		if announce {
			m.log.Info().Str("container", name).Msg("container appeared")
			m.publishLocked(name, "container", "created")
		}
	} else {
		c = m.containers[name]
		c.conf, c.declarative = conf, decl
	}
	m.changed.Broadcast()
}

// unitSeq is the count of the container's unit state reports so far.
func (m *Manager) unitSeq(name string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seq[name]
}

// waitFor blocks until cond holds for the container (nil if it is gone), or ctx ends.
func (m *Manager) waitFor(ctx context.Context, name string, cond func(c *container) bool) error {
	stop := context.AfterFunc(ctx, func() {
		m.mu.Lock()
		m.changed.Broadcast()
		m.mu.Unlock()
	})
	defer stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	for !cond(m.containers[name]) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m.changed.Wait()
	}
	return nil
}

func (m *Manager) setError(name string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.containers[name]
	if c == nil {
		return
	}
	msg := ""
	if err != nil {
		msg = oneLine(err.Error())
	}
	if c.lastErr != msg {
		c.lastErr = msg
		if msg != "" {
			m.log.Warn().Str("container", name).Str("error", msg).Msg("operation failed")
			m.publishLocked(name, "error", msg)
		}
	}
	m.changed.Broadcast()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// errorsIsCtx tells a cancelled wait from a failure.
func errorsIsCtx(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// ---- events ----

// Event is one line of the `events` file.
type Event struct {
	Time  time.Time
	Name  string
	Key   string
	Value string
}

func (e Event) String() string {
	return fmt.Sprintf("%s %s %s %s", e.Time.Format(time.RFC3339), e.Name, e.Key, e.Value)
}

// Watch streams every change from now on until ctx ends. A watcher that falls more
// than its buffer behind loses events rather than holding up the manager.
func (m *Manager) Watch(ctx context.Context) <-chan Event {
	ch := make(chan Event, 1024)
	m.mu.Lock()
	m.watchers[ch] = struct{}{}
	m.mu.Unlock()
	context.AfterFunc(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.watchers[ch]; ok {
			delete(m.watchers, ch)
			close(ch)
		}
	})
	return ch
}

func (m *Manager) publishLocked(name, key, value string) {
	ev := Event{Time: time.Now(), Name: name, Key: key, Value: value}
	for ch := range m.watchers {
		select {
		case ch <- ev:
		default:
			m.log.Warn().Str("container", name).Msg("event watcher too slow; event dropped")
		}
	}
}
