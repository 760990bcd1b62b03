// Command init is the nixcfs guest system's only program. One static binary
// plays three roles, chosen by how it is called:
//
//   - `init build-toplevel` is the builder of the system's toplevel derivation
//     (guest/modules.nix): it lays out $out with init, nixcfs-init,
//     bin/switch-to-configuration, config.json, nixos-version, system and sw/bin
//     (busybox and its applets, bash). See toplevel.go.
//   - `…/bin/switch-to-configuration test|switch|boot|dry-activate` (a symlink to
//     this binary inside a system) asks the running init to activate that system.
//     See switch.go.
//   - Anything else is PID 1 of a container, as `SYSTEM/nixcfs-init`, which
//     the system's `init` script execs (systemd-nspawn runs that script, or
//     NixOS's container init script sources it): it applies the system's
//     config.json (hostname, /bin/sh, /etc/passwd, /etc/group, /etc/shadow,
//     /etc/profile, authorized keys, the hello service; see etc.go and
//     users.go), reports READY=1,
//     reaps zombies, serves the control socket and exits 0 on SIGRTMIN+3,
//     SIGRTMIN+4, SIGTERM, SIGINT, SIGUSR1 or SIGUSR2 (busybox's reboot, halt,
//     poweroff). See pid1.go.
//
// # Control socket protocol
//
// init listens on the unix stream socket /run/nixcfs/init.sock (from the host:
// /proc/LEADER/root/run/nixcfs/init.sock). A client connects, writes one
// request line and reads the answer until init closes the connection:
//
//	request  = COMMAND [" " ARGUMENT] "\n"
//	answer   = ("ok" | "error: " MESSAGE) "\n" *(LINE "\n")
//
// The first answer line says whether the command succeeded; MESSAGE is a
// single line. Commands:
//
//	activate STOREPATH   Load STOREPATH/config.json and apply it live: hostname,
//	                     /bin/sh and /etc (accounts, profile, hostname),
//	                     authorized keys, the hello service (restarted on a new
//	                     port, new message served at once), then point
//	                     /run/current-system at STOREPATH. Answers "ok", or
//	                     "error: ..." (a config that cannot be loaded changes
//	                     nothing; a step that fails leaves the others applied).
//	reload               Run ${SYSTEM_PATH:-/nix/var/nix/profiles/system}/bin/switch-to-configuration test
//	                     as a child. Answers "ok" if it exited 0, else
//	                     "error: switch-to-configuration test: exit status N";
//	                     the following lines are its output (stdout and stderr).
//	status               Answers "ok" and then "key value" lines:
//	                     system STOREPATH, pid PID, hostname NAME,
//	                     hello ADDRESS (or "hello off").
//
// Unknown commands answer "error: unknown command ...".
package main

import (
	"os"
	"path/filepath"

	"nixcfs/guest/control"
)

// Fixed locations inside the container.
const (
	controlSocket  = control.Socket
	defaultProfile = "/nix/var/nix/profiles/system"
)

func main() {
	os.Exit(run(os.Args))
}

func run(args []string) int {
	switch {
	case filepath.Base(args[0]) == "switch-to-configuration":
		return runSwitch(args[0], args[1:], controlSocket, os.Stdout, os.Stderr)
	case len(args) > 1 && args[1] == "build-toplevel":
		return runBuildToplevel(os.Getenv, os.Stderr)
	default:
		return runInit(args[0])
	}
}
