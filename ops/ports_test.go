package ops

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The forwards systemd-nspawn's --port takes, and nothing else.
func TestParsePortForward(t *testing.T) {
	for _, tc := range []struct {
		spec        string
		proto       string
		host, guest uint16
	}{
		{"8080", "tcp", 8080, 8080}, {"8080:80", "tcp", 8080, 80}, {"tcp:8080:80", "tcp", 8080, 80},
		{"udp:53", "udp", 53, 53}, {"udp:5353:53", "udp", 5353, 53}, {"1:65535", "tcp", 1, 65535},
	} {
		p, err := ParsePortForward(tc.spec)
		if err != nil || p.Protocol != tc.proto || p.HostPort != tc.host || p.GuestPort != tc.guest || p.Spec != tc.spec {
			t.Errorf("ParsePortForward(%q) = %+v, %v", tc.spec, p, err)
		}
	}
	for _, bad := range []string{"", "0", "65536", "99999999999", "-1", "+80", " 80", "80 ", "tcp", "tcp:",
		"udp:0", "80:", ":80", "80:0", "80:81:82", "sctp:80", "TCP:80", "tcp:udp:80", "80,81", "0x50", "8o"} {
		if p, err := ParsePortForward(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePortForward(%q) = %+v, %v; want ErrInvalid", bad, p, err)
		}
	}
}

// HOST_PORT as nixos-container --port and NixOS's declarative containers write it.
func TestParseHostPort(t *testing.T) {
	got, err := ParseHostPort(" tcp:8080:80, udp:53,,2222:22 ")
	if err != nil || len(got) != 3 || got[0].Spec != "tcp:8080:80" || got[1].Spec != "udp:53" || got[2].HostPort != 2222 {
		t.Errorf("ParseHostPort: %+v %v", got, err)
	}
	if got, err := ParseHostPort(""); err != nil || len(got) != 0 {
		t.Errorf("empty HOST_PORT: %+v %v", got, err)
	}
	for _, dup := range []string{"80,80", "8080:80,tcp:8080:81", "udp:53,udp:53:5353"} {
		if _, err := ParseHostPort(dup); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseHostPort(%q) = %v, want ErrInvalid", dup, err)
		}
	}
	if _, err := ParseHostPort("80,udp:80"); err != nil {
		t.Errorf("one port for both protocols: %v", err)
	}
}

// A host port forwarded by another conf file, as nixos-container writes it, is taken.
func TestCheckPortsFree(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.conf"), []byte("PRIVATE_NETWORK=1\nHOST_PORT=8080:80,udp:53\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.conf"), []byte("HOST_PORT=\"tcp:2222:22\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "c.conf"), []byte("HOST_PORT=garbage,9000\n"), 0o644)
	for _, tc := range []struct {
		self, value string
		want        error
	}{
		{"x", "8080", ErrAddressInUse}, {"x", "tcp:2222", ErrAddressInUse}, {"x", "udp:53:5353", ErrAddressInUse},
		{"x", "9000", ErrAddressInUse}, {"a", "8080,udp:53", nil}, {"x", "udp:8080,53,2223:22", nil}, {"x", "", nil},
	} {
		forwards, err := ParseHostPort(tc.value)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkPortsFree(dir, tc.self, forwards); !errors.Is(err, tc.want) {
			t.Errorf("%s forwarding %q: %v, want %v", tc.self, tc.value, err, tc.want)
		}
	}
}
