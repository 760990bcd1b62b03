package ops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The runtime template nixcfs installs where the host has no container@.service (any
// host but NixOS). Its steps are hidden `nixcfs unit` subcommands (package unitstep)
// that do what NixOS's template does in shell: prepare the root tree, make the network,
// exec systemd-nspawn with NixOS's flags, reload by switch-to-configuration inside,
// clean up after stop.

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

// installTemplate writes nixcfs's container@.service into unitDir unless the host has
// its own (NixOS), and reloads systemd when the text changed.
// Unless replace, a template of ours that works (its binary exists) is kept: a CLI
// run from another build must not repoint the daemon's containers at itself.
func (s *supervisor) installTemplate(ctx context.Context, unitDir string, searchDirs []string, nixcfsBin string, l Layout, replace bool) (string, error) {
	if p := hostTemplate(searchDirs); p != "" {
		return p, nil
	}
	path := filepath.Join(unitDir, "container@.service")
	text := unitTemplate(nixcfsBin, l)
	if old, err := os.ReadFile(path); err == nil {
		if string(old) == text {
			return path, nil
		}
		// Kept: the same template but for another nixcfs binary that still exists.
		bin := templateBinary(string(old))
		if _, err := os.Stat(bin); err == nil && !replace && string(old) == unitTemplate(bin, l) {
			return path, nil
		}
	}
	if err := os.MkdirAll(unitDir, 0o755); err != nil {
		return "", fmt.Errorf("install unit template: %w", err)
	}
	if err := writeFileAtomic(path, []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("install unit template: %w", err)
	}
	if err := s.conn.ReloadContext(ctx); err != nil {
		return "", fmt.Errorf("systemd daemon-reload: %w", err)
	}
	return path, nil
}
