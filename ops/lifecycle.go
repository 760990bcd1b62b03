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
	if o.HostAddress != "" && BareAddress(o.HostAddress) == BareAddress(o.LocalAddress) {
		return "", fmt.Errorf("%w: host and container address are the same", ErrInvalid)
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
	configText := o.ConfigText
	if configText == "" && o.SystemPath == "" {
		var err error
		if configText, err = ConfigText(name, o.Config, o.ConfigFile); err != nil {
			return "", err
		}
	}

	lock, err := lockAddresses(ctx, m.l.LockFile)
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
	c := newContainer(name)
	c.creating = true
	run := m.claimNewBuild(c)
	m.mu.Lock()
	m.containers[name] = c
	m.mu.Unlock()
	undo := func(err error) {
		os.RemoveAll(m.l.RootPath(name))
		os.RemoveAll(m.l.ProfilePath(name))
		os.RemoveAll(m.l.GCRootPath(name))
		os.Remove(m.l.ConfPath(name))
		m.mu.Lock()
		delete(m.containers, name)
		m.mu.Unlock()
		run.cancel()
		m.finishBuild(c, run, err, 0)
	}
	if err := m.writeInitialFiles(name, configText); err != nil {
		undo(err)
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	conf := newConf(hostAddr, localAddr, o.Bridge, o.Port, o.AutoStart)
	if o.Flake != "" {
		conf.Set("FLAKE", o.Flake)
	}
	if err := writeFileAtomic(m.l.ConfPath(name), conf.Bytes(), 0o644); err != nil {
		undo(err)
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

	m.runBuild(c, run, func(ctx context.Context) error {
		if o.SystemPath != "" {
			return m.builder.setSystem(ctx, m.l.ProfilePath(name), o.SystemPath, m.l.BuildLogPath(name))
		}
		return m.buildSystem(ctx, name, conf)
	})
	return name, nil
}

// ConfigText is the configuration.nix nixos-container writes for --config TEXT or
// --config-file FILE (imported by its absolute path): its template with that added.
func ConfigText(name, config, configFile string) (string, error) {
	if config != "" && configFile != "" {
		return "", fmt.Errorf("%w: --config and --config-file are mutually incompatible", ErrInvalid)
	}
	if configFile != "" {
		abs, err := filepath.Abs(configFile)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			return "", fmt.Errorf("%w: config file: %v", ErrInvalid, err)
		}
		config = "imports = [ " + abs + " ];"
	}
	return DefaultConfig(name, config), nil
}

// buildSystem builds the container's system from its flake (FLAKE in the conf file)
// or from its configuration.nix.
func (m *Manager) buildSystem(ctx context.Context, name string, conf Conf) error {
	if flake := conf.Get("FLAKE"); flake != "" {
		return m.builder.buildFlake(ctx, m.l.ProfilePath(name), m.l.GCRootPath(name), flake, m.l.BuildLogPath(name))
	}
	return m.builder.build(ctx, m.l.ProfilePath(name), m.l.GCRootPath(name), m.l.ConfigPath(name), m.l.BuildLogPath(name))
}

func (m *Manager) writeInitialFiles(name, configText string) error {
	for _, d := range []string{m.l.ProfilePath(name), m.l.GCRootPath(name), filepath.Dir(m.l.ConfigPath(name))} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if configText == "" {
		return nil // --system-path: nothing to build from
	}
	return writeFileAtomic(m.l.ConfigPath(name), []byte(configText), 0o644)
}

// ---- builds: one at a time per container ----

// claimNewBuild marks a build of a container nobody else knows yet as begun.
func (m *Manager) claimNewBuild(c *container) *buildRun {
	// Its context exists from the claim on, so that Destroy can cancel a build that
	// is claimed but not yet running.
	ctx, cancel := context.WithCancel(m.ctx)
	run := &buildRun{done: make(chan struct{}), ctx: ctx, cancel: cancel}
	c.build, c.config = run, "building"
	return run
}

// claimBuild waits until no build of c runs (its result is not ours), then marks a
// new one as begun: builds of one container never overlap, and each caller's text is
// the one built.
func (m *Manager) claimBuild(ctx context.Context, c *container) (*buildRun, error) {
	stop := context.AfterFunc(ctx, func() {
		m.mu.Lock()
		m.changed.Broadcast()
		m.mu.Unlock()
	})
	defer stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	for c.build != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		m.changed.Wait()
	}
	if c.destroying {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c.name)
	}
	run := m.claimNewBuild(c)
	m.publishLocked(c.name, "config", "building")
	return run, nil
}

