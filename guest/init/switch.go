package main

import (
	"fmt"
	"io"
	"time"
)

// activateTimeout bounds the wait for init's answer to activate.
const activateTimeout = 2 * time.Minute

// runSwitch is `SYSTEM/bin/switch-to-configuration ACTION`: it asks the
// container's init, through the control socket, to activate SYSTEM.
// boot has nothing to do (a container starts its profile's current system,
// which nix-env already set); dry-activate only says what would be applied.
func runSwitch(argv0 string, args []string, socket string, stdout, stderr io.Writer) int {
	const usage = "usage: switch-to-configuration [switch|boot|test|dry-activate]\n"
	if len(args) != 1 {
		fmt.Fprint(stderr, usage)
		return 1
	}
	action := args[0]
	switch action {
	case "switch", "boot", "test", "dry-activate":
	default:
		fmt.Fprint(stderr, usage)
		return 1
	}

	system, err := systemPathOf(argv0, 2)
	if err != nil {
		fmt.Fprintf(stderr, "switch-to-configuration: find the system: %v\n", err)
		return 1
	}
	cfg, err := loadConfig(system)
	if err != nil {
		fmt.Fprintf(stderr, "switch-to-configuration: %v\n", err)
		return 1
	}

	switch action {
	case "boot":
		return 0
	case "dry-activate":
		hello := "off"
		if h := cfg.Services.Hello; h.Enable {
			hello = fmt.Sprintf("port %d, message %q", h.Port, h.Message)
		}
		fmt.Fprintf(stdout, "would activate %s\nhostname %s\nhello %s\nusers %v\n",
			system, cfg.Networking.HostName, hello, cfg.userNames())
		return 0
	}

	fmt.Fprintf(stderr, "activating the configuration %s...\n", system)
	answer, err := request(socket, "activate "+system, activateTimeout)
	if err != nil {
		if answer == "" {
			answer = fmt.Sprintf("error: cannot reach init at %s: %v\n", socket, err)
		}
		fmt.Fprint(stderr, answer)
		return 1
	}
	fmt.Fprint(stdout, answer)
	return 0
}
