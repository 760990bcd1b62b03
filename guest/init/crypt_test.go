package main

import (
	"os/exec"
	"strings"
	"testing"
)

func TestSHA512Crypt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ password, salt, want string }{
		// The first from "Unix crypt using SHA-256 and SHA-512" (Drepper), the
		// others as glibc's crypt(3) hashes them.
		{"Hello world!", "saltstring", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
		{"we have a short salt string but not a short password", "short", "$6$short$qmfj2meTBr5G2EAGIJ4vjX7RpefsD4JzpEyTAeEUJdzdxlBS6pe8gdMHm5zFftaFSj/2p2bjBwyVS9ZhWpLZt."},
		{"a very much longer text to encrypt.  This one even stretches over morethan one line.", "1234567890123456789", "$6$1234567890123456$qh7.iuCKLACKMso25j6447/GTFsOQiUQ3yVFSyYkedfgC49Q6MjzGu6V2N9MAzKt2xvx4CXbf25qdj0qpVgm.1"},
		{"", "x", "$6$x$QSmr1Bx2g4O6BzKvdkgOcyU6H91X6I/XBv5pSalMhSPkwdH6Beo3F455xZJg0v//bxVK5F4OE5k1.0xuR26MK0"},
	} {
		if got := sha512Crypt(tc.password, tc.salt); got != tc.want {
			t.Errorf("sha512Crypt(%q, %q) = %s, want %s", tc.password, tc.salt, got, tc.want)
		}
	}
}

// hashPassword's random salt gives hashes that busybox's own crypt agrees with.
func TestHashPasswordMatchesBusybox(t *testing.T) {
	t.Parallel()
	busybox := staticBusybox(t)
	h1, err := hashPassword("secret")
	must(t, err)
	h2, err := hashPassword("secret")
	must(t, err)
	if h1 == h2 || !strings.HasPrefix(h1, "$6$") {
		t.Errorf("hashPassword twice = %s, %s; want different $6$ hashes", h1, h2)
	}
	salt := strings.Split(h1, "$")[2]
	out, err := exec.Command(busybox, "mkpasswd", "-m", "sha512", "secret", salt).Output()
	if err != nil || strings.TrimSpace(string(out)) != h1 {
		t.Errorf("busybox mkpasswd with salt %s = %q, %v; want %s", salt, out, err, h1)
	}
}
