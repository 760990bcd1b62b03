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
// with the kernel and shell tools, nothing more. Configurations live in real files
// under a temporary Layout, as the filesystem stats them.
type fakeBackend struct {
	l ops.Layout

	mu         sync.Mutex
	containers map[string]*fakeContainer
	watchers   map[chan ops.Event]bool
	commits    []string // texts given to SetConfig, in order
	noAddress  bool     // Create fails with ErrNoAddress
	startGate  chan struct{}
	startCalls int
	startCtx   context.Context // of the last Start, to check it was not cancelled
}

type fakeContainer struct {
	state       string
	host, local string
	autostart   bool
	declarative bool
	startErr    error
	lastErr     string
}

// brokenMarker in a configuration makes its build fail.
const brokenMarker = "BROKEN"

func newFakeBackend(t *testing.T) *fakeBackend {
	dir := t.TempDir()
	l := ops.Layout{
		ConfDir: filepath.Join(dir, "conf"), StateDir: filepath.Join(dir, "state"),
		ProfileDir: filepath.Join(dir, "profiles"), GCRootDir: filepath.Join(dir, "gcroots"),
		LockFile: filepath.Join(dir, "lock"), LogDir: filepath.Join(dir, "log"),
	}
	if err := os.MkdirAll(l.LogDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &fakeBackend{l: l, containers: map[string]*fakeContainer{}, watchers: map[chan ops.Event]bool{}}
}

func (f *fakeBackend) publishLocked(name, key, value string) {
	for ch := range f.watchers {
		select {
		case ch <- ops.Event{Time: time.Now(), Name: name, Key: key, Value: value}:
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

// add makes a container as if nixos-container had (announce) or as a test fixture.
func (f *fakeBackend) add(name string, c *fakeContainer, announce bool) {
	if c.state == "" {
		c.state = "stopped"
	}
	p := f.l.ConfigPath(name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte(ops.DefaultConfig(name, "")), 0o644)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[name] = c
	if announce {
		f.publishLocked(name, "container", "created")
	}
}

// removeOutside deletes a container as nixos-container destroy would.
func (f *fakeBackend) removeOutside(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, name)
	f.publishLocked(name, "container", "removed")
}

func (f *fakeBackend) setState(name, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[name].state = state
	f.publishLocked(name, "state", state)
}

// set changes the fake's knobs while the filesystem may be using them.
func (f *fakeBackend) set(change func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change()
}

func (f *fakeBackend) commitCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.commits)
}

func (f *fakeBackend) Layout() ops.Layout { return f.l }

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

func (f *fakeBackend) State(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return "", err
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
		LocalAddress: c.local, Autostart: c.autostart, Declarative: c.declarative, Error: c.lastErr}, nil
}

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
	f.add(name, &fakeContainer{state: "stopped", host: fmt.Sprintf("10.233.%d.1", n), local: fmt.Sprintf("10.233.%d.2", n)}, true)
	return name, nil
}

func (f *fakeBackend) Destroy(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	switch {
	case err != nil:
		return err
	case c.declarative:
		return ops.ErrDeclarative
	case c.state == "running" || c.state == "starting":
		return fmt.Errorf("%w: %s is %s", ops.ErrBusy, name, c.state)
	}
	delete(f.containers, name)
	f.publishLocked(name, "container", "removed")
	return nil
}

func (f *fakeBackend) Start(ctx context.Context, name string) error {
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
		f.setState(name, "starting")
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.setState(name, "running")
	return nil
}

func (f *fakeBackend) Stop(ctx context.Context, name string) error {
	if _, err := f.State(name); err != nil {
		return err
	}
	f.setState(name, "stopped")
	return nil
}

func (f *fakeBackend) Restart(ctx context.Context, name string) error { return f.Start(ctx, name) }

func (f *fakeBackend) Reload(ctx context.Context, name string) error {
	if st, err := f.State(name); err != nil || st != "running" {
		return fmt.Errorf("%w: not running", ops.ErrInvalid)
	}
	return nil
}

func (f *fakeBackend) Terminate(ctx context.Context, name string) error { return f.Stop(ctx, name) }

func (f *fakeBackend) ReadConfig(name string) ([]byte, error) {
	if _, err := f.State(name); err != nil {
		return nil, err
	}
	return os.ReadFile(f.l.ConfigPath(name))
}

// SetConfig keeps the text even when its "build" fails, as ops does.
func (f *fakeBackend) SetConfig(ctx context.Context, name string, text []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return err
	}
	if c.declarative {
		return ops.ErrDeclarative
	}
	f.commits = append(f.commits, string(text))
	if err := os.WriteFile(f.l.ConfigPath(name), text, 0o644); err != nil {
		return err
	}
	if strings.Contains(string(text), brokenMarker) {
		c.lastErr = "build failed: broken configuration (see build.log)"
		return fmt.Errorf("%w: nix-env: exit status 1", ops.ErrBuildFailed)
	}
	c.lastErr = ""
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
	c, err := f.get(name)
	if err != nil {
		return err
	}
	if c.declarative {
		return ops.ErrDeclarative
	}
	if c.state == "running" {
		return fmt.Errorf("%w: %s is running", ops.ErrBusy, name)
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
	c, err := f.get(name)
	if err != nil {
		return err
	}
	c.autostart = on
	return nil
}

func (f *fakeBackend) Watch(ctx context.Context) <-chan ops.Event {
	ch := make(chan ops.Event, 64)
	f.mu.Lock()
	f.watchers[ch] = true
	f.mu.Unlock()
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.watchers, ch)
		close(ch)
	})
	return ch
}
