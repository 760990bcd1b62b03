package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"nixcfs/ops"
)

// portsFlags are the ports verb's: --json to show, --set to replace.
type portsFlags struct {
	asJSON bool
	set    *string // nil: not given; "" clears
}

func (pf *portsFlags) register(fs *pflag.FlagSet) {
	jsonFlag(&pf.asJSON)(fs)
	fs.Func("set", "replace the forwards: `FORWARDS` as --port and HOST_PORT take them, [tcp:|udp:]HOSTPORT[:GUESTPORT] separated by commas; '' clears them (the container must be stopped; they take effect at its next start)", func(v string) error {
		pf.set = &v
		return nil
	})
}

// portsCmd shows a container's port forwards (HOST_PORT), one per line, or replaces
// them.
func portsCmd() *cobra.Command {
	var pf portsFlags
	return sessionVerb("ports", "NAME [--json] [--set FORWARDS]", "print a container's port forwards, one per line, or replace them (--set)",
		existingName, pf.register, func(c *cobra.Command, s *session) int { return showPorts(s, &pf) })
}

func showPorts(s *session, pf *portsFlags) int {
	if pf.set != nil {
		if err := s.m.SetPorts(s.ctx, s.name, ops.SplitHostPort(*pf.set)); err != nil {
			return fail("failed to set port forwards: %v", err)
		}
	}
	specs, err := s.m.Ports(s.name)
	if err != nil {
		return fail("%v", err)
	}
	if !pf.asJSON {
		if pf.set == nil {
			for _, spec := range specs {
				fmt.Println(spec)
			}
		}
		return 0
	}
	// HOST_PORT written by hand may hold what no tool takes: shown as written, with why.
	type forward struct {
		ops.PortForward
		Error string `json:"error,omitempty"`
	}
	out := []forward{}
	for _, spec := range specs {
		p, err := ops.ParsePortForward(spec)
		if err != nil {
			out = append(out, forward{PortForward: ops.PortForward{Spec: spec}, Error: err.Error()})
			continue
		}
		out = append(out, forward{PortForward: p})
	}
	return printJSON(out)
}
