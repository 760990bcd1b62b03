package main

import (
	"fmt"
	"strings"

	"nixcfs/ops"
)

// cmdLimits shows a container's resource limits, after setting those given as
// KEY=VALUE (cgroup v2's files and syntax: memory.max=512M, "cpu.max=50000 100000").
// The values are all set or, if one is bad, none.
func cmdLimits(v verb, args []string) int {
	var asJSON bool
	s, exit, ok := open(v, args, nameAndArgs, jsonFlag(&asJSON))
	if !ok {
		return exit
	}
	defer s.close()
	values := map[string]string{}
	for _, a := range s.pos {
		k, val, ok := strings.Cut(a, "=")
		if !ok {
			return fail("limits: %q is not KEY=VALUE (keys: %s)", a, strings.Join(ops.LimitKeys, ", "))
		}
		values[k] = val
	}
	if len(values) > 0 {
		if err := s.m.SetLimits(s.ctx, s.name, values); err != nil {
			return fail("%v", err)
		}
	}
	l, err := s.m.Limits(s.ctx, s.name)
	if err != nil {
		return fail("%v", err)
	}
	if asJSON {
		return printJSON(l)
	}
	for _, k := range ops.LimitKeys {
		fmt.Printf("%s %s\n", k, l.Text(k))
	}
	return 0
}

// cmdStats prints a container's usage as `key value` lines, as its stats file.
func cmdStats(v verb, args []string) int {
	var asJSON bool
	s, exit, ok := open(v, args, existingName, jsonFlag(&asJSON))
	if !ok {
		return exit
	}
	defer s.close()
	st, err := s.m.Stats(s.ctx, s.name)
	if err != nil {
		return fail("%v", err)
	}
	if asJSON {
		return printJSON(st)
	}
	for _, f := range st.Fields() {
		fmt.Printf("%s %d\n", f.Key, f.Value)
	}
	return 0
}
