package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

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
	// BuildOutput, if set, gets nix's output of every build, a line at a time, as
	// it goes to the build log: the command line's stderr when it is no terminal.
	BuildOutput io.Writer
}

func (o *Options) setDefaults() error {
	if o.Layout == (Layout{}) {
		o.Layout = DetectLayout()
	}
	if o.NixcfsBin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.NixcfsBin = exe
	}
	if o.UnitDir == "" {
		o.UnitDir = "/run/systemd/system"
	}
	if o.UnitSearchDirs == nil {
		o.UnitSearchDirs = []string{"/etc/systemd/system", "/run/systemd/system",
			"/usr/lib/systemd/system", "/lib/systemd/system"}
	}
	if o.MaxParallelBuilds == 0 {
		o.MaxParallelBuilds = 4
	}
	return nil
}

// Manager creates, builds, starts, stops, updates, inspects and destroys NixOS
// containers. Its view of every container is kept in memory, current from systemd's
// signals and from inotify on the conf directory; Status and List never ask systemd.
type Manager struct {
	l   Layout
	log zerolog.Logger
	reg *registry
	sup *supervisor
	nix *builder
	fsw *fsnotify.Watcher
	// runs: each running unit's cgroup and start, for Stats; its lock is a leaf.
	runs unitRuns
	// confMu is held from a read of a conf file to its copy in the registry
	// (editConf, refreshConf): a read on inotify's news of an older edit never lands
	// after a newer edit's copy.
	confMu sync.Mutex

	ctx    context.Context // ends with Close: background builds and loops
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New connects to systemd, installs the unit template where the host has none, reads
// the conf directory and starts following changes.
func New(ctx context.Context, opts Options) (*Manager, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	l := opts.Layout
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{l.ConfDir, 0o755}, {l.StateDir, 0o700}, {l.ProfileDir, 0o700}, {l.GCRootDir, 0o755}, {l.LogDir, 0o755}, {l.DataDir, 0o700}} {
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
	m := &Manager{l: l, log: opts.Log, reg: newRegistry(opts.Log), sup: sup, fsw: fsw,
		nix: newBuilder(opts.NixOSPath, opts.MaxParallelBuilds, opts.BuildOutput)}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.log.Debug().Str("template", tmpl).Str("conf_dir", l.ConfDir).Msg("manager started")
	m.recover(ctx)
	if err := m.readAll(ctx); err != nil {
		m.Close()
		return nil, err
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
	m.reg.closeWatchers()
	return nil
}

// Layout is where this manager keeps its files.
func (m *Manager) Layout() Layout { return m.l }

// noted records a failed operation's reason in the container's status, where a reader
// of its files finds it, and returns err. A cancelled wait is no failure: the
// operation goes on; nor is an operation overridden by a later one, which the status
// tells as news.
func (m *Manager) noted(name string, err error) error {
	switch {
	case err == nil, isCancel(err):
	case errors.Is(err, ErrOverridden):
		m.reg.noteNotice(name, oneLine(err.Error()))
	default:
		m.reg.noteError(name, err)
	}
	return err
}

// isCancel tells a wait that ended early from a failure.
func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// goBackground runs f in the background until it returns; Close waits for it.
func (m *Manager) goBackground(f func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
}
