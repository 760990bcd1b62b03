// Command nixcfs manages NixOS containers: `nixcfs mount` serves them as a filesystem,
// the other verbs are nixos-container's command line, on the same files.
package main

import (
	"flag"
	"fmt"
	"os"

	"nixcfs/ops/nsenter"
)

// The constructor of nsenter acts before main when this binary is re-executed to run
// a command inside a container (run, root-login, login).
var _ = nsenter.Exec

type verb struct {
	name    string
	args    string
	summary string
	run     func(v verb, args []string) int
	hidden  bool
}

func verbs() []verb {
	return []verb{
		{name: "mount", args: "[flags] [MOUNTPOINT]", summary: "serve the containers as a filesystem (default /mnt/nixc)", run: cmdMount},
		{name: "list", args: "[--json]", summary: "list the containers", run: cmdList},
		{name: "create", args: "NAME [flags]", summary: "create a container and build its system; prints its addresses on stderr", run: cmdCreate},
		{name: "destroy", args: "NAME", summary: "stop a container if it runs, and remove it with its files", run: cmdDestroy},
		{name: "start", args: "NAME", summary: "start a container; returns once it is up", run: unitVerb},
		{name: "stop", args: "NAME", summary: "stop a container; returns once it is down", run: unitVerb},
		{name: "terminate", args: "NAME", summary: "kill every process of a container at once", run: unitVerb},
		{name: "restart", args: "NAME", summary: "stop and start a container", run: unitVerb},
		{name: "status", args: "NAME [--json]", summary: "print up, down, or gone", run: cmdStatus},
		{name: "update", args: "NAME [--config TEXT | --config-file FILE] [--nixos-path P]", summary: "rebuild a container's system and switch a running container to it", run: cmdUpdate},
		{name: "show-ip", args: "NAME", summary: "print the container's IPv4 address", run: cmdShowIP},
		{name: "ports", args: "NAME [--json] [--set FORWARDS]", summary: "print a container's port forwards, one per line, or replace them (--set)", run: cmdPorts},
		{name: "show-host-key", args: "NAME", summary: "print the container's SSH host key", run: cmdShowHostKey},
		{name: "login", args: "NAME", summary: "log in to the container (its login prompt)", run: cmdLogin},
		{name: "root-login", args: "NAME", summary: "a root shell inside the container on this terminal", run: cmdLogin},
		{name: "run", args: "NAME -- COMMAND...", summary: "run a command inside the container as root; its exit status is returned", run: cmdRun},
		{name: "limits", args: "NAME [KEY=VALUE ...] [--json]", summary: "show a container's resource limits, after setting those given as KEY=VALUE", run: cmdLimits},
		{name: "stats", args: "NAME [--json]", summary: "print a container's usage: memory, CPU time, tasks, I/O, network bytes, uptime", run: cmdStats},
		{name: "unit", args: "prestart|start|reload|poststop NAME", summary: "steps of nixcfs's container@.service template", run: cmdUnit, hidden: true},
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, `Usage: nixcfs VERB [flags] [NAME]

nixcfs manages NixOS containers on the files nixos-container uses. "nixcfs mount"
serves them as a filesystem; the other verbs are nixos-container's command line and
need no daemon or mount.

Verbs:
`)
	for _, v := range verbs() {
		if !v.hidden {
			fmt.Fprintf(os.Stderr, "  %-14s %s\n", v.name, v.summary)
		}
	}
	fmt.Fprintf(os.Stderr, "\n\"nixcfs VERB --help\" tells more.\n")
}

// flagSet is a verb's flags, with a --help that shows the verb's usage.
func (v verb) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(v.name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: nixcfs %s %s\n\n%s.\n\nFlags:\n", v.name, v.args, v.summary)
		fs.PrintDefaults()
	}
	return fs
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(1)
	}
	switch os.Args[1] {
	case "-h", "-help", "--help", "help":
		usage()
		os.Exit(0)
	}
	for _, v := range verbs() {
		if v.name == os.Args[1] {
			os.Exit(v.run(v, os.Args[2:]))
		}
	}
	fmt.Fprintf(os.Stderr, "nixcfs: unknown action ‘%s’\n", os.Args[1])
	os.Exit(1)
}
