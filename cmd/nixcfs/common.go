package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"nixcfs/ops"
)

// layoutFlags are the state roots: the host's layout by default, overridable (tests).
type layoutFlags struct {
	layout     string
	confDir    string
	stateDir   string
	profileDir string
	gcrootDir  string
}

func (lf *layoutFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&lf.layout, "layout", "auto", "state layout: auto, new (/etc/nixos-containers) or old (/etc/containers)")
	fs.StringVar(&lf.confDir, "conf-dir", "", "directory of NAME.conf files (overrides --layout)")
	fs.StringVar(&lf.stateDir, "state-dir", "", "directory of the containers' root trees (overrides --layout)")
	fs.StringVar(&lf.profileDir, "profile-dir", "", "per-container profile directory")
	fs.StringVar(&lf.gcrootDir, "gcroot-dir", "", "per-container gc-root directory")
	markCommon(fs, "layout", "conf-dir", "state-dir", "profile-dir", "gcroot-dir")
}

// commonFlag marks the flags every verb that opens the containers takes, which the
// man page lists once.
const commonFlag = "nixcfs-common"

func markCommon(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		fs.SetAnnotation(n, commonFlag, []string{"true"})
	}
}

func (lf *layoutFlags) resolve() (ops.Layout, error) {
	var l ops.Layout
	switch lf.layout {
	case "auto", "":
		l = ops.DetectLayout()
	case "new":
		l = ops.NewLayout()
	case "old":
		l = ops.OldLayout()
	default:
		return l, fmt.Errorf("--layout: want auto, new or old, not %q", lf.layout)
	}
	for _, o := range []struct {
		dst *string
		val string
	}{{&l.ConfDir, lf.confDir}, {&l.StateDir, lf.stateDir}, {&l.ProfileDir, lf.profileDir}, {&l.GCRootDir, lf.gcrootDir}} {
		if o.val != "" {
			*o.dst = o.val
		}
	}
	return l, nil
}

// managerFlags open an ops.Manager.
type managerFlags struct {
	layoutFlags
	nixosPath string
	logLevel  string
	flags     *pflag.FlagSet
	// buildOutput gets nix's lines of the manager's builds (ops.Options.BuildOutput).
	buildOutput io.Writer
}

func (mf *managerFlags) register(fs *pflag.FlagSet) {
	mf.layoutFlags.register(fs)
	fs.StringVar(&mf.nixosPath, "nixos-path", ops.DefaultNixOSPath, "NixOS entry point for builds ($NIXCFS_NIXOS_PATH)")
	fs.StringVar(&mf.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	markCommon(fs, "nixos-path", "log-level")
	mf.flags = fs
}

// open starts a manager with this verb's flags, logging as daemonLogger does.
func (mf *managerFlags) open(ctx context.Context, replaceTemplate bool) (*ops.Manager, zerolog.Logger, error) {
	// The environment is read here, not when the flag is defined, so that help and the
	// man page show the same default everywhere.
	if !mf.flags.Changed("nixos-path") {
		mf.nixosPath = envOr("NIXCFS_NIXOS_PATH", mf.nixosPath)
	}
	l, err := mf.resolve()
	if err != nil {
		return nil, zerolog.Logger{}, err
	}
	log, err := daemonLogger(mf.logLevel)
	if err != nil {
		return nil, zerolog.Logger{}, err
	}
	m, err := ops.New(ctx, ops.Options{Layout: l, NixOSPath: mf.nixosPath, Log: log, ReplaceTemplate: replaceTemplate,
		BuildOutput: mf.buildOutput})
	return m, log, err
}

// daemonLogger logs readable lines on a terminal and JSON lines for journald and
// collectors otherwise.
func daemonLogger(level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("--log-level: %w", err)
	}
	var log zerolog.Logger
	if isatty.IsTerminal(os.Stderr.Fd()) {
		log = zerolog.New(zerolog.ConsoleWriter{Out: terminal, TimeFormat: time.TimeOnly})
	} else {
		log = zerolog.New(os.Stderr)
	}
	return log.Level(lvl).With().Timestamp().Logger(), nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// signalContext is a context that ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// fail prints nixos-container's style of error and returns its exit code.
func fail(format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "nixcfs: "+format+"\n", a...)
	return 1
}

// oneName expects exactly one NAME among a verb's arguments.
func oneName(verb string, pos []string) (string, int, bool) {
	if len(pos) == 0 {
		fmt.Fprintf(os.Stderr, "nixcfs: no container name specified\n")
		return "", 1, false
	}
	if len(pos) > 1 {
		fmt.Fprintf(os.Stderr, "nixcfs: %s takes one container name, not %q\n", verb, pos)
		return "", 1, false
	}
	return pos[0], 0, true
}