// runBuild runs a claimed build in the background, under the manager's context: it
// goes on when the caller stops waiting, and Destroy or Close cancel it.
func (m *Manager) runBuild(c *container, run *buildRun, build func(context.Context) error) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer run.cancel()
		start := time.Now()
		err := run.ctx.Err() // cancelled before it began
		if err == nil {
			err = build(run.ctx)
		}
		m.finishBuild(c, run, err, time.Since(start))
	}()
}

func (m *Manager) finishBuild(c *container, run *buildRun, err error, took time.Duration) {
	var reason string
	if err != nil {
		reason = oneLine(buildError(m.l.BuildLogPath(c.name), err)) // reads the log: not under the lock
	}
	_, confErr := os.Stat(m.l.ConfPath(c.name))
	m.mu.Lock()
	defer m.mu.Unlock()
	wasCreating := c.creating
	c.creating = false
	run.err = err
	c.build, c.lastBuild = nil, run
	defer func() {
		close(run.done)
		m.changed.Broadcast()
	}()
	if m.containers[c.name] != c {
		return // never announced (a create undone), or gone
	}
	if wasCreating && os.IsNotExist(confErr) && !c.destroying {
		// Removed from outside (nixos-container destroy) during its first build, when
		// inotify's news was held back.
		delete(m.containers, c.name)
		m.publishLocked(c.name, "container", "removed")
		return
	}
	if err != nil {
		c.config = "failed"
		c.lastErr = reason
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
}

// buildError is the readable reason of a failed build: nix's "error:" line from the
// log, which says what is wrong with the configuration.
func buildError(logPath string, err error) string {
	if errorsIsCtx(err) {
		return "build cancelled"
	}
	if !errors.Is(err, ErrBuildFailed) {
		return err.Error() // not nix's: the log has nothing to add
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

// WaitBuilt waits for the build in progress, or else takes the last one, and returns
// its error; nil when the container was never built here.
func (m *Manager) WaitBuilt(ctx context.Context, name string) error {
	c, err := m.lookup(name)
	if err != nil {
		return err
	}
	m.mu.Lock()
	run := c.build
	if run == nil {
		run = c.lastBuild
	}
	m.mu.Unlock()
	if run == nil {
		return nil
	}
	return waitRun(ctx, run)
}

func waitRun(ctx context.Context, run *buildRun) error {
	select {
	case <-run.done:
		return run.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ReadConfig returns the container's configuration.nix.
func (m *Manager) ReadConfig(name string) ([]byte, error) {
	if _, err := m.lookup(name); err != nil {
		return nil, err
	}
	return os.ReadFile(m.l.ConfigPath(name))
}

// SetConfig is `nixos-container update NAME --config-file`: the text becomes the
// container's configuration.nix, the system is built and, if the container runs,
// activated without a restart. The new text stays even when the build fails; the
// container then keeps its previous system and Status says why. If ctx ends once the
// build has begun, the build and switch go on and ctx's error is returned.
func (m *Manager) SetConfig(ctx context.Context, name string, text []byte) error {
	return m.update(ctx, name, text)
}

// Update builds the current configuration.nix and, if the container runs, switches it
// to the new system (`nixos-container update NAME`).
func (m *Manager) Update(ctx context.Context, name string) error {
	return m.update(ctx, name, nil)
}

func (m *Manager) update(ctx context.Context, name string, text []byte) error {
	c, err := m.mutable(name)
	if err != nil {
		return err
	}
	run, err := m.claimBuild(ctx, c)
	if err != nil {
		return err
	}
	m.runBuild(c, run, func(ctx context.Context) error {
		if text != nil {
			if err := writeFileAtomic(m.l.ConfigPath(name), text, 0o644); err != nil {
				return fmt.Errorf("write configuration of %s: %w", name, err)
			}
		}
		conf, err := m.Conf(name)
		if err != nil {
			return err
		}
		if err := m.buildSystem(ctx, name, conf); err != nil {
			return err
		}
		if st, _ := m.State(name); st == "running" {
			return m.reloadUnit(ctx, name)
		}
		return nil
	})
	return waitRun(ctx, run)
}

// ---- unit operations ----

// noteErr records a failed operation's error for Status (SPEC: every error has a
// readable line in status). A cancelled wait is not a failure: the operation goes on.
func (m *Manager) noteErr(name string, err *error) {
	if *err != nil && !errorsIsCtx(*err) {
		m.setError(name, *err)
	}
}

// Start starts the container and returns once it reported ready, or with the unit's
// failure. Start of a running container succeeds; start while creating waits for the
// build first.
func (m *Manager) Start(ctx context.Context, name string) (err error) {
	defer m.noteErr(name, &err)
	return m.startWith(ctx, name, m.sup.start)
}

// Restart stops and starts the container.
func (m *Manager) Restart(ctx context.Context, name string) (err error) {
	defer m.noteErr(name, &err)
	return m.startWith(ctx, name, m.sup.restart)
}

func (m *Manager) startWith(ctx context.Context, name string, job func(context.Context, string) error) error {
	c, err := m.lookup(name)
	if err != nil {
		return err
	}
	// A build in progress ends first (outside the unit lock, which Destroy must not
	// wait on for a whole build). A failed build leaves the previous system, which
	// starts; its error matters only when there is none.
	buildErr := m.WaitBuilt(ctx, name)
	if errorsIsCtx(buildErr) && ctx.Err() != nil {
		return buildErr
	}
	unlock, err := c.lockUnit(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	conf, err := m.Conf(name) // also: not destroyed meanwhile
	if err != nil {
		return err
	}
	if sys, _ := systemGeneration(systemLinkOf(m.l, name, conf)); sys == "" {
		if buildErr != nil {
			return buildErr
		}
		return fmt.Errorf("%w: %s (see build.log)", ErrNotBuilt, name)
	}
	unit := UnitName(name)
	before := m.unitSeq(name)
	jobErr := job(ctx, unit)
	if errorsIsCtx(jobErr) {
		return jobErr
	}
	if jobErr == nil {
		// Up, unless a state reported after the job says otherwise: the job's end
		// and the state signals travel separately.
		err = m.settleAfter(ctx, name, before)
		if errorsIsCtx(err) && ctx.Err() != nil {
			return err
		}
		if st, _ := m.State(name); st == "running" {
			m.setError(name, nil)
			return nil
		}
	}
	us := m.sup.unitStateOf(m.ctx, unit)
	if jobErr == nil && us.ActiveState == "active" {
		return nil // the signal is late; systemd itself says it runs
	}
	reason := fmt.Sprintf("%s is %s (result: %s)", unit, us.ActiveState, us.Result)
	if jobErr != nil {
		reason = fmt.Sprintf("%v; %s", jobErr, reason)
	}
	return fmt.Errorf("%w: %s; see its log", ErrStartFailed, reason)
}

// settleAfter waits until the container runs, or a state reported after seq says it
// failed or stopped.
func (m *Manager) settleAfter(ctx context.Context, name string, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	return m.waitFor(ctx, name, func(c *container) bool {
		if c == nil {
			return true
		}
		switch m.stateLocked(c) {
		case "running":
			return true
		case "failed", "stopped":
			return m.seq[name] > seq
		}
		return false
	})
}

// Stop stops the container and returns once it is down.
func (m *Manager) Stop(ctx context.Context, name string) (err error) {
	defer m.noteErr(name, &err)
	if _, err := m.lookup(name); err != nil {
		return err
	}
	if err := m.sup.stop(ctx, UnitName(name)); err != nil {
		return err
	}
	m.setError(name, nil)
	return m.settle(ctx, name, "stopped", "failed")
}

// Reload activates the current system of a running container without a restart.
func (m *Manager) Reload(ctx context.Context, name string) (err error) {
	defer m.noteErr(name, &err)
	if _, err := m.lookup(name); err != nil {
		return err
	}
	if st, _ := m.State(name); st != "running" {
		return fmt.Errorf("%w: %s is %s, not running: nothing to reload", ErrInvalid, name, st)
	}
	return m.reloadUnit(ctx, name)
}

func (m *Manager) reloadUnit(ctx context.Context, name string) error {
	if err := m.sup.reload(ctx, UnitName(name)); err != nil {
		return fmt.Errorf("reload %s: %w (see log)", name, err)
	}
	return nil
}

// Terminate kills every process of the container at once (machinectl terminate).
func (m *Manager) Terminate(ctx context.Context, name string) (err error) {
	defer m.noteErr(name, &err)
	if _, err := m.lookup(name); err != nil {
		return err
	}
	if err := m.sup.kill(ctx, UnitName(name)); err != nil {
		return err
	}
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

// Busy tells the states in which a container's files are in use: destroy and address
// changes are refused then.
func Busy(state string) bool {
	return state == "running" || state == "starting" || state == "stopping"
}

// ---- files ----

// Destroy removes the container: profile, gc roots, root tree, build log and conf
// file. A running container is refused (ErrBusy): stop it first. A build in progress
// is cancelled.
func (m *Manager) Destroy(ctx context.Context, name string) (err error) {
	defer m.noteErr(name, &err)
	c, err := m.mutable(name)
	if err != nil {
		return err
	}
	// A start holds the unit lock: the container is starting (EBUSY), and rmdir, which
	// holds the mount's root directory, must not wait for it.
	select {
	case c.unitLock <- struct{}{}:
		defer func() { <-c.unitLock }()
	default:
		return fmt.Errorf("%w: %s is starting", ErrBusy, name)
	}
	root := m.l.RootPath(name)
	m.mu.Lock()
	st := m.stateLocked(c)
	if Busy(st) {
		m.mu.Unlock()
		return fmt.Errorf("%w: %s is %s; stop it first", ErrBusy, name, st)
	}
	if mnt := MountsUnder(root); len(mnt) > 0 {
		m.mu.Unlock()
		return fmt.Errorf("%w: %s has filesystems mounted in its root tree (%s); unmount them first", ErrBusy, name, strings.Join(mnt, ", "))
	}
	c.destroying = true
	run := c.build
	m.mu.Unlock()
	if run != nil {
		run.cancel()
		<-run.done
	}

	var errs []error
	for _, p := range []string{m.l.ProfilePath(name), m.l.GCRootPath(name)} {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	// The root tree may be large: moved aside at once (rmdir holds the mount's root
	// directory lock), deleted in the background.
	if err := m.discard(root); err != nil {
		errs = append(errs, err)
	}
	os.Remove(m.l.BuildLogPath(name))
	// Under nixos-container's lock, which conf edits take: none writes it back.
	if lock, err := lockAddresses(ctx, m.l.LockFile); err != nil {
		errs = append(errs, err)
	} else {
		if err := os.Remove(m.l.ConfPath(name)); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
		lock.unlock()
	}
	if err := errors.Join(errs...); err != nil {
		m.mu.Lock()
		c.destroying = false
		m.mu.Unlock()
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
// is gone from its place at once, then deleted in the background (Close waits).
func (m *Manager) discard(dir string) error {
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return nil
	}
	trash, err := os.MkdirTemp(filepath.Dir(dir), trashPrefix)
	if err != nil {
		return removeTree(dir)
	}
	if err := os.Rename(dir, filepath.Join(trash, filepath.Base(dir))); err != nil {
		os.Remove(trash)
		return removeTree(dir)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := removeTree(trash); err != nil {
			m.log.Warn().Err(err).Str("path", trash).Msg("removing a destroyed root tree")
		}
	}()
	return nil
}

// EmptyTrash removes root trees that an earlier run moved aside and did not finish
// deleting. The mount daemon calls it in the background at start.
func (m *Manager) EmptyTrash() {
	leftovers, _ := filepath.Glob(filepath.Join(m.l.StateDir, trashPrefix+"*"))
	for _, t := range leftovers {
		if err := removeTree(t); err != nil {
			m.log.Warn().Err(err).Str("path", t).Msg("removing a destroyed root tree")
		}
	}
}

// removeTree is os.RemoveAll that refuses to descend into a filesystem mounted inside
// the tree (nixos-container's `rm --one-file-system`): a bind mount's host data is
// never deleted.
func removeTree(dir string) error {
	if mnt := MountsUnder(dir); len(mnt) > 0 {
		return fmt.Errorf("%w: filesystems are mounted under %s (%s)", ErrBusy, dir, strings.Join(mnt, ", "))
	}
	return os.RemoveAll(dir)
}

// SetAddresses changes HOST_ADDRESS and/or LOCAL_ADDRESS ("" keeps one) of a stopped
// container, under the address lock.
func (m *Manager) SetAddresses(ctx context.Context, name, hostAddr, localAddr string) (err error) {
	defer m.noteErr(name, &err)
	if _, err := m.mutable(name); err != nil {
		return err
	}
	for _, a := range []string{hostAddr, localAddr} {
		if a != "" {
			if err := ValidateAddress(a); err != nil {
				return err
			}
		}
	}
	lock, err := lockAddresses(ctx, m.l.LockFile)
	if err != nil {
		return err
	}
	defer lock.unlock()
	if st, _ := m.State(name); Busy(st) {
		return fmt.Errorf("%w: %s is %s; stop it to change its address", ErrBusy, name, st)
	}
	used, err := usedAddresses(m.l.ConfDir)
	if err != nil {
		return err
	}
	conf, err := m.Conf(name)
	if err != nil {
		return err
	}
	newHost, newLocal := conf.Get("HOST_ADDRESS"), conf.Get("LOCAL_ADDRESS")
	for _, a := range []struct{ value, dst *string }{{&hostAddr, &newHost}, {&localAddr, &newLocal}} {
		if *a.value != "" {
			if err := checkAddressFree(used, *a.value, name); err != nil {
				return err
			}
			*a.dst = *a.value
		}
	}
	if newHost != "" && BareAddress(newHost) == BareAddress(newLocal) {
		return fmt.Errorf("%w: host and container address would both be %s", ErrInvalid, BareAddress(newHost))
	}
	return m.editConf(name, func(conf *Conf) {
		conf.Set("HOST_ADDRESS", newHost)
		conf.Set("LOCAL_ADDRESS", newLocal)
	})
}

// SetAutostart sets AUTO_START.
func (m *Manager) SetAutostart(ctx context.Context, name string, on bool) (err error) {
	defer m.noteErr(name, &err)
	if _, err := m.mutable(name); err != nil {
		return err
	}
	lock, err := lockAddresses(ctx, m.l.LockFile)
	if err != nil {
		return err
	}
	defer lock.unlock()
	return m.editConf(name, func(conf *Conf) { conf.Set("AUTO_START", boolDigit(on)) })
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
		if st, _ := m.State(name); Busy(st) {
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

// editConf rewrites the conf file atomically and updates the in-memory copy. The
// caller holds the address lock, which nixos-container also takes to write conf files.
func (m *Manager) editConf(name string, edit func(*Conf)) error {
	if _, err := m.lookup(name); err != nil {
		return err // destroyed while the caller waited for the lock
	}
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
		// Events are named after the files that show these keys.
		for _, k := range []struct{ key, file string }{{"HOST_ADDRESS", "host-address"}, {"LOCAL_ADDRESS", "address"}, {"AUTO_START", "autostart"}} {
			if c.conf.Get(k.key) != conf.Get(k.key) {
				m.publishLocked(name, k.file, conf.Get(k.key))
			}
		}
		c.conf = conf
	}
	m.changed.Broadcast()
	return nil
}
