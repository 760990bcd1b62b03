package ops

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Port forwards are kept where nixos-container keeps them: HOST_PORT in the conf file,
// a comma-separated list of systemd-nspawn --port values, each
// [tcp:|udp:]HOSTPORT[:GUESTPORT], as given to `nixos-container create --port` (NixOS's
// declarative containers write the full protocol:host:guest form). NixOS's template
// passes each to nspawn as --port=; nixcfs's own makes the forwarding itself (package
// unitstep). Forwards take effect at the next start.

// PortForward is one forward: traffic to HostPort on an address of the host goes to
// GuestPort on the container's address.
type PortForward struct {
	Spec      string `json:"spec"`     // as written in HOST_PORT
	Protocol  string `json:"protocol"` // "tcp" or "udp"
	HostPort  uint16 `json:"host_port"`
	GuestPort uint16 `json:"guest_port"`
}

// ParsePortForward reads one forward as systemd-nspawn's --port takes it: an optional
// protocol ("tcp", the default, or "udp"), the host port, and optionally the guest's
// (by default the same), each in 1..65535.
func ParsePortForward(spec string) (PortForward, error) {
	p := PortForward{Spec: spec, Protocol: "tcp"}
	rest := spec
	for _, proto := range []string{"tcp", "udp"} {
		if r, ok := strings.CutPrefix(spec, proto+":"); ok {
			p.Protocol, rest = proto, r
		}
	}
	hostPort, guestPort, hasGuest := strings.Cut(rest, ":")
	var err error
	if p.HostPort, err = parsePort(hostPort); err == nil {
		p.GuestPort = p.HostPort
		if hasGuest {
			p.GuestPort, err = parsePort(guestPort)
		}
	}
	if err != nil {
		return PortForward{}, fmt.Errorf("%w: port forward %q (want [tcp:|udp:]HOSTPORT[:GUESTPORT], ports 1-65535)", ErrInvalid, spec)
	}
	return p, nil
}

// parsePort reads a decimal port number in 1..65535: digits only, no sign or blanks.
func parsePort(s string) (uint16, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, ErrInvalid
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, ErrInvalid
	}
	return uint16(n), nil
}

// SplitHostPort is the forwards of a HOST_PORT value, as written, blanks around each
// trimmed and empty ones dropped (as NixOS's template splits it on commas).
func SplitHostPort(value string) []string {
	var specs []string
	for _, s := range strings.Split(value, ",") {
		if s = strings.TrimSpace(s); s != "" {
			specs = append(specs, s)
		}
	}
	return specs
}

// ParseHostPort parses every forward of a HOST_PORT value and checks that no host port
// is forwarded twice for one protocol (nspawn refuses that too).
func ParseHostPort(value string) ([]PortForward, error) {
	return ParsePortForwards(SplitHostPort(value))
}

// ParsePortForwards parses forwards and checks that no host port is forwarded twice for
// one protocol.
func ParsePortForwards(specs []string) ([]PortForward, error) {
	var out []PortForward
	seen := map[portKey]string{}
	for _, s := range specs {
		p, err := ParsePortForward(s)
		if err != nil {
			return nil, err
		}
		if first, dup := seen[p.key()]; dup {
			return nil, fmt.Errorf("%w: %s port %d is forwarded twice (%q, %q)", ErrInvalid, p.Protocol, p.HostPort, first, s)
		}
		seen[p.key()] = s
		out = append(out, p)
	}
	return out, nil
}

// portKey is what two forwards must not share: a host port of one protocol.
type portKey struct {
	protocol string
	port     uint16
}

func (p PortForward) key() portKey { return portKey{p.Protocol, p.HostPort} }

// usedPorts maps every host port forwarded by a conf file to its container. Forwards
// that do not parse are nobody's: nspawn would refuse them anyway.
func usedPorts(confDir string) (map[portKey]string, error) {
	used := map[portKey]string{}
	names, err := listConfNames(confDir)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		conf, err := ReadConf(filepath.Join(confDir, n+".conf"))
		if err != nil {
			continue // removed meanwhile
		}
		for _, s := range SplitHostPort(conf.Get("HOST_PORT")) {
			if p, err := ParsePortForward(s); err == nil {
				used[p.key()] = n
			}
		}
	}
	return used, nil
}

// checkPortsFree fails when another container than self forwards one of the host
// ports. The caller holds the address lock, so the answer stays true until it writes.
func checkPortsFree(confDir, self string, forwards []PortForward) error {
	if len(forwards) == 0 {
		return nil
	}
	used, err := usedPorts(confDir)
	if err != nil {
		return err
	}
	for _, p := range forwards {
		if owner := used[p.key()]; owner != "" && owner != self {
			return fmt.Errorf("%w: %s port %d is forwarded to %s", ErrAddressInUse, p.Protocol, p.HostPort, owner)
		}
	}
	return nil
}

// Ports is the container's forwards (HOST_PORT), as written.
func (m *Manager) Ports(name string) ([]string, error) {
	conf, err := m.Conf(name)
	if err != nil {
		return nil, err
	}
	return SplitHostPort(conf.Get("HOST_PORT")), nil
}

// SetPorts replaces the forwards of a stopped container; they take effect at its next
// start. Every forward is checked before anything is written; none clears them.
func (m *Manager) SetPorts(ctx context.Context, name string, specs []string) error {
	return m.noted(name, m.setPorts(ctx, name, specs))
}

// CheckPorts tells whether SetPorts would take these forwards now, and writes nothing:
// for a writer that hands them over in pieces.
func (m *Manager) CheckPorts(name string, specs []string) error {
	_, err := m.checkPorts(name, specs)
	return m.noted(name, err)
}

func (m *Manager) setPorts(ctx context.Context, name string, specs []string) error {
	lock, err := lockAddresses(ctx, m.l.LockFile)
	if err != nil {
		return err
	}
	defer lock.unlock()
	forwards, err := m.checkPorts(name, specs)
	if err != nil {
		return err
	}
	value := make([]string, len(forwards))
	for i, p := range forwards {
		value[i] = p.Spec
	}
	return m.editConf(name, func(conf *Conf) { conf.Set("HOST_PORT", strings.Join(value, ",")) })
}

// checkPorts parses the forwards and checks that the container may take them: a
// container of its own, stopped, and no host port another container forwards.
func (m *Manager) checkPorts(name string, specs []string) ([]PortForward, error) {
	if _, err := m.reg.lookupForChange(name); err != nil {
		return nil, err
	}
	forwards, err := ParsePortForwards(specs)
	if err != nil {
		return nil, err
	}
	if st, _ := m.State(name); st.Busy() {
		return nil, fmt.Errorf("%w: %s is %s; stop it to change its port forwards", ErrBusy, name, st)
	}
	return forwards, checkPortsFree(m.l.ConfDir, name, forwards)
}
