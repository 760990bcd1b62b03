package ops

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"nixcfs/guest/control"
)

// The runtime template nixcfs installs where the host has no container@.service (any
// host but NixOS). Its steps are hidden `nixcfs unit` subcommands that do what NixOS's
// template does in shell: prepare the root tree, make the network, exec systemd-nspawn
// with NixOS's flags, reload by switch-to-configuration inside, clean up after stop.

// UnitName is the systemd unit of a container, as on NixOS.
func UnitName(name string) string { return "container@" + name + ".service" }

const templateMarker = "# written by nixcfs"

// unitTemplate is the text of container@.service for this binary. With one of
// nixos-container's two layouts the steps find each container's conf file themselves
// (LayoutOf), so one template serves both; other directories are passed as flags.
func unitTemplate(nixcfsBin string, l Layout) string {
	flags, envFiles := "", []string{NewLayout().ConfDir, OldLayout().ConfDir}
	if l != NewLayout() && l != OldLayout() {
		flags = fmt.Sprintf(" --conf-dir=%s --state-dir=%s --profile-dir=%s --gcroot-dir=%s",
			l.ConfDir, l.StateDir, l.ProfileDir, l.GCRootDir)
		envFiles = []string{l.ConfDir}
	}
	step := func(verb string) string { return fmt.Sprintf("%s unit %s%s %%i", nixcfsBin, verb, flags) }
	var env strings.Builder
	for _, d := range envFiles {
		fmt.Fprintf(&env, "EnvironmentFile=-%s/%%i.conf\n", d)
	}
	return fmt.Sprintf(`%s: the runtime template for hosts without NixOS's own.
[Unit]
Description=Container '%%i'

[Service]
Type=notify
NotifyAccess=all
KillMode=mixed
KillSignal=TERM
Delegate=yes
DevicePolicy=closed
SyslogIdentifier=container %%i
%sEnvironment=INSTANCE=%%i
TimeoutStartSec=1min
ExecStartPre=%s
ExecStart=%s
ExecReload=%s
ExecStopPost=%s
`, templateMarker, env.String(), step("prestart"), step("start"), step("reload"), step("poststop"))
}

// LayoutOf is the layout in which NAME.conf exists: NixOS 22.05's, else the older one,
// else (a container not made yet) NixOS 22.05's.
func LayoutOf(name string) Layout {
	if _, err := os.Stat(OldLayout().ConfPath(name)); err == nil {
		if _, err := os.Stat(NewLayout().ConfPath(name)); err != nil {
			return OldLayout()
		}
	}
	return NewLayout()
}

// templateBinary is the nixcfs binary a template of ours runs, "" if none.
func templateBinary(text string) string {
	_, rest, ok := strings.Cut(text, "\nExecStart=")
	if fields := strings.Fields(rest); ok && len(fields) > 0 {
		return fields[0]
	}
	return ""
}

// hostTemplate returns the path of a container@.service that is not ours (NixOS's),
// or "" when the host has none.
func hostTemplate(unitDirs []string) string {
	for _, d := range unitDirs {
		p := filepath.Join(d, "container@.service")
		data, err := os.ReadFile(p)
		if err == nil && !strings.HasPrefix(string(data), templateMarker) {
			return p
		}
	}
	return ""
}

// UnitPrestart prepares the root tree and the network, as NixOS's preStartScript does.
func UnitPrestart(l Layout, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	conf, err := ReadConf(l.ConfPath(name))
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
		return setupNetwork(name, nc)
	}
	return nil
}

// systemLinkOf is the container's system: $SYSTEM_PATH when its conf sets one (NixOS
// declarative containers may), else its profile.
func systemLinkOf(l Layout, name string, conf Conf) string {
	if sys := conf.Get("SYSTEM_PATH"); sys != "" {
		return sys
	}
	return l.SystemLink(name)
}

// initPath is the store path of the init nspawn runs: $SYSTEM_PATH/init, by default the
// container's profile. It is resolved on the host because nspawn wants a path that
// exists inside the container, and host-side symlinks outside /nix/store do not.
func initPath(l Layout, name string, conf Conf) (string, error) {
	sys := systemLinkOf(l, name, conf)
	// Resolve the system, not init itself: init finds its system from its own path.
	resolved, err := filepath.EvalSymlinks(sys)
	if err == nil {
		_, err = os.Stat(filepath.Join(resolved, "init"))
	}
	if err != nil {
		return "", fmt.Errorf("%w: %s: no init in %s (has the build succeeded? see its build.log)", ErrNotBuilt, name, sys)
	}
	return filepath.Join(resolved, "init"), nil
}

// NspawnArgs is the systemd-nspawn command line NixOS's startScript uses.
func NspawnArgs(l Layout, name string, conf Conf) ([]string, error) {
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
		args = append(args, "--network-namespace-path="+NetnsPath(name))
	}
	for _, p := range strings.Split(conf.Get("HOST_PORT"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			args = append(args, "--port="+p)
		}
	}
	for _, k := range []string{"PRIVATE_NETWORK", "HOST_BRIDGE", "HOST_ADDRESS", "LOCAL_ADDRESS",
		"HOST_ADDRESS6", "LOCAL_ADDRESS6", "HOST_PORT"} {
		args = append(args, "--setenv="+k+"="+conf.Get(k))
	}
	if extra := conf.Get("EXTRA_NSPAWN_FLAGS"); extra != "" {
		args = append(args, strings.Fields(extra)...)
	}
	return append(args, init), nil
}

// UnitExecNspawn replaces this process with systemd-nspawn, so that the unit's main
// process is nspawn itself and its READY=1 is the unit's.
func UnitExecNspawn(l Layout, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	conf, err := ReadConf(l.ConfPath(name))
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

// UnitPoststop removes what prestart made for the network.
func UnitPoststop(l Layout, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	return teardownNetwork(name)
}

// UnitReload activates the container's current system without a restart: inside, the
// guest init runs `/nix/var/nix/profiles/system/bin/switch-to-configuration test`, as
// NixOS's ExecReload does. mainPID is the unit's main process (nspawn).
func UnitReload(ctx context.Context, name string, mainPID int) (string, error) {
	leader, err := leaderOf(mainPID)
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

// leaderOf finds the container's init: the child of systemd-nspawn.
func leaderOf(nspawnPID int) (int, error) {
	if nspawnPID <= 0 {
		return 0, fmt.Errorf("no main process")
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", nspawnPID, nspawnPID))
	if err != nil {
		return 0, err
	}
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("systemd-nspawn (pid %d) has no child yet", nspawnPID)
}
