package fs

import (
	"context"
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
	state       ops.State
	host, local string
	autostart   bool
	declarative bool
	startErr    error
	lastErr     string
	build       ops.BuildState
	limits      ops.Limits // zero: none set (fakeLimitsOf)
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
		Config: c.build}, nil
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
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if gate != nil {
		f.setState(name, ops.StateStarting)
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.setState(name, ops.StateRunning)
	return nil
}

func (f *fakeBackend) Stop(ctx context.Context, name string) error {
	if _, err := f.State(name); err != nil {
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
