// Package unitstep holds the steps of the container@.service template that nixcfs
// installs on hosts without NixOS's own: systemd runs each as a separate process
// (`nixcfs unit prestart|start|reload|poststop NAME`), doing what NixOS's template does
// in shell: prepare the root tree, make the network and the port forwards, exec
// systemd-nspawn with NixOS's flags, reload by switch-to-configuration inside, clean up
// after stop.
package unitstep

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"nixcfs/guest/control"
	"nixcfs/ops"
)

// Prestart prepares the root tree and the network, as NixOS's preStartScript does, and
// the port forwards, which nspawn's --port makes under NixOS's template.
func Prestart(l ops.Layout, name string) error {
	if err := ops.ValidateName(name); err != nil {
		return err
	}
	conf, err := ops.ReadConf(l.ConfPath(name))
	if err != nil {
		return fmt.Errorf("prestart %s: %w", name, err)
	}
	root := l.RootPath(name)
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{
		{root, 0o755}, {root + "/etc", 0o755}, {root + "/var/lib", 0o755},
		{root + "/var/lib/private", 0o700}, {root + "/root", 0o700},
		// Debian's systemd-nspawn refuses a root without usr/ ("doesn't look like it
		// has an OS tree"); NixOS patches that check away.
		{root + "/usr", 0o755},
		{l.ProfilePath(name), 0o755}, {l.GCRootPath(name), 0o755},
	} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fmt.Errorf("prestart %s: %w", name, err)
		}
	}
	for _, f := range []string{"etc/os-release", "etc/machine-id"} {
		p := filepath.Join(root, f)
		if _, err := os.Lstat(p); os.IsNotExist(err) {
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				return fmt.Errorf("prestart %s: %w", name, err)
			}
		}
	}
	if data, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		p := filepath.Join(root, "etc/resolv.conf")
		os.Remove(p)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("prestart %s: %w", name, err)
		}
	}
	if _, err := initPath(l, name, conf); err != nil {
		return err
	}
	if nc := netConfigOf(conf); nc.private {
		if err := setupNetwork(name, nc); err != nil {
			return err
		}
	}
	return setupForwards(name, conf)
}

// initPath is the store path of the init nspawn runs: $SYSTEM_PATH/init, by default the
// container's profile. It is resolved on the host because nspawn wants a path that
// exists inside the container, and host-side symlinks outside /nix/store do not.
func initPath(l ops.Layout, name string, conf ops.Conf) (string, error) {
	sys := l.SystemOf(name, conf)
	// Resolve the system, not init itself: init finds its system from its own path.
	resolved, err := filepath.EvalSymlinks(sys)
	if err == nil {
		_, err = os.Stat(filepath.Join(resolved, "init"))
	}
	if err != nil {
		return "", fmt.Errorf("%w: %s: no init in %s (has the build succeeded? see its build.log)", ops.ErrNotBuilt, name, sys)
	}
	return filepath.Join(resolved, "init"), nil
}

// NspawnArgs is the systemd-nspawn command line NixOS's startScript uses.
func NspawnArgs(l ops.Layout, name string, conf ops.Conf) ([]string, error) {
	init, err := initPath(l, name, conf)
	if err != nil {
		return nil, err
	}
	args := []string{"systemd-nspawn", "--keep-unit", "-M", name, "-D", l.RootPath(name),
		"--notify-ready=yes", "--kill-signal=SIGRTMIN+3",
		"--bind-ro=/nix/store"}
	// The store database and daemon socket exist on a NixOS host, not everywhere.
	for _, p := range []string{"/nix/var/nix/db", "/nix/var/nix/daemon-socket"} {
		if _, err := os.Stat(p); err == nil {
			args = append(args, "--bind-ro="+p)
		}
	}
	args = append(args,
		"--bind="+l.ProfilePath(name)+":/nix/var/nix/profiles",
		"--bind="+l.GCRootPath(name)+":/nix/var/nix/gcroots",
		"--link-journal=try-guest")
	if conf.Get("PRIVATE_NETWORK") == "1" {
		args = append(args, "--network-namespace-path="+ops.NetnsPath(name))
	}
	// No --port=: nspawn refuses it with a namespace it did not make; prestart makes
	// the forwards of HOST_PORT itself (setupForwards).
	for _, k := range []string{"PRIVATE_NETWORK", "HOST_BRIDGE", "HOST_ADDRESS", "LOCAL_ADDRESS",
		"HOST_ADDRESS6", "LOCAL_ADDRESS6", "HOST_PORT"} {
		args = append(args, "--setenv="+k+"="+conf.Get(k))
	}
	if extra := conf.Get("EXTRA_NSPAWN_FLAGS"); extra != "" {
		args = append(args, strings.Fields(extra)...)
	}
	return append(args, init), nil
}

// ExecNspawn replaces this process with systemd-nspawn, so that the unit's main
// process is nspawn itself and its READY=1 is the unit's.
func ExecNspawn(l ops.Layout, name string) error {
	if err := ops.ValidateName(name); err != nil {
		return err
	}
	conf, err := ops.ReadConf(l.ConfPath(name))
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	args, err := NspawnArgs(l, name, conf)
	if err != nil {
		return err
	}
	bin, err := exec.LookPath(args[0])
	if err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	return syscall.Exec(bin, args, os.Environ())
}

// Poststop removes what prestart made for the network and the forwards.
func Poststop(name string) error {
	if err := ops.ValidateName(name); err != nil {
		return err
	}
	return errors.Join(teardownNetwork(name), removeForwards(name))
}

// Reload activates the container's current system without a restart: inside, the
// guest init runs `/nix/var/nix/profiles/system/bin/switch-to-configuration test`, as
// NixOS's ExecReload does. mainPID is the unit's main process (nspawn).
func Reload(ctx context.Context, name string, mainPID int) (string, error) {
	leader, err := ops.LeaderOf(mainPID)
	if err != nil {
		return "", fmt.Errorf("reload %s: %w", name, err)
	}
	return guestCommand(ctx, leader, "reload")
}

// guestCommand sends one line to the guest init's control socket, reached from the
// host through the leader's root, and returns the answer.
func guestCommand(ctx context.Context, leader int, line string) (string, error) {
	answer, err := control.Request(ctx, fmt.Sprintf("/proc/%d/root%s", leader, control.Socket), line)
	answer = strings.TrimSpace(answer)
	if err != nil {
		return answer, fmt.Errorf("guest init: %w", err)
	}
	return answer, nil
}
