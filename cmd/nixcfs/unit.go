package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"nixcfs/ops"
	"nixcfs/ops/unitstep"
)

func unitCmd() *cobra.Command {
	var lf layoutFlags
	c := newVerb("unit", "prestart|start|reload|poststop NAME", "steps of nixcfs's container@.service template", func(c *cobra.Command, args []string) int {
		return cmdUnit(&lf, args)
	})
	c.Hidden = true
	lf.register(c.Flags())
	return c
}

// cmdUnit runs one step of nixcfs's container@.service template:
// `nixcfs unit prestart|start|reload|poststop [layout flags] NAME`.
func cmdUnit(lf *layoutFlags, args []string) int {
	if len(args) < 1 {
		return fail("unit: expected prestart, start, reload or poststop")
	}
	step := args[0]
	name, exit, ok := oneName("unit", args[1:])
	if !ok {
		return exit
	}
	// The template passes no directories for nixos-container's own layouts: find the
	// one that holds this container.
	l := ops.LayoutOf(name)
	if lf.confDir != "" || lf.layout != "auto" {
		var err error
		if l, err = lf.resolve(); err != nil {
			return fail("%v", err)
		}
	}
	var err error
	switch step {
	case "prestart":
		err = unitstep.Prestart(l, name)
	case "start":
		err = unitstep.ExecNspawn(l, name) // returns only on failure
	case "reload":
		pid, _ := strconv.Atoi(os.Getenv("MAINPID"))
		var out string
		out, err = unitstep.Reload(context.Background(), name, pid)
		if out != "" {
			fmt.Println(out)
		}
	case "poststop":
		err = unitstep.Poststop(name)
	default:
		return fail("unit: unknown step %q", step)
	}
	if err != nil {
		// The steps name themselves in most of their errors ("prestart foo: ...").
		if prefix := step + " " + name + ": "; !strings.HasPrefix(err.Error(), prefix) {
			return fail("%s%v", prefix, err)
		}
		return fail("%v", err)
	}
	return 0
}
