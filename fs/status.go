package fs

import (
	"fmt"
	"strings"
	"time"

	"nixcfs/ops"
)

// statusFile is NAME/status: flat `key value` lines (statusText), among them `error`,
// the readable reason of the last failure.
type statusFile struct{ valueFile }

func newStatusFile(c *containerRef) *statusFile {
	n := &statusFile{valueFile{c: c, name: "status", mode: modeRO}}
	n.value = func() (string, error) {
		st, err := c.b.Status(c.name)
		return statusText(st), err
	}
	return n
}

// statusText is the status file's text: one `key value` line per key, in a stable
// order; an empty value prints "-".
func statusText(s ops.Status) string {
	since := "-"
	if !s.Since.IsZero() {
		since = s.Since.UTC().Format(time.RFC3339)
	}
	autostart := "0"
	if s.Autostart {
		autostart = "1"
	}
	rows := [][2]string{
		{"name", s.Name}, {"state", s.State.String()}, {"unit", s.Unit},
		{"active_state", s.ActiveState}, {"sub_state", s.SubState},
		{"leader", fmt.Sprint(s.Leader)}, {"since", since},
		{"host_address", s.HostAddress}, {"local_address", s.LocalAddress},
		{"interface", s.Interface}, {"system", s.System},
		{"generation", fmt.Sprint(s.Generation)}, {"config", s.Config.String()},
		{"autostart", autostart}, {"error", s.Error}, {"notice", s.Notice},
	}
	rows = append(rows, buildRows(s.BuildProgress)...)
	var b strings.Builder
	for _, r := range rows {
		v := r[1]
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(&b, "%s %s\n", r[0], v)
	}
	return b.String()
}

// buildRows are the running build's progress: derivations built of those to build,
// paths fetched of those to fetch, the derivation being built, when it began; "-"
// when no build runs.
func buildRows(p *ops.BuildProgress) [][2]string {
	if p == nil {
		return [][2]string{{"build_progress", ""}, {"build_fetched", ""}, {"building", ""}, {"build_since", ""}}
	}
	return [][2]string{{"build_progress", p.Derivations()}, {"build_fetched", p.Paths()},
		{"building", p.Building}, {"build_since", p.Since.UTC().Format(time.RFC3339)}}
}
