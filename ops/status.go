package ops

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Status is a container as the `status` file and `nixcfs status --json` show it.
type Status struct {
	Name         string    `json:"name"`
	State        string    `json:"state"`
	Unit         string    `json:"unit"`
	ActiveState  string    `json:"active_state"`
	SubState     string    `json:"sub_state"`
	Leader       int       `json:"leader"`
	Since        time.Time `json:"since"`
	HostAddress  string    `json:"host_address"`
	LocalAddress string    `json:"local_address"`
	HostBridge   string    `json:"host_bridge,omitempty"`
	HostPort     string    `json:"host_port,omitempty"`
	Interface    string    `json:"interface"`
	System       string    `json:"system"`
	Generation   int       `json:"generation"`
	Config       string    `json:"config"`
	Autostart    bool      `json:"autostart"`
	Declarative  bool      `json:"declarative"`
	Error        string    `json:"error"`
}

// Text is the flat `key value` form, keys in SPEC.md's order; empty values print "-".
func (s Status) Text() string {
	since := "-"
	if !s.Since.IsZero() {
		since = s.Since.UTC().Format(time.RFC3339)
	}
	rows := [][2]string{
		{"name", s.Name}, {"state", s.State}, {"unit", s.Unit},
		{"active_state", s.ActiveState}, {"sub_state", s.SubState},
		{"leader", fmt.Sprint(s.Leader)}, {"since", since},
		{"host_address", s.HostAddress}, {"local_address", s.LocalAddress},
		{"interface", s.Interface}, {"system", s.System},
		{"generation", fmt.Sprint(s.Generation)}, {"config", s.Config},
		{"autostart", boolDigit(s.Autostart)}, {"error", s.Error},
	}
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

// JSON is the --json form.
func (s Status) JSON() ([]byte, error) { return json.MarshalIndent(s, "", "  ") }
