package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"nixcfs/ops"
)

// generationsCmd lists a container's generations, as nix-env --list-generations does
// for its profile, and deletes them (--delete).
func generationsCmd() *cobra.Command {
	var asJSON bool
	var del []int
	return sessionVerb("generations", "NAME [--json] [--delete N]...", "list a container's generations, or delete some (--delete)", existingName,
		func(fs *pflag.FlagSet) {
			jsonFlag(&asJSON)(fs)
			fs.IntSliceVar(&del, "delete", nil, "delete generation `N` (not the current one); repeat or separate with commas")
		}, func(c *cobra.Command, s *session) int {
			for _, n := range del {
				if err := s.m.DeleteGeneration(s.ctx, s.name, n); err != nil {
					return fail("failed to delete generation %d: %v", n, err)
				}
			}
			gens, err := s.m.Generations(s.name)
			if err != nil {
				return fail("%v", err)
			}
			if asJSON {
				if gens == nil {
					gens = []ops.Generation{}
				}
				return printJSON(gens)
			}
			if len(del) == 0 {
				printGenerations(gens)
			}
			return 0
		})
}

// printGenerations prints one line per generation: its number, when it was built,
// its system, and whether it is current or nixcfs kept the text that built it.
func printGenerations(gens []ops.Generation) {
	for _, g := range gens {
		marks := ""
		if g.HasConfig {
			marks += "  config"
		}
		if g.Current {
			marks += "  (current)"
		}
		fmt.Printf("%4d   %s   %s%s\n", g.Number, g.Built.Local().Format("2006-01-02 15:04:05"), g.System, marks)
	}
}

// rollbackCmd switches a container to its previous generation, or to --to N, live.
func rollbackCmd() *cobra.Command {
	var to int
	var asJSON bool
	return sessionVerb("rollback", "NAME [--to N] [--json]", "switch a container to its previous generation (or N), live, with the text that built it", existingName,
		func(fs *pflag.FlagSet) {
			fs.IntVar(&to, "to", 0, "switch to generation `N` instead of the previous one")
			jsonFlag(&asJSON)(fs)
		}, func(c *cobra.Command, s *session) int {
			n := to
			if n == 0 {
				var err error
				if n, err = previousGeneration(s); err != nil {
					return fail("%v", err)
				}
			}
			if err := s.building(s.name, "switching", func() error { return s.m.SwitchGeneration(s.ctx, s.name, n) }); err != nil {
				return fail("failed to switch %s to generation %d: %v", s.name, n, err)
			}
			st, err := s.m.Status(s.name)
			if err != nil {
				return fail("%v", err)
			}
			if asJSON {
				return printJSON(st)
			}
			fmt.Fprintf(os.Stderr, "%s is at generation %d\n", s.name, st.Generation)
			if st.Notice != "" {
				fmt.Fprintln(os.Stderr, st.Notice)
			}
			return 0
		})
}

// previousGeneration is the newest generation older than the current one.
func previousGeneration(s *session) (int, error) {
	gens, err := s.m.Generations(s.name)
	if err != nil {
		return 0, err
	}
	current := 0
	for _, g := range gens {
		if g.Current {
			current = g.Number
		}
	}
	previous := 0
	for _, g := range gens {
		if g.Number < current && g.Number > previous {
			previous = g.Number
		}
	}
	if previous == 0 {
		return 0, fmt.Errorf("%s has no generation before its current one (%d)", s.name, current)
	}
	return previous, nil
}
