package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	nixfs "nixcfs/fs"
	"nixcfs/internal/guestroot"
	"nixcfs/ops"
)

const defaultMountpoint = "/mnt/nixc"

// mountLong is mount's help, between its usage line and its flags, and its part of
// the man page.
const mountLong = `Serves the host's NixOS containers as a filesystem at MOUNTPOINT (default ` + defaultMountpoint + `),
until SIGINT or SIGTERM, which unmount it. Each container is a directory:

  mkdir MNT/foo                     create foo and build its system in the background
  echo start > MNT/foo/state        start foo; returns once it is up (stop, restart,
                                    reload, terminate likewise)
  vim MNT/foo/config.nix            edit its configuration.nix; closing the file builds
                                    it and switches a running container (EIO on failure)
  cat MNT/foo/status MNT/foo/log    inspect it (also address, host-address, build.log)
  echo 512M > MNT/foo/memory.max    limit it, in cgroup v2's syntax (also cpu.max, pids.max,
                                    cpu.weight, io.weight); systemd keeps it, applied at once
  cat MNT/foo/stats                 its memory, CPU time, tasks, I/O and network counters
  rmdir MNT/foo                     destroy it (EBUSY while it runs)
  cat MNT/events                    follow every change as it happens

It works on nixos-container's own files, so both tools drive the same containers.
Containers with AUTO_START=1 (create --auto-start, or "echo 1 > MNT/foo/autostart") are
started when the mount starts, so that a boot-time nixcfs unit brings them up.

The mount point must be an existing directory (--mkdir makes it) that is not already
a mount. Mounting needs /dev/fuse, root and systemd as PID 1. Only root may write;
with --allow-other other users may read. Under systemd use Type=notify: READY=1 is
sent once the filesystem is mounted. Logs go to stderr: readable lines on a
terminal, JSON lines otherwise (journald).
`

func mountCmd() *cobra.Command {
	var mf managerFlags
	var allowOther, debug, mkdir bool
	c := newVerb("mount", "[flags] [MOUNTPOINT]", "serve the containers as a filesystem (default "+defaultMountpoint+")", func(c *cobra.Command, args []string) int {
		return cmdMount(&mf, args, mountOptions{allowOther: allowOther, debug: debug, mkdir: mkdir})
	})
	c.Long = mountLong
	fs := c.Flags()
	mf.register(fs)
	fs.BoolVar(&allowOther, "allow-other", false, "let other users read the files (never write them)")
	fs.BoolVar(&debug, "debug-fuse", false, "log every FUSE request")
	fs.BoolVar(&mkdir, "mkdir", false, "create the mount point (and its parents) if it does not exist, as mount --mkdir does")
	c.ValidArgsFunction = func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	}
	registerFlagCompletions(c)
	return c
}

type mountOptions struct{ allowOther, debug, mkdir bool }

// cmdMount serves the containers at a mount point until a signal or an outside
// umount ends it.
func cmdMount(mf *managerFlags, pos []string, o mountOptions) int {
	if len(pos) > 1 {
		return fail("mount takes one mount point, not %q", pos)
	}
	// Before anything is made on disk: without systemd nothing here can work.
	if err := systemdBooted(); err != nil {
		return fail("%v", err)
	}
	mountpoint := defaultMountpoint
	if len(pos) == 1 {
		mountpoint = pos[0]
	}
	if o.mkdir {
		// A failure that leaves something in the way (a dead mount, a file) is
		// explained by usableMountpoint.
		if err := os.MkdirAll(mountpoint, 0o755); err != nil {
			if _, serr := os.Stat(mountpoint); errors.Is(serr, os.ErrNotExist) {
				return fail("mount point: %v", err)
			}
		}
	}
	mountpoint, err := usableMountpoint(mountpoint)
	if err != nil {
		return fail("%v", err)
	}
	ctx, stop := signalContext()
	defer stop()
	m, log, err := mf.open(ctx, true)
	if err != nil {
		return fail("%v", err)
	}
	defer m.Close()
	server, err := nixfs.Mount(mountpoint, m, nixfs.Options{AllowOther: o.allowOther, Debug: o.debug, Log: log})
	if err != nil {
		return fail("mount %s: %v", mountpoint, err)
	}
	log.Info().Str("mountpoint", mountpoint).Str("conf_dir", m.Layout().ConfDir).Msg("mounted")
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		log.Warn().Err(err).Msg("sd_notify")
	}
	startBackground(ctx, m, log)
	return serveUntilDone(ctx, server, mountpoint, log)
}

// startBackground brings up the containers created with --auto-start, as a mount that
// runs at boot should, and deletes the root trees an earlier run left to delete.
func startBackground(ctx context.Context, m *ops.Manager, log zerolog.Logger) {
	go m.EmptyTrash()
	go func() {
		started, err := m.StartAutostart(ctx)
		for _, name := range started {
			log.Info().Str("container", name).Msg("autostarted")
		}
		if err != nil {
			log.Error().Err(err).Msg("autostart")
		}
	}()
}

// serveUntilDone serves until the mount is unmounted from outside or ctx ends (a
// signal), and then unmounts it.
func serveUntilDone(ctx context.Context, server *fuse.Server, mountpoint string, log zerolog.Logger) int {
	unmounted := make(chan struct{})
	go func() {
		server.Wait()
		close(unmounted)
	}()
	select {
	case <-unmounted:
		log.Info().Str("mountpoint", mountpoint).Msg("unmounted from outside")
		return 0
	case <-ctx.Done():
	}
	daemon.SdNotify(false, daemon.SdNotifyStopping)
	if err := server.Unmount(); err != nil {
		// Busy: a shell sits in it, or a file is open. Detach it, so that it vanishes
		// from the namespace now and from the kernel once the last user lets go.
		log.Warn().Err(err).Str("mountpoint", mountpoint).Msg("mount busy; detaching it")
		if err := unix.Unmount(mountpoint, unix.MNT_DETACH); err != nil {
			return fail("unmount %s: %v", mountpoint, err)
		}
	}
	log.Info().Str("mountpoint", mountpoint).Msg("unmounted")
	return 0
}

// usableMountpoint checks, before anything is started, that path can be mounted on,
// and returns it absolute.
func usableMountpoint(path string) (string, error) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return "", errors.New("/dev/fuse is missing: load the fuse module (modprobe fuse), or pass the device into this container")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, unix.ENOTCONN):
		return "", fmt.Errorf("%s is a dead FUSE mount (its server is gone): umount %s first", abs, abs)
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("mount point %s does not exist (mkdir -p %s)", abs, abs)
	case err != nil:
		return "", err
	case !fi.IsDir():
		return "", fmt.Errorf("mount point %s is not a directory", abs)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	if fstype, _ := guestroot.MountedAt(abs); fstype != "" {
		return "", fmt.Errorf("%s is busy: a %s filesystem is already mounted there (another nixcfs mount?)", abs, fstype)
	}
	return abs, nil
}

// systemdBooted says why nixcfs cannot run containers on a host whose PID 1 is not
// systemd (the test of sd_booted(3)), and what to do instead.
func systemdBooted() error {
	if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() {
		return nil
	}
	pid1 := "not systemd"
	if comm, err := os.ReadFile("/proc/1/comm"); err == nil {
		pid1 = strings.TrimSpace(string(comm))
	}
	return fmt.Errorf("systemd is not running as PID 1 on this host (PID 1 is %s): nixcfs runs each container as a systemd unit. "+
		"To try nixcfs here, \"make demo\" in its source tree boots a disposable systemd host and mounts inside it", pid1)
}
