package ops

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// lockAddresses takes the lock nixos-container takes (flock on
// /run/lock/nixos-container) while it picks addresses and writes a conf file, so that
// we, parallel creates, and nixos-container running beside us never hand out the same
// pair.
func lockAddresses(ctx context.Context, path string) (*fileLock, error) {
	return lockFile(ctx, path)
}

// The same patterns nixos-container matches: a pair is taken when either address
// appears in any conf file (a "/prefix" after the address is ignored).
var (
	hostAddrRE  = regexp.MustCompile(`(?m)^HOST_ADDRESS=([0-9.]+)`)
	localAddrRE = regexp.MustCompile(`(?m)^LOCAL_ADDRESS=([0-9.]+)`)
)

// usedAddresses maps every IPv4 address in the conf files to the container using it.
func usedAddresses(confDir string) (map[string]string, error) {
	used := map[string]string{}
	names, err := listConfNames(confDir)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(confDir, n+".conf"))
		if err != nil {
			continue // removed meanwhile
		}
		for _, re := range []*regexp.Regexp{hostAddrRE, localAddrRE} {
			if m := re.FindSubmatch(data); m != nil {
				used[string(m[1])] = n
			}
		}
	}
	return used, nil
}

// nextFreePair is nixos-container's choice: the first 10.233.N.1/10.233.N.2, N in 1..254,
// of which neither address is used.
func nextFreePair(used map[string]string) (host, local string, err error) {
	for n := 1; n < 255; n++ {
		h, l := fmt.Sprintf("10.233.%d.1", n), fmt.Sprintf("10.233.%d.2", n)
		if used[h] == "" && used[l] == "" {
			return h, l, nil
		}
	}
	return "", "", ErrNoAddress
}

// ValidateAddress checks an address written by a user: an IPv4 address, with an
// optional prefix length as NixOS allows ("10.0.0.1/24"), that a veth end can have:
// not 0.0.0.0, a broadcast, loopback, multicast or link-local address, and no prefix
// shorter than /8, which would route a large part of the Internet to the container.
func ValidateAddress(s string) error {
	p, err := parseAddress(s)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IPv4 address", ErrInvalid, s)
	}
	a := p.Addr()
	var why string
	switch {
	case a.IsUnspecified():
		why = "is the unspecified address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "is the broadcast address"
	case a.IsLoopback():
		why = "is a loopback address"
	case a.IsMulticast():
		why = "is a multicast address"
	case a.IsLinkLocalUnicast():
		why = "is a link-local address"
	case p.Bits() < 8:
		why = "has a prefix shorter than /8"
	case p.Bits() <= 30 && a == lastOf(p):
		why = "is the broadcast address of its prefix"
	}
	if why != "" {
		return fmt.Errorf("%w: %s %s", ErrInvalid, s, why)
	}
	return nil
}

// parseAddress parses "a.b.c.d" (a /32) or "a.b.c.d/n".
func parseAddress(s string) (netip.Prefix, error) {
	if _, bits, ok := strings.Cut(s, "/"); ok {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() || bits == "" {
			return netip.Prefix{}, ErrInvalid
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Prefix{}, ErrInvalid
	}
	return netip.PrefixFrom(a, 32), nil
}

// lastOf is the last address of p's network: its broadcast address.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// BareAddress drops a "/prefix".
func BareAddress(s string) string {
	a, _, _ := strings.Cut(s, "/")
	return a
}

// validateAddresses checks the addresses a user gave ("" for one not given), before
// anything is written: each must be an IPv4 address, and the two must differ.
func validateAddresses(hostAddr, localAddr string) error {
	for _, a := range []string{hostAddr, localAddr} {
		if a != "" {
			if err := ValidateAddress(a); err != nil {
				return err
			}
		}
	}
	return distinctAddresses(hostAddr, localAddr)
}

// distinctAddresses fails when the host and the container side would be one address.
func distinctAddresses(hostAddr, localAddr string) error {
	if hostAddr != "" && BareAddress(hostAddr) == BareAddress(localAddr) {
		return fmt.Errorf("%w: host and container address would both be %s", ErrInvalid, BareAddress(hostAddr))
	}
	return nil
}

// checkAddressesFree fails when one of addrs ("" ignored) is used by a container other
// than self. The caller holds the address lock, so the answer stays true until it
// writes its conf file.
func checkAddressesFree(used map[string]string, self string, addrs ...string) error {
	for _, a := range addrs {
		if owner := used[BareAddress(a)]; a != "" && owner != "" && owner != self {
			return fmt.Errorf("%w: %s is used by %s", ErrAddressInUse, BareAddress(a), owner)
		}
	}
	return nil
}
