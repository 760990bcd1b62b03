package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"nixcfs/ops"
)

// fakeBackend is a FAKE ops.Manager, in memory, for testing what the filesystem does
// with the kernel and shell tools, nothing more. Configurations and build logs live in
// real files under a temporary directory. contract_test.go holds it to the real
// Manager's behaviour: the same assertions run against both.
type fakeBackend struct {
	dir string

	mu         sync.Mutex
	containers map[string]*fakeContainer
	watchers   map[chan ops.Event]string
	commits    []string // texts given to SetConfig, in order
	noAddress  bool     // Create fails with ErrNoAddress
	startGate  chan struct{}
	startCalls int
	startCtx   context.Context // of the last Start, to check it was not cancelled
	journal    string          // what journalctl would print for every container
	logReads   int             // journal reads (opens, refreshes, size counts)
}

type fakeContainer struct {
	overridden  chan struct{} // closed by a stop while a start waits
	state       ops.State
	host, local string
	autostart   bool
	ports       []string
	declarative bool
	startErr    error
	lastErr     string
	notice      string
	build       ops.BuildState
	gens        []fakeGeneration // oldest first
	current     int
	rejected    []byte
	limits      ops.Limits // zero: none set (fakeLimitsOf)
}

type fakeGeneration struct {
	n    int
	text string
}

// newGenerationLocked records a successful build of text as the next generation,
// unless it is the current one's: nix makes no new generation for the same system.
func (c *fakeContainer) newGenerationLocked(text string) {
	for _, g := range c.gens {
		if g.n == c.current && g.text == text {
			return
		}
	}
	n := len(c.gens) + 1
	if len(c.gens) > 0 {
		n = c.gens[len(c.gens)-1].n + 1
	}
	c.gens = append(c.gens, fakeGeneration{n: n, text: text})
	c.current = n
}

// brokenMarker in a configuration makes its build fail.
const brokenMarker = "BROKEN"

func newFakeBackend(t *testing.T) *fakeBackend {
	return &fakeBackend{dir: t.TempDir(), containers: map[string]*fakeContainer{}, watchers: map[chan ops.Event]string{}}
}

func (f *fakeBackend) configPath(name string) string { return filepath.Join(f.dir, name+".nix") }
func (f *fakeBackend) buildLogPath(name string) string {
	return filepath.Join(f.dir, name+".build.log")
}

func (f *fakeBackend) publishLocked(name string, kind ops.EventKind, value string) {
	for ch, only := range f.watchers {
		if only != "" && only != name {
			continue
		}
		select {
		case ch <- ops.Event{Time: time.Now(), Name: name, Kind: kind, Value: value}:
		default:
		}
	}
}

func (f *fakeBackend) get(name string) (*fakeContainer, error) {
	c := f.containers[name]
	if c == nil {
		return nil, fmt.Errorf("%w: %s", ops.ErrNotFound, name)
	}
	return c, nil
}

// getForChange is get for changes: declarative containers are refused.
func (f *fakeBackend) getForChange(name string) (*fakeContainer, error) {
	c, err := f.get(name)
	if err == nil && c.declarative {
		return nil, fmt.Errorf("%w: %s", ops.ErrDeclarative, name)
	}
	return c, err
}

// add makes a container as if nixos-container had (announce) or as a test fixture.
func (f *fakeBackend) add(name string, c *fakeContainer, announce bool) {
	os.WriteFile(f.configPath(name), []byte(ops.DefaultConfig(name, "")), 0o644)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[name] = c
	if announce {
		f.publishLocked(name, ops.EventContainer, ops.ContainerCreated)
	}
}

// removeOutside deletes a container as nixos-container destroy would.
func (f *fakeBackend) removeOutside(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, name)
	f.publishLocked(name, ops.EventContainer, ops.ContainerRemoved)
}

func (f *fakeBackend) setState(name string, state ops.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setStateLocked(name, state)
}

func (f *fakeBackend) setStateLocked(name string, state ops.State) {
	if c := f.containers[name]; c != nil && c.state != state {
		c.state = state
		f.publishLocked(name, ops.EventState, state.String())
	}
}

// set changes the fake's knobs while the filesystem may be using them.
func (f *fakeBackend) set(change func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change()
}

