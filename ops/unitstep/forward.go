package unitstep

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"nixcfs/ops"
)

// Port forwards (HOST_PORT). NixOS's template passes each to systemd-nspawn as --port=,
// and nspawn installs DNAT rules; but nspawn takes --port only with a private network
// it makes itself, not with the namespace prestart made (--network-namespace-path:
// "Cannot use --port= without private networking"). So prestart makes what nspawn
// would, with nftables over netlink: in a table of the container's own, traffic to any
// address of the host on HOSTPORT goes to LOCAL_ADDRESS:GUESTPORT, whether it comes from
// other machines (prerouting) or from the host itself (output; not to 127.0.0.0/8,
// whose packets may not leave the host). Replies come back through the host, the
// container's default route, where conntrack undoes the translation. Poststop deletes
// the table; prestart first deletes one a crash left behind.

// ipv4Forwarding is whether the kernel forwards IPv4 packets between interfaces.
const ipv4Forwarding = "/proc/sys/net/ipv4/ip_forward"

// forwardTable is the container's own table: deleting it deletes all its forwards.
func forwardTable(name string) *nftables.Table {
	return &nftables.Table{Name: "nixcfs-" + name, Family: nftables.TableFamilyIPv4}
}

// setupForwards makes the container's forwards, replacing any it had, in one
// transaction.
func setupForwards(name string, conf ops.Conf) error {
	forwards, err := ops.ParseHostPort(conf.Get("HOST_PORT"))
	if err != nil {
		return fmt.Errorf("forwards %s: HOST_PORT: %w", name, err)
	}
	if len(forwards) == 0 {
		return removeForwards(name)
	}
	target, err := forwardTarget(conf)
	if err != nil {
		return fmt.Errorf("forwards %s: %w", name, err)
	}
	// Other machines' packets are forwarded to the container, and its replies back.
	if err := enableIPv4Forwarding(); err != nil {
		return fmt.Errorf("forwards %s: %w", name, err)
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("forwards %s: nftables: %w", name, err)
	}
	old, err := ownTable(c, name)
	if err != nil {
		return fmt.Errorf("forwards %s: list nftables tables: %w", name, err)
	}
	if old != nil {
		c.DelTable(old)
	}
	t := c.AddTable(forwardTable(name))
	for _, hook := range []struct {
		name   string
		hook   *nftables.ChainHook
		output bool
	}{{"prerouting", nftables.ChainHookPrerouting, false}, {"output", nftables.ChainHookOutput, true}} {
		ch := c.AddChain(&nftables.Chain{Name: hook.name, Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: hook.hook, Priority: nftables.ChainPriorityNATDest})
		for _, p := range forwards {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: dnat(p, target, hook.output)})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("forwards %s: install nftables table %s: %w", name, t.Name, err)
	}
	return nil
}

// forwardTarget is the container's address, which the forwards lead to. nspawn finds it
// inside the container; here it is LOCAL_ADDRESS, which prestart gave eth0.
func forwardTarget(conf ops.Conf) (net.IP, error) {
	if conf.Get("PRIVATE_NETWORK") != "1" {
		return nil, fmt.Errorf("%w: HOST_PORT needs PRIVATE_NETWORK=1 (as systemd-nspawn's --port)", ops.ErrInvalid)
	}
	local := ops.BareAddress(conf.Get("LOCAL_ADDRESS"))
	ip := net.ParseIP(local).To4()
	if ip == nil {
		return nil, fmt.Errorf("%w: HOST_PORT needs an IPv4 LOCAL_ADDRESS to forward to, not %q", ops.ErrInvalid, local)
	}
	return ip, nil
}

// dnat is the rule of one forward: `[ip daddr != 127.0.0.0/8] fib daddr type local
// meta l4proto PROTO th dport HOSTPORT dnat to TARGET:GUESTPORT`.
func dnat(p ops.PortForward, target net.IP, output bool) []expr.Any {
	var rule []expr.Any
	if output {
		rule = append(rule,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 0, 0, 0}, Xor: []byte{0, 0, 0, 0}},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{127, 0, 0, 0}})
	}
	proto := byte(unix.IPPROTO_TCP)
	if p.Protocol == "udp" {
		proto = unix.IPPROTO_UDP
	}
	return append(rule,
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.HostPort)},
		&expr.Immediate{Register: 1, Data: target},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p.GuestPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true})
}

// ownTable is the container's table if it exists.
func ownTable(c *nftables.Conn, name string) (*nftables.Table, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, err
	}
	want := forwardTable(name).Name
	for _, t := range tables {
		if t.Name == want {
			return t, nil
		}
	}
	return nil, nil
}

// removeForwards deletes the container's table, if it has one. Where nftables cannot
// even be listed (a kernel without it), no table of ours can exist.
func removeForwards(name string) error {
	c, err := nftables.New()
	if err != nil {
		return nil
	}
	t, err := ownTable(c, name)
	if err != nil || t == nil {
		return nil
	}
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("forwards %s: delete nftables table %s: %w", name, t.Name, err)
	}
	return nil
}

// enableIPv4Forwarding turns IPv4 forwarding on, as Docker and NixOS's NAT module do
// for the same purpose; it is never turned off again, since others may rely on it.
func enableIPv4Forwarding() error {
	data, err := os.ReadFile(ipv4Forwarding)
	if err == nil && strings.TrimSpace(string(data)) == "1" {
		return nil
	}
	if err := os.WriteFile(ipv4Forwarding, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	return nil
}
