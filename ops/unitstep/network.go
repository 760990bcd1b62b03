package unitstep

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"nixcfs/ops"
)

// The container's network is made with netlink before systemd-nspawn runs: a network
// namespace bound at ops.NetnsPath(NAME), a veth pair ve-NAME (host) / eth0
// (inside), addresses and routes on both ends. nspawn then joins that namespace
// (--network-namespace-path), so eth0 is up with LOCAL_ADDRESS and a route to the host
// before the guest's init runs, as NixOS's container init script arranges.

const netnsDir = "/run/netns"

// netConfig is what the conf file says about the network.
type netConfig struct {
	private   bool
	hostAddr  string // may carry a /prefix
	localAddr string
	bridge    string
}

func netConfigOf(c ops.Conf) netConfig {
	return netConfig{
		private:   c.Get("PRIVATE_NETWORK") == "1",
		hostAddr:  c.Get("HOST_ADDRESS"),
		localAddr: c.Get("LOCAL_ADDRESS"),
		bridge:    c.Get("HOST_BRIDGE"),
	}
}

// ipNet parses "a.b.c.d" (a /32) or "a.b.c.d/n".
func ipNet(s string) (*net.IPNet, error) {
	if !strings.Contains(s, "/") {
		s += "/32"
	}
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		return nil, fmt.Errorf("%w: address %q", ops.ErrInvalid, s)
	}
	n.IP = ip
	return n, nil
}

func hostRoute(s string) *net.IPNet {
	return &net.IPNet{IP: net.ParseIP(ops.BareAddress(s)), Mask: net.CIDRMask(32, 32)}
}

// setupNetwork makes the container's namespace and veth pair. Leftovers of an earlier
// run that was not cleaned up (a crash) are removed first.
func setupNetwork(name string, nc netConfig) (err error) {
	teardownNetwork(name)
	ns, err := newNamedNetns(name)
	if err != nil {
		return err
	}
	defer ns.Close()
	defer func() {
		if err != nil {
			teardownNetwork(name)
		}
	}()
	hostIf := ops.HostInterface(name)
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostIf},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(int(ns)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("network %s: add %s: %w", name, hostIf, err)
	}
	if err := setupHostSide(name, nc); err != nil {
		return err
	}
	return setupInside(name, ns, nc)
}

// newNamedNetns makes the namespace bound at ops.NetnsPath(name), and returns a handle
// on it without entering it.
func newNamedNetns(name string) (netns.NsHandle, error) {
	// Creating a namespace switches the calling thread into it: keep this goroutine on
	// its thread and switch back before anything else runs on it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return 0, fmt.Errorf("network %s: current namespace: %w", name, err)
	}
	defer orig.Close()
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return 0, fmt.Errorf("network %s: %w", name, err)
	}
	ns, err := netns.NewNamed(ops.NetnsName(name))
	if serr := netns.Set(orig); serr != nil {
		// This thread is lost to the other namespace; never let Go reuse it.
		runtime.Goexit()
	}
	if err != nil {
		return 0, fmt.Errorf("network %s: new namespace: %w", name, err)
	}
	return ns, nil
}

// setupHostSide puts ve-NAME on the bridge, or gives it HOST_ADDRESS and a route to
// LOCAL_ADDRESS, and brings it up.
func setupHostSide(name string, nc netConfig) error {
	hostIf := ops.HostInterface(name)
	host, err := netlink.LinkByName(hostIf)
	if err != nil {
		return fmt.Errorf("network %s: %w", name, err)
	}
	if nc.bridge != "" {
		br, err := netlink.LinkByName(nc.bridge)
		if err != nil {
			return fmt.Errorf("network %s: bridge %s: %w", name, nc.bridge, err)
		}
		if err := netlink.LinkSetMaster(host, br); err != nil {
			return fmt.Errorf("network %s: attach to %s: %w", name, nc.bridge, err)
		}
	} else if nc.hostAddr != "" {
		a, err := ipNet(nc.hostAddr)
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(host, &netlink.Addr{IPNet: a}); err != nil {
			return fmt.Errorf("network %s: address %s on %s: %w", name, nc.hostAddr, hostIf, err)
		}
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("network %s: up %s: %w", name, hostIf, err)
	}
	if nc.bridge == "" && nc.localAddr != "" {
		r := &netlink.Route{LinkIndex: host.Attrs().Index, Dst: hostRoute(nc.localAddr), Scope: netlink.SCOPE_LINK}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("network %s: route to %s: %w", name, nc.localAddr, err)
		}
	}
	return nil
}

// setupInside configures lo and eth0 in the container's namespace.
func setupInside(name string, ns netns.NsHandle, nc netConfig) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("network %s: netlink in namespace: %w", name, err)
	}
	defer h.Close()
	for _, ifname := range []string{"lo", "eth0"} {
		l, err := h.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("network %s: %s inside: %w", name, ifname, err)
		}
		if ifname == "eth0" && nc.localAddr != "" {
			a, err := ipNet(nc.localAddr)
			if err != nil {
				return err
			}
			if err := h.AddrAdd(l, &netlink.Addr{IPNet: a}); err != nil {
				return fmt.Errorf("network %s: address %s on eth0: %w", name, nc.localAddr, err)
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("network %s: up %s inside: %w", name, ifname, err)
		}
		if ifname == "eth0" && nc.hostAddr != "" {
			gw := net.ParseIP(ops.BareAddress(nc.hostAddr))
			routes := []*netlink.Route{
				{LinkIndex: l.Attrs().Index, Dst: hostRoute(nc.hostAddr), Scope: netlink.SCOPE_LINK},
				{LinkIndex: l.Attrs().Index, Gw: gw},
			}
			for _, r := range routes {
				if err := h.RouteReplace(r); err != nil {
					return fmt.Errorf("network %s: route via %s inside: %w", name, nc.hostAddr, err)
				}
			}
		}
	}
	return nil
}

// teardownNetwork removes the veth pair and the namespace; missing pieces are fine.
func teardownNetwork(name string) error {
	var errs []error
	if l, err := netlink.LinkByName(ops.HostInterface(name)); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", ops.HostInterface(name), err))
		}
	}
	if _, err := os.Stat(ops.NetnsPath(name)); err == nil {
		if err := netns.DeleteNamed(ops.NetnsName(name)); err != nil {
			errs = append(errs, fmt.Errorf("delete namespace %s: %w", ops.NetnsName(name), err))
		}
	}
	return errors.Join(errs...)
}
