package ops

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CreateOptions are nixos-container create's flags.
type CreateOptions struct {
	Config           string // extra text spliced into the default configuration.nix
	ConfigFile       string // imported from the default configuration.nix
	ConfigText       string // the whole configuration.nix, instead of the template
	SystemPath       string // an already built system: no build
	Flake            string // FLAKE[#ATTR]: build nixosConfigurations.ATTR (default NAME)
	HostAddress      string
	LocalAddress     string
	Bridge           string
	Port             string
	AutoStart        bool
	EnsureUniqueName bool // NAME taken: use NAME-0, NAME-1, ...
}

// Create writes the container (conf file with fresh addresses, default
// configuration.nix, profile and gc-root directories) and starts building its first
// system in the background: State says "creating" until the build ends (WaitBuilt).
// It returns the name used (EnsureUniqueName may change it) and the addresses.
// Everything is checked before anything is written; on failure nothing is left.
func (m *Manager) Create(ctx context.Context, name string, o CreateOptions) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	for _, a := range []string{o.HostAddress, o.LocalAddress} {
		if a != "" {
			if err := ValidateAddress(a); err != nil {
				return "", err
			}
		}
	}
	if o.Config != "" && o.ConfigFile != "" {
		return "", fmt.Errorf("%w: --config and --config-file are mutually incompatible", ErrInvalid)
	}
	if o.Flake != "" {
		if !strings.Contains(o.Flake, "#") {
			o.Flake += "#" + name
		}
		if _, _, err := splitFlake(o.Flake); err != nil {
			return "", err
		}
		if err := CheckFlakes(); err != nil {
			return "", err
		}
	}
	configFile := ""
	if o.ConfigFile != "" {
		abs, err := filepath.Abs(o.ConfigFile)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("%w: config file: %v", ErrInvalid, err)
		}
		configFile = abs
	}

	lock, err := lockAddresses(m.l.LockFile)
	if err != nil {
		return "", err
	}
	defer lock.unlock()
	taken := func(n string) bool {
		_, errConf := os.Lstat(m.l.ConfPath(n))
		_, errRoot := os.Lstat(m.l.RootPath(n))
		return errConf == nil || errRoot == nil || m.Exists(n)
	}
	if o.EnsureUniqueName {
		base := name
		for i := 0; taken(name); i++ {
			name = fmt.Sprintf("%s-%d", base, i)
			if err := ValidateName(name); err != nil {
				return "", err
			}
		}
	} else if taken(name) {
		return "", fmt.Errorf("%w: %s", ErrExists, name)
	}
	used, err := usedAddresses(m.l.ConfDir)
	if err != nil {
		return "", err
	}
	for _, a := range []string{o.HostAddress, o.LocalAddress} {
		if a != "" {
			if err := checkAddressFree(used, a, name); err != nil {
				return "", err
			}
		}
	}
	hostAddr, localAddr := o.HostAddress, o.LocalAddress
	if (hostAddr == "" || localAddr == "") && o.Bridge == "" {
		h, l, err := nextFreePair(used)
		if err != nil {
			return "", err
		}
		if hostAddr == "" {
			hostAddr = h
		}
		if localAddr == "" {
			localAddr = l
		}
	}

	// Registered before the conf file appears, so inotify finds it "creating".
	c := &container{name: name, creating: true, config: "building", buildDone: make(chan struct{})}
	m.mu.Lock()
	m.containers[name] = c
	m.mu.Unlock()
	undo := func() {
		os.RemoveAll(m.l.RootPath(name))
		os.RemoveAll(m.l.ProfilePath(name))
		os.RemoveAll(m.l.GCRootPath(name))
		os.Remove(m.l.ConfPath(name))
		m.mu.Lock()
		delete(m.containers, name)
		close(c.buildDone)
		m.changed.Broadcast()
		m.mu.Unlock()
	}
	if err := m.writeInitialFiles(name, o, configFile); err != nil {
		undo()
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	conf := newConf(hostAddr, localAddr, o.Bridge, o.Port, o.AutoStart)
	if o.Flake != "" {
		conf.Set("FLAKE", o.Flake)
	}
	if err := writeFileAtomic(m.l.ConfPath(name), conf.Bytes(), 0o644); err != nil {
		undo()
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	lock.unlock()

	m.mu.Lock()
	c.conf = conf
	m.log.Info().Str("container", name).Str("host_address", hostAddr).Str("local_address", localAddr).Msg("container created")
	m.publishLocked(name, "container", "created")
	m.publishLocked(name, "state", "creating")
	m.changed.Broadcast()
	m.mu.Unlock()

	m.startBuild(c, func(ctx context.Context) error {
		if o.SystemPath != "" {
			return m.builder.setSystem(ctx, m.l.ProfilePath(name), o.SystemPath, m.l.BuildLogPath(name))
		}
		return m.buildSystem(ctx, name, conf)
	})
	return name, nil
}

// buildSystem builds the container's system from its flake (FLAKE in the conf file)
// or from its configuration.nix.
func (m *Manager) buildSystem(ctx context.Context, name string, conf Conf) error {
	if flake := conf.Get("FLAKE"); flake != "" {
		return m.builder.buildFlake(ctx, m.l.ProfilePath(name), m.l.GCRootPath(name), flake, m.l.BuildLogPath(name))
	}
	return m.builder.build(ctx, m.l.ProfilePath(name), m.l.GCRootPath(name), m.l.ConfigPath(name), m.l.BuildLogPath(name))
}

func (m *Manager) writeInitialFiles(name string, o CreateOptions, configFile string) error {
	for _, d := range []string{m.l.ProfilePath(name), m.l.GCRootPath(name), filepath.Dir(m.l.ConfigPath(name))} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if o.SystemPath != "" {
		return nil
	}
	text := o.ConfigText
	if text == "" {
		extra := o.Config
		if configFile != "" {
			extra = "imports = [ " + configFile + " ];"
		}
		text = DefaultConfig(name, extra)
	}
	return writeFileAtomic(m.l.ConfigPath(name), []byte(text), 0o644)
}

// startBuild runs build in the background under the manager's context; the container
// shows config "building" until it ends.
func (m *Manager) startBuild(c *container, build func(context.Context) error) {
	ctx, cancel := context.WithCancel(m.ctx)
	m.mu.Lock()
	c.cancelBuild = cancel
	c.config = "building"
	if c.buildDone == nil {
		c.buildDone = make(chan struct{})
	}
	done := c.buildDone
	m.publishLocked(c.name, "config", "building")
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer cancel()
		c.buildMu.Lock()
		start := time.Now()
		err := build(ctx)
		c.buildMu.Unlock()
		m.finishBuild(c, done, err, time.Since(start))
	}()
}