func (f *fakeBackend) watcherCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.watchers)
}

func (f *fakeBackend) List() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for n := range f.containers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (f *fakeBackend) Exists(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.containers[name] != nil
}

func (f *fakeBackend) State(name string) (ops.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return ops.StateStopped, err
	}
	return c.state, nil
}

func (f *fakeBackend) Status(name string) (ops.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return ops.Status{}, err
	}
	return ops.Status{Name: name, State: c.state, Unit: ops.UnitName(name), HostAddress: c.host,
		LocalAddress: c.local, Autostart: c.autostart, Declarative: c.declarative, Error: c.lastErr,
		Config: c.build, Generation: c.current, Notice: c.notice}, nil
}

// Create makes the container creating, with its first build pending: it ends (built,
// stopped) when something waits for it, as WaitBuilt and Start do.
func (f *fakeBackend) Create(ctx context.Context, name string, o ops.CreateOptions) (string, error) {
	if err := ops.ValidateName(name); err != nil {
		return "", err
	}
	f.mu.Lock()
	n := len(f.containers) + 1
	_, exists := f.containers[name]
	noAddress := f.noAddress
	f.mu.Unlock()
	switch {
	case exists:
		return "", fmt.Errorf("%w: %s", ops.ErrExists, name)
	case noAddress:
		return "", ops.ErrNoAddress
	}
	f.add(name, &fakeContainer{state: ops.StateCreating, build: ops.BuildBuilding,
		host: fmt.Sprintf("10.233.%d.1", n), local: fmt.Sprintf("10.233.%d.2", n)}, true)
	f.mu.Lock()
	f.publishLocked(name, ops.EventState, ops.StateCreating.String())
	f.mu.Unlock()
	return name, nil
}

// WaitBuilt ends a pending first build.
func (f *fakeBackend) WaitBuilt(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return err
	}
	if c.state == ops.StateCreating {
		c.build = ops.BuildBuilt
		c.newGenerationLocked(ops.DefaultConfig(name, ""))
		f.publishLocked(name, ops.EventConfig, c.build.String())
		f.setStateLocked(name, ops.StateStopped)
	}
	return nil
}

func (f *fakeBackend) Destroy(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.getForChange(name)
	switch {
	case err != nil:
		return err
	case c.state.Busy():
		return fmt.Errorf("%w: %s is %s", ops.ErrBusy, name, c.state)
	}
	delete(f.containers, name)
	f.publishLocked(name, ops.EventContainer, ops.ContainerRemoved)
	return nil
}

