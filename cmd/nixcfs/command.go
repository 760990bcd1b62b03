package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

const rootLong = `nixcfs manages NixOS containers on the files nixos-container uses. "nixcfs mount"
serves them as a filesystem; the other verbs are nixos-container's command line and
need no daemon or mount.
`

// newRoot is nixcfs's whole command line: the verbs in the order help lists them.
func newRoot() *cobra.Command {
	// Help, completions and the man page list the verbs in the order they are added.
	cobra.EnableCommandSorting = false
	root := &cobra.Command{
		Use:   "nixcfs",
		Short: "manage NixOS containers, as a filesystem or with nixos-container's verbs",
		Long:  rootLong,
		Args:  cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				rootUsage(c)
				return exitStatus(1)
			}
			return exitWith(fail("unknown action ‘%s’", args[0]))
		},
		Version:           versionString(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.Flags().Bool("version", false, "print the version, the commit and the Go version")
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(os.Stdout)
	root.AddCommand(verbs()...)
	root.SetHelpFunc(func(c *cobra.Command, _ []string) {
		if c == c.Root() {
			rootUsage(c)
			return
		}
		verbHelp(c)
	})
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		fmt.Fprintf(os.Stderr, "nixcfs: %v\n", err)
		verbHelp(c)
		return exitStatus(1)
	})
	// "nixcfs help" is answered before cobra runs; this keeps cobra's own out of the
	// completions and the man page.
	root.SetHelpCommand(&cobra.Command{Use: "help", Hidden: true, Run: func(c *cobra.Command, _ []string) { rootUsage(c.Root()) }})
	return root
}

// verbs are the verbs, in the order help lists them.
func verbs() []*cobra.Command {
	return []*cobra.Command{
		mountCmd(),
		listCmd(),
		createCmd(),
		destroyCmd(),
		unitVerbCmd("start", "start a container; returns once it is up"),
		unitVerbCmd("stop", "stop a container; returns once it is down"),
		unitVerbCmd("terminate", "kill every process of a container at once"),
		unitVerbCmd("restart", "stop and start a container"),
		statusCmd(),
		updateCmd(),
		generationsCmd(),
		rollbackCmd(),
		showIPCmd(),
		portsCmd(),
		limitsCmd(),
		statsCmd(),
		showHostKeyCmd(),
		loginCmd("login", "log in to the container (its login prompt)"),
		loginCmd("root-login", "a root shell inside the container on this terminal"),
		runCmd(),
		completionCmd(),
		unitCmd(),
		genDocsCmd(),
	}
}

// newVerb is one verb: usage is what follows the verb in its usage line, summary its
// line in `nixcfs --help`. run returns the exit status.
func newVerb(name, usage, summary string, run func(c *cobra.Command, args []string) int) *cobra.Command {
	c := &cobra.Command{
		Use:                   name + " " + usage,
		Short:                 summary,
		Args:                  cobra.ArbitraryArgs,
		DisableFlagsInUseLine: true,
		RunE:                  func(c *cobra.Command, args []string) error { return exitWith(run(c, args)) },
		ValidArgsFunction:     cobra.NoFileCompletions,
	}
	c.Flags().BoolP("help", "h", false, "show this help")
	return c
}

// rootUsage is `nixcfs --help`, on stderr as it has always been.
func rootUsage(root *cobra.Command) {
	w := os.Stderr
	fmt.Fprintf(w, "Usage: nixcfs VERB [flags] [NAME]\n\n%s\nVerbs:\n", root.Long)
	for _, c := range root.Commands() {
		if !c.Hidden {
			fmt.Fprintf(w, "  %-14s %s\n", c.Name(), c.Short)
		}
	}
	fmt.Fprintf(w, "\n\"nixcfs VERB --help\" tells more; \"nixcfs --version\" prints the version.\n")
}

// verbHelp is `nixcfs VERB --help`: the usage line, the summary or the long text, the
// flags.
func verbHelp(c *cobra.Command) {
	w := os.Stderr
	fmt.Fprintf(w, "Usage: nixcfs %s\n\n", c.Use)
	if c.Long != "" {
		fmt.Fprint(w, c.Long)
	} else {
		fmt.Fprintf(w, "%s.\n", c.Short)
	}
	fmt.Fprintf(w, "\nFlags:\n%s", c.LocalFlags().FlagUsages())
}