func (m *Manager) finishBuild(c *container, done chan struct{}, err error, took time.Duration) {
	m.mu.Lock()
	wasCreating := c.creating
	c.creating = false
	c.buildErr = err
	c.buildDone = nil
	if err != nil {
		c.config = "failed"
		c.lastErr = oneLine(buildError(m.l.BuildLogPath(c.name), err))
		m.log.Warn().Str("container", c.name).Dur("took", took).Str("error", c.lastErr).Msg("build failed")
		m.publishLocked(c.name, "config", "failed")
		m.publishLocked(c.name, "error", c.lastErr)
	} else {
		c.config = "built"
		c.lastErr = ""
		m.log.Info().Str("container", c.name).Dur("took", took).Msg("built")
		m.publishLocked(c.name, "config", "built")
	}
	if wasCreating {
		m.publishLocked(c.name, "state", m.stateLocked(c))
	}
	close(done)
	m.changed.Broadcast()
	m.mu.Unlock()
}

// buildError is the readable reason of a failed build: nix's "error:" line from the
// log, which says what is wrong with the configuration.
func buildError(logPath string, err error) string {
	if errorsIsCtx(err) {
		return "build cancelled"
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

// WaitBuilt waits for a build in progress to end and returns its error; nil at once
// when none runs.
func (m *Manager) WaitBuilt(ctx context.Context, name string) error {
	c, err := m.get(name)
	if err != nil {
		return err
	}
	m.mu.Lock()
	done := c.buildDone
	m.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return c.buildErr
}

// ReadConfig returns the container's configuration.nix.
func (m *Manager) ReadConfig(name string) ([]byte, error) {
	if _, err := m.get(name); err != nil {
		return nil, err
	}
	return os.ReadFile(m.l.ConfigPath(name))
}

// SetConfig is `nixos-container update NAME --config-file`: the text becomes the
// container's configuration.nix, the system is built and, if the container runs,
// activated without a restart. The new text stays even when the build fails; the
// container then keeps its previous system and Status says why. If ctx ends first the
// build and switch go on, and ctx's error is returned.
func (m *Manager) SetConfig(ctx context.Context, name string, text []byte) error {
	c, err := m.get(name)
	if err != nil {
		return err
	}
	if c.declarative {
		return fmt.Errorf("%w: %s", ErrDeclarative, name)
	}
	c.buildMu.Lock()
	err = writeFileAtomic(m.l.ConfigPath(name), text, 0o644)
	c.buildMu.Unlock()
	if err != nil {
		return fmt.Errorf("write configuration of %s: %w", name, err)
	}
	return m.Update(ctx, name)
}

// Update builds the current configuration.nix and, if the container runs, switches it
// to the new system (`nixos-container update NAME`).
func (m *Manager) Update(ctx context.Context, name string) error {
	c, err := m.get(name)
	if err != nil {
		return err
	}
	if c.declarative {
		return fmt.Errorf("%w: %s", ErrDeclarative, name)
	}
	// Let a build in progress end first: builds of one container never overlap.
	if err := m.WaitBuilt(ctx, name); err != nil && !errors.Is(err, ErrBuildFailed) && !errorsIsCtx(err) {
		return err
	} else if ctx.Err() != nil {
		return ctx.Err()
	}
	m.mu.Lock()
	c.buildDone = make(chan struct{})
	m.mu.Unlock()
	conf, err := m.Conf(name)
	if err != nil {
		return err
	}
	m.startBuild(c, func(ctx context.Context) error {
		if err := m.buildSystem(ctx, name, conf); err != nil {
			return err
		}
		if st, _ := m.State(name); st == "running" {
			return m.reloadUnit(ctx, name)
		}
		return nil
	})
	return m.WaitBuilt(ctx, name)
}

// ---- unit operations ----

// Start starts the container and returns once it reported ready (or failed). Start of
// a running container succeeds; start while creating waits for the build first.
func (m *Manager) Start(ctx context.Context, name string) error {
	if _, err := m.get(name); err != nil {
		return err
	}
	if err := m.WaitBuilt(ctx, name); err != nil {
		return err
	}
	if sys, _ := systemGeneration(m.l.SystemLink(name)); sys == "" {
		err := fmt.Errorf("%w: %s (see build.log)", ErrNotBuilt, name)
		m.setError(name, err)
		return err
	}
	unit := UnitName(name)
	err := m.sup.start(ctx, unit)
	if errorsIsCtx(err) {
		return err
	}
	if err != nil {
		st := m.sup.unitStateOf(m.ctx, unit)
		err = fmt.Errorf("%w: %s: %v; unit %s, result %s (see log)", ErrStartFailed, unit, err, st.ActiveState, st.Result)
		m.setError(name, err)
		return err
	}
	m.setError(name, nil)
	return m.settle(ctx, name, "running", "failed")
}

// Stop stops the container and returns once it is down.
func (m *Manager) Stop(ctx context.Context, name string) error {
	if _, err := m.get(name); err != nil {
		return err
	}
	if err := m.sup.stop(ctx, UnitName(name)); err != nil {
		if !errorsIsCtx(err) {
			m.setError(name, err)
		}
		return err
	}
	m.setError(name, nil)
	return m.settle(ctx, name, "stopped", "failed")
}

// Restart stops and starts the container.
func (m *Manager) Restart(ctx context.Context, name string) error {
	if _, err := m.get(name); err != nil {
		return err
	}
	if err := m.WaitBuilt(ctx, name); err != nil {
		return err
	}
	if err := m.sup.restart(ctx, UnitName(name)); err != nil {
		if !errorsIsCtx(err) {
			m.setError(name, err)
		}
		return err
	}
	m.setError(name, nil)
	return m.settle(ctx, name, "running", "failed")
}

// Reload activates the current system of a running container without a restart.
func (m *Manager) Reload(ctx context.Context, name string) error {
	if _, err := m.get(name); err != nil {
		return err
	}
	if st, _ := m.State(name); st != "running" {
		return fmt.Errorf("%w: %s is %s, not running", ErrInvalid, name, st)
	}
	err := m.reloadUnit(ctx, name)
	if !errorsIsCtx(err) {
		m.setError(name, err)
	}
	return err
}

func (m *Manager) reloadUnit(ctx context.Context, name string) error {
	if err := m.sup.reload(ctx, UnitName(name)); err != nil {
		return fmt.Errorf("reload %s: %w (see log)", name, err)
	}
	return nil
}

// Terminate kills every process of the container at once (machinectl terminate).
func (m *Manager) Terminate(ctx context.Context, name string) error {
	if _, err := m.get(name); err != nil {
		return err
	}
	m.sup.kill(ctx, UnitName(name))
	return m.settle(ctx, name, "stopped", "failed")
}

// settle waits until the in-memory state, which follows systemd's signals, shows one
// of the wanted words: a job's end and the state signal travel separately.
func (m *Manager) settle(ctx context.Context, name string, want ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	return m.waitFor(ctx, name, func(c *container) bool {
		if c == nil {
			return true
		}
		s := m.stateLocked(c)
		for _, w := range want {
			if s == w {
				return true
			}
		}
		return false
	})
}

// ---- files ----

// Destroy removes the container: profile, gc roots, root tree, build log and conf
// file. A running container is refused (ErrBusy): stop it first.
func (m *Manager) Destroy(ctx context.Context, name string) error {
	c, err := m.get(name)
	if err != nil {
		return err
	}
	if c.declarative {
		return fmt.Errorf("%w: %s", ErrDeclarative, name)
	}
	m.mu.Lock()
	st := m.stateLocked(c)
	cancel := c.cancelBuild
	m.mu.Unlock()
	switch st {
	case "running", "starting", "stopping":
		return fmt.Errorf("%w: %s is %s", ErrBusy, name, st)
	}
	if cancel != nil {
		cancel()
	}
	if err := m.WaitBuilt(ctx, name); errorsIsCtx(err) && ctx.Err() != nil {
		return err
	}
	c.buildMu.Lock()
	defer c.buildMu.Unlock()
	var errs []error
	for _, p := range []string{m.l.ProfilePath(name), m.l.GCRootPath(name)} {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	// The root tree may be large: moved aside at once (rmdir holds the mount's root
	// directory lock), deleted in the background.
	if err := m.discard(m.l.RootPath(name)); err != nil {
		errs = append(errs, err)
	}
	os.Remove(m.l.BuildLogPath(name))
	if err := errors.Join(errs...); err != nil {
		m.setError(name, err)
		return fmt.Errorf("destroy %s: %w", name, err)
	}
	if err := os.Remove(m.l.ConfPath(name)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("destroy %s: %w", name, err)
	}
	m.sup.resetFailed(ctx, UnitName(name))
	m.mu.Lock()
	if m.containers[name] == c {
		delete(m.containers, name)
		m.log.Info().Str("container", name).Msg("container destroyed")
		m.publishLocked(name, "container", "removed")
	}
	m.changed.Broadcast()
	m.mu.Unlock()
	return nil
}

const trashPrefix = ".nixcfs-trash-"

// discard removes a directory tree: renamed to a hidden name in its parent, so that it
// is gone from its place at once, then deleted in the background.
func (m *Manager) discard(dir string) error {
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return nil
	}
	trash, err := os.MkdirTemp(filepath.Dir(dir), trashPrefix)
	if err != nil {
		return os.RemoveAll(dir)
	}
	if err := os.Rename(dir, filepath.Join(trash, filepath.Base(dir))); err != nil {
		os.Remove(trash)
		return os.RemoveAll(dir)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := os.RemoveAll(trash); err != nil {
			m.log.Warn().Err(err).Str("path", trash).Msg("removing a destroyed root tree")
		}
	}()
	return nil
}

// emptyTrash removes what an earlier run left to delete in the background.
func (m *Manager) emptyTrash() {
	leftovers, _ := filepath.Glob(filepath.Join(m.l.StateDir, trashPrefix+"*"))
	for _, t := range leftovers {
		m.discard(t)
	}
}

// SetAddresses changes HOST_ADDRESS and/or LOCAL_ADDRESS ("" keeps one) of a stopped
// container, under the address lock.
func (m *Manager) SetAddresses(ctx context.Context, name, hostAddr, localAddr string) error {
	c, err := m.get(name)
	if err != nil {
		return err
	}
	if c.declarative {
		return fmt.Errorf("%w: %s", ErrDeclarative, name)
	}
	for _, a := range []string{hostAddr, localAddr} {
		if a != "" {
			if err := ValidateAddress(a); err != nil {
				return err
			}
		}
	}
	if st, _ := m.State(name); st == "running" || st == "starting" || st == "stopping" {
		return fmt.Errorf("%w: %s is %s; stop it to change its address", ErrBusy, name, st)
	}
	lock, err := lockAddresses(m.l.LockFile)
	if err != nil {
		return err
	}
	defer lock.unlock()
	used, err := usedAddresses(m.l.ConfDir)
	if err != nil {
		return err
	}
	for _, a := range []string{hostAddr, localAddr} {
		if a != "" {
			if err := checkAddressFree(used, a, name); err != nil {
				return err
			}
		}
	}
	if hostAddr != "" && localAddr != "" && bareAddress(hostAddr) == bareAddress(localAddr) {
		return fmt.Errorf("%w: host and container address are the same", ErrInvalid)
	}
	return m.editConf(name, func(conf *Conf) {
		if hostAddr != "" {
			conf.Set("HOST_ADDRESS", hostAddr)
		}
		if localAddr != "" {
			conf.Set("LOCAL_ADDRESS", localAddr)
		}
	})
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
		if st, _ := m.State(name); st != "stopped" && st != "failed" && st != "creating" {
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

// SetAutostart sets AUTO_START.
func (m *Manager) SetAutostart(name string, on bool) error {
	c, err := m.get(name)
	if err != nil {
		return err
	}
	if c.declarative {
		return fmt.Errorf("%w: %s", ErrDeclarative, name)
	}
	return m.editConf(name, func(conf *Conf) { conf.Set("AUTO_START", boolDigit(on)) })
}

// editConf rewrites the conf file atomically and updates the in-memory copy.
func (m *Manager) editConf(name string, edit func(*Conf)) error {
	path := m.l.ConfPath(name)
	conf, err := ReadConf(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	edit(&conf)
	if err := writeFileAtomic(path, conf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.containers[name]; c != nil {
		for _, k := range []string{"HOST_ADDRESS", "LOCAL_ADDRESS", "AUTO_START"} {
			if c.conf.Get(k) != conf.Get(k) {
				m.publishLocked(name, strings.ToLower(k), conf.Get(k))
			}
		}
		c.conf = conf
	}
	m.changed.Broadcast()
	return nil
}