func (f *fakeBackend) Start(ctx context.Context, name string) error {
	if err := f.WaitBuilt(ctx, name); err != nil {
		return err
	}
	f.mu.Lock()
	f.startCalls++
	f.startCtx = ctx
	gate := f.startGate
	c, err := f.get(name)
	if err == nil {
		err = c.startErr
	}
	var overridden chan struct{}
	if err == nil {
		c.overridden = make(chan struct{})
		overridden = c.overridden
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if gate != nil {
		f.setState(name, ops.StateStarting)
		select {
		case <-gate:
		case <-overridden:
			return fmt.Errorf("%w: start of %s overridden by stop", ops.ErrOverridden, name)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.setState(name, ops.StateRunning)
	return nil
}

// Stop overrides a start that waits.
func (f *fakeBackend) Stop(ctx context.Context, name string) error {
	f.mu.Lock()
	c, err := f.get(name)
	if err == nil && c.overridden != nil {
		close(c.overridden)
		c.overridden = nil
	}
	f.mu.Unlock()
	if err != nil {
		return err
	}
	f.setState(name, ops.StateStopped)
	return nil
}

func (f *fakeBackend) Restart(ctx context.Context, name string) error { return f.Start(ctx, name) }

func (f *fakeBackend) Reload(ctx context.Context, name string) error {
	if st, err := f.State(name); err != nil || !st.Running() {
		return fmt.Errorf("%w: not running", ops.ErrInvalid)
	}
	return nil
}

func (f *fakeBackend) Terminate(ctx context.Context, name string) error { return f.Stop(ctx, name) }

func (f *fakeBackend) ReadConfig(name string) ([]byte, error) {
	if _, err := f.State(name); err != nil {
		return nil, err
	}
	return os.ReadFile(f.configPath(name))
}

func (f *fakeBackend) ConfigInfo(name string) (int64, time.Time, error) {
	if _, err := f.State(name); err != nil {
		return 0, time.Time{}, err
	}
	fi, err := os.Stat(f.configPath(name))
	if err != nil {
		return 0, time.Time{}, err
	}
	return fi.Size(), fi.ModTime(), nil
}

// SetConfig keeps the text even when its "build" fails, as ops does.
func (f *fakeBackend) SetConfig(ctx context.Context, name string, text []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.getForChange(name)
	if err != nil {
		return err
	}
	f.commits = append(f.commits, string(text))
	if err := os.WriteFile(f.configPath(name), text, 0o644); err != nil {
		return err
	}
	if strings.Contains(string(text), brokenMarker) {
		c.build, c.lastErr = ops.BuildFailed, "build failed: broken configuration (see build.log)"
		return fmt.Errorf("%w: nix-build: exit status 1", ops.ErrBuildFailed)
	}
	c.build, c.lastErr = ops.BuildBuilt, ""
	c.newGenerationLocked(string(text))
	return nil
}

// WriteConfig is SetConfig without the wait: a failed build shows in the status only.
func (f *fakeBackend) WriteConfig(ctx context.Context, name string, text []byte) error {
	if err := f.SetConfig(ctx, name, text); err != nil && !errors.Is(err, ops.ErrBuildFailed) {
		return err
	}
	return nil
}

func (f *fakeBackend) SetAddresses(ctx context.Context, name, hostAddr, localAddr string) error {
	for _, a := range []string{hostAddr, localAddr} {
		if a != "" {
			if err := ops.ValidateAddress(a); err != nil {
				return err
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.getForChange(name)
	if err != nil {
		return err
	}
	if c.state.Busy() {
		return fmt.Errorf("%w: %s is %s", ops.ErrBusy, name, c.state)
	}
	for other, oc := range f.containers {
		for _, a := range []string{hostAddr, localAddr} {
			if other != name && a != "" && (a == oc.host || a == oc.local) {
				return fmt.Errorf("%w: %s", ops.ErrAddressInUse, a)
			}
		}
	}
	if hostAddr != "" {
		c.host = hostAddr
	}
	if localAddr != "" {
		c.local = localAddr
	}
	return nil
}

func (f *fakeBackend) SetAutostart(ctx context.Context, name string, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.getForChange(name)
	if err != nil {
		return err
	}
	c.autostart = on
	return nil
}

func (f *fakeBackend) Ports(name string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return nil, err
	}
	return append([]string(nil), c.ports...), nil
}

// SetPorts checks as ops does, and notes each refusal in the status.
func (f *fakeBackend) SetPorts(ctx context.Context, name string, specs []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.checkPortsLocked(name, specs)
	if err == nil {
		f.containers[name].ports = append([]string(nil), specs...)
		f.publishLocked(name, ops.EventPorts, strings.Join(specs, ","))
	}
	return err
}

func (f *fakeBackend) CheckPorts(name string, specs []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checkPortsLocked(name, specs)
}

func (f *fakeBackend) checkPortsLocked(name string, specs []string) error {
	err := f.refusePortsLocked(name, specs)
	if c := f.containers[name]; c != nil && err != nil {
		c.lastErr = err.Error()
	}
	return err
}

func (f *fakeBackend) refusePortsLocked(name string, specs []string) error {
	c, err := f.getForChange(name)
	if err != nil {
		return err
	}
	forwards, err := ops.ParsePortForwards(specs)
	if err != nil {
		return err
	}
	if c.state.Busy() {
		return fmt.Errorf("%w: %s is %s", ops.ErrBusy, name, c.state)
	}
	for other, oc := range f.containers {
		theirs, _ := ops.ParsePortForwards(oc.ports)
		for _, p := range forwards {
			for _, q := range theirs {
				if other != name && p.Protocol == q.Protocol && p.HostPort == q.HostPort {
					return fmt.Errorf("%w: %s port %d", ops.ErrAddressInUse, p.Protocol, p.HostPort)
				}
			}
		}
	}
	return nil
}

func (f *fakeBackend) OpenBuildLog(name string) (*os.File, error) {
	if _, err := f.State(name); err != nil {
		return nil, err
	}
	return os.Open(f.buildLogPath(name))
}

// fakeLog serves the fake's journal text as a LogReader, read again at each refresh.
type fakeLog struct {
	f    *fakeBackend
	mu   sync.Mutex
	text []byte
}

func (f *fakeBackend) OpenLog(ctx context.Context, name string) (ops.LogReader, error) {
	if _, err := f.State(name); err != nil {
		return nil, err
	}
	l := &fakeLog{f: f}
	return l, l.Refresh(ctx)
}

func (f *fakeBackend) LogSize(ctx context.Context, name string) (int64, error) {
	if _, err := f.State(name); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logReads++
	return int64(len(f.journal)), nil
}

func (l *fakeLog) Refresh(ctx context.Context) error {
	l.f.mu.Lock()
	text := l.f.journal
	l.f.logReads++
	l.f.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.text = []byte(text)
	return nil
}

func (l *fakeLog) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.text))
}

func (l *fakeLog) ReadAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return copy(p, window(l.text, off, len(p))), nil
}

func (l *fakeLog) Close() error { return nil }

func (f *fakeBackend) Watch(ctx context.Context, name string) <-chan ops.Event {
	ch := make(chan ops.Event, 64)
	f.mu.Lock()
	f.watchers[ch] = name
	f.mu.Unlock()
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.watchers, ch)
		close(ch)
	})
	return ch
}

