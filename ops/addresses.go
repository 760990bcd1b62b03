package ops

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// addressLock holds the lock nixos-container takes (flock on /run/lock/nixos-container)
// while it picks addresses and writes a conf file, so that we, parallel creates, and
// nixos-container running beside us never hand out the same pair.
type addressLock struct{ f *os.File }

func lockAddresses(ctx context.Context, path string) (*addressLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Polled, not blocking, so that a caller that gives up (an interrupted mkdir) can.
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return &addressLock{f}, nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// unlock releases the lock; a second call does nothing.
func (l *addressLock) unlock() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
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
// optional prefix length as NixOS allows ("10.0.0.1/24").
func ValidateAddress(s string) error {
	addr := s
	if a, bits, ok := strings.Cut(s, "/"); ok {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() || bits == "" {
			return fmt.Errorf("%w: %q is not an IPv4 address", ErrInvalid, s)
		}
		addr = a
	}
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is4() {
		return fmt.Errorf("%w: %q is not an IPv4 address", ErrInvalid, s)
	}
	return nil
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
