// Command nixcfs manages NixOS containers: `nixcfs mount` serves them as a filesystem,
// the other verbs are nixos-container's command line, on the same files.
//
// The command line is a cobra tree (command.go), so that completions and the man page
// come from the same definition as the parsing.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"nixcfs/ops/nsenter"
)

// The constructor of nsenter acts before main when this binary is re-executed to run
// a command inside a container (run, root-login, login).
var _ = nsenter.Exec

func main() {
	os.Exit(run(os.Args[1:]))
}

// run runs the command line args and returns the exit status.
func run(args []string) int {
	root := newRoot()
	if len(args) == 0 {
		rootUsage(root)
		return 1
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		rootUsage(root)
		return 0
	}
	verb := findVerb(root, args[0])
	if verb == nil && args[0] != "--version" && !strings.HasPrefix(args[0], cobra.ShellCompRequestCmd) {
		return fail("unknown action ‘%s’", args[0])
	}
	if verb != nil {
		args = append(args[:1:1], goFlagStyle(verb, args[1:])...)
	}
	root.SetArgs(args)
	err := root.Execute()
	var status exitStatus
	switch {
	case errors.As(err, &status):
		return int(status)
	case err != nil:
		return fail("%v", err)
	}
	return 0
}

// exitStatus ends a verb with this status; its message, if any, is already printed.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// exitWith turns a verb's exit status into what cobra's RunE returns.
func exitWith(status int) error {
	if status == 0 {
		return nil
	}
	return exitStatus(status)
}

func findVerb(root *cobra.Command, name string) *cobra.Command {
	for _, c := range root.Commands() {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

// goFlagStyle rewrites -flag and -flag=value, which nixcfs has always accepted (Go's
// flag package), to the --flag that cobra parses. Only names of the verb's own long
// flags are rewritten, and nothing after "--".
func goFlagStyle(verb *cobra.Command, args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if len(a) > 2 && a[0] == '-' && a[1] != '-' && len(name) > 1 && verb.Flags().Lookup(name) != nil {
			a = "-" + a
		}
		out = append(out, a)
	}
	return out
}
