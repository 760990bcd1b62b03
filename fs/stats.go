package fs

import (
	"context"
	"fmt"
	"strings"

	"nixcfs/ops"
)

// statsFile is NAME/stats: the container's usage now, as flat `key value` lines
// (statsText): memory, CPU time, tasks and I/O of its unit's cgroup, the bytes its
// network interface received and sent, and its uptime; all zero while it is down. Each
// open keeps the numbers of that moment, with their true size.
type statsFile struct{ valueFile }

func newStatsFile(c *containerRef) *statsFile {
	n := &statsFile{valueFile{c: c, name: "stats", mode: modeRO}}
	n.value = func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), systemdTimeout)
		defer cancel()
		s, err := c.b.Stats(ctx, c.name)
		return statsText(s), err
	}
	return n
}

// statsText is one `key value` line per stat, in ops.Stats.Fields' order.
func statsText(s ops.Stats) string {
	var b strings.Builder
	for _, f := range s.Fields() {
		fmt.Fprintf(&b, "%s %d\n", f.Key, f.Value)
	}
	return b.String()
}
