package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"nixcfs/ops"
)

// cmdUnit runs one step of nixcfs's container@.service template:
// `nixcfs unit prestart|start|reload|poststop [layout flags] NAME`.
func cmdUnit(v verb, args []string) int {
	if len(args) < 1 {
		return fail("unit: expected prestart, start, reload or poststop")
	}
	step := args[0]
	var lf layoutFlags
	fs := v.flagSet()
	lf.register(fs)
	name, exit, ok := oneName(fs, args[1:])
	if !ok {
		return exit
	}
	l, err := lf.resolve()
	if err != nil {
		return fail("%v", err)
	}
	switch step {
	case "prestart":
		err = ops.UnitPrestart(l, name)
	case "start":
		err = ops.UnitExecNspawn(l, name) // returns only on failure
	case "reload":
		pid, _ := strconv.Atoi(os.Getenv("MAINPID"))
		var out string
		out, err = ops.UnitReload(context.Background(), name, pid)
		if out != "" {
			fmt.Println(out)
		}
	case "poststop":
		err = ops.UnitPoststop(l, name)
	default:
		return fail("unit: unknown step %q", step)
	}
	if err != nil {
		return fail("%s %s: %v", step, name, err)
	}
	return 0
}
