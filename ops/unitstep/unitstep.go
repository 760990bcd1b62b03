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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"nixcfs/guest/control"
	"nixcfs/internal/guestroot"
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
	for _, d := range []string{l.RootPath(name), l.ProfilePath(name), l.GCRootPath(name)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("prestart %s: %w", name, err)
		}
	}
	if err := prepareRoot(l.RootPath(name)); err != nil {
		return fmt.Errorf("prestart %s: %w", name, err)
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

// prepareRoot makes what systemd-nspawn and the guest's first boot expect in its root
// tree, through a handle that no symlink the guest planted can lead out of the tree.
func prepareRoot(dir string) error {
	r, err := guestroot.Open(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, d := range []struct {
		name string
		mode os.FileMode
	}{
		{"etc", 0o755}, {"var/lib", 0o755}, {"var/lib/private", 0o700}, {"root", 0o700},
		// Debian's systemd-nspawn refuses a root without usr/ ("doesn't look like it
		// has an OS tree"); NixOS patches that check away.
		{"usr", 0o755},
	} {
		if err := r.MkdirAll(d.name, d.mode); err != nil {
			return err
		}
	}
	for _, f := range []string{"etc/os-release", "etc/machine-id"} {
		if _, err := r.CreateIfMissing(f, nil, 0o644); err != nil {
			return err
		}
	}
	// The host's resolver, as a regular file in place of whatever the guest left there.
	if data, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		return r.WriteFile("etc/resolv.conf", data, 0o644)
	}
	return nil
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
// host through the leader's root and resolved inside it: a guest's symlink at the
// socket's path never leads the host to one of its own sockets.
func guestCommand(ctx context.Context, leader int, line string) (string, error) {
	dial := func(ctx context.Context) (net.Conn, error) {
		return guestroot.DialUnix(ctx, fmt.Sprintf("/proc/%d/root", leader), control.Socket)
	}
	answer, err := control.RequestVia(ctx, dial, line)
	answer = strings.TrimSpace(answer)
	if err != nil {
		return answer, fmt.Errorf("guest init: %w", err)
	}
	return answer, nil
}
