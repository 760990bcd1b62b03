// Command nixcfs manages NixOS containers: `nixcfs mount` serves them as a filesystem,
// the other verbs are nixos-container's command line.
package main

import (
	"fmt"
	"os"
)

type verb struct {
	name    string
	summary string
	run     func(args []string) int
	hidden  bool
}

func verbs() []verb {
	return []verb{
		{name: "list", summary: "list containers", run: cmdList},
		{name: "create", summary: "create a container and build its system", run: cmdCreate},
		{name: "destroy", summary: "remove a container and its files", run: cmdDestroy},
		{name: "start", summary: "start a container (returns once it is up)", run: cmdStart},
		{name: "stop", summary: "stop a container", run: cmdStop},
		{name: "status", summary: "print up, down or gone", run: cmdStatus},
		{name: "update", summary: "rebuild a container's system, switch it if running", run: cmdUpdate},
		{name: "unit", summary: "steps of the container@.service template", run: cmdUnit, hidden: true},
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, "Usage: nixcfs VERB [flags] [NAME]\n\nVerbs:\n")
	for _, v := range verbs() {
		if !v.hidden {
			fmt.Fprintf(os.Stderr, "  %-12s %s\n", v.name, v.summary)
		}
	}
	fmt.Fprintf(os.Stderr, "\nnixcfs VERB --help tells more.\n")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(1)
	}
	switch os.Args[1] {
	case "-h", "--help", "help":
		usage()
		os.Exit(0)
	}
	for _, v := range verbs() {
		if v.name == os.Args[1] {
			os.Exit(v.run(os.Args[2:]))
		}
	}
	fmt.Fprintf(os.Stderr, "nixcfs: unknown action ‘%s’\n", os.Args[1])
	os.Exit(1)
}