func (f *fakeBackend) commitCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.commits)
}

func (f *fakeBackend) NoteError(name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.containers[name]; c != nil && err != nil {
		c.lastErr = err.Error()
		f.publishLocked(name, ops.EventError, c.lastErr)
	}
}

func (f *fakeBackend) Generations(name string) ([]ops.Generation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return nil, err
	}
	var gens []ops.Generation
	for _, g := range c.gens {
		gens = append(gens, ops.Generation{Number: g.n, System: fmt.Sprintf("/nix/store/fake-%s-%d", name, g.n),
			Current: g.n == c.current, HasConfig: true})
	}
	return gens, nil
}

func (f *fakeBackend) generationLocked(c *fakeContainer, n int) *fakeGeneration {
	for i := range c.gens {
		if c.gens[i].n == n {
			return &c.gens[i]
		}
	}
	return nil
}

func (f *fakeBackend) GenerationConfig(name string, n int) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return nil, err
	}
	if g := f.generationLocked(c, n); g != nil {
		return []byte(g.text), nil
	}
	return nil, os.ErrNotExist
}

// SwitchGeneration keeps a replaced text that is no generation's, as ops does.
func (f *fakeBackend) SwitchGeneration(ctx context.Context, name string, n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.getForChange(name)
	if err != nil {
		return err
	}
	g := f.generationLocked(c, n)
	if g == nil {
		return fmt.Errorf("%w: generation %d: %s has no such generation", ops.ErrInvalid, n, name)
	}
	old, _ := os.ReadFile(f.configPath(name))
	known := false
	for _, other := range c.gens {
		known = known || other.text == string(old)
	}
	if !known {
		c.rejected, c.notice = old, "config.nix.rejected keeps the replaced text"
	}
	c.current = n
	return os.WriteFile(f.configPath(name), []byte(g.text), 0o644)
}

func (f *fakeBackend) DeleteGeneration(ctx context.Context, name string, n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.getForChange(name)
	if err != nil {
		return err
	}
	switch {
	case f.generationLocked(c, n) == nil:
		return fmt.Errorf("%w: generations/%d: %s has no such generation", ops.ErrNotFound, n, name)
	case n == c.current:
		return fmt.Errorf("%w: generation %d is current", ops.ErrBusy, n)
	}
	for i := range c.gens {
		if c.gens[i].n == n {
			c.gens = append(c.gens[:i], c.gens[i+1:]...)
			break
		}
	}
	return nil
}

func (f *fakeBackend) RejectedConfig(name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return nil, err
	}
	if c.rejected == nil {
		return nil, os.ErrNotExist
	}
	return c.rejected, nil
}
