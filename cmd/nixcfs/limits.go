package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"nixcfs/ops"
)

// limitsCmd shows a container's resource limits, after setting those given as
// KEY=VALUE (cgroup v2's files and syntax: memory.max=512M, "cpu.max=50000 100000").
// The values are all set or, if one is bad, none.
func limitsCmd() *cobra.Command {
	var asJSON bool
	return sessionVerb("limits", "NAME [KEY=VALUE ...] [--json]", "print a container's resource limits, or set some (memory.max, cpu.max, pids.max, cpu.weight, io.weight)",
		nameAndArgs, jsonFlag(&asJSON), func(c *cobra.Command, s *session) int { return limits(s, asJSON) })
}

func limits(s *session, asJSON bool) int {
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

// statsCmd prints a container's usage as `key value` lines, as its stats file.
func statsCmd() *cobra.Command {
	var asJSON bool
	return sessionVerb("stats", "NAME [--json]", "print a container's usage: memory, CPU, tasks, I/O, network, uptime",
		existingName, jsonFlag(&asJSON), func(c *cobra.Command, s *session) int { return stats(s, asJSON) })
}

func stats(s *session, asJSON bool) int {
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
