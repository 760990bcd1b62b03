package fs

import (
	"testing"

	"nixcfs/ops"
)

// NAME/ports through the kernel and real shells: one forward per line, what one open
// writes replaces them all (bash writes it a line at a time), blank lines are nothing,
// and refusals are ops' errnos, on the write that made them.
func TestPortsFile(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	f.add("db", &fakeContainer{ports: []string{"5432"}}, false)
	ports := func(want string) {
		t.Helper()
		if got := mustSh(t, mnt, `cat $MNT/web/ports`); got != want {
			t.Errorf("ports read as %q, want %q", got, want)
		}
	}
	ports("")
	mustSh(t, mnt, `printf 'tcp:8080:80\n\n  udp:5353 \n2222:22\n' > $MNT/web/ports`)
	want := "tcp:8080:80\nudp:5353\n2222:22\n"
	ports(want)
	if got := mustSh(t, mnt, `stat -c %s $MNT/web/ports`); got != "29\n" {
		t.Errorf("size %q, want the text's 29", got)
	}
	for _, bad := range []string{`echo 0`, `echo 65536`, `echo sctp:80`, `echo 80,81`, `printf '80\n80:81\n'`,
		`echo tcp`, `echo 80:`, `echo 'tcp:80 x'`, `printf '81\nbad\n82\n'`} {
		failSh(t, mnt, bad+` > $MNT/web/ports`, "Invalid argument")
	}
	failSh(t, mnt, `printf '81\nbad\n' | cat > $MNT/web/ports`, "Invalid argument")
	ports(want)
	failSh(t, mnt, `printf '81\n5432\n' > $MNT/web/ports`, "Address already in use")
	ports(want)
	mustSh(t, mnt, `echo udp:5432 >> $MNT/web/ports`)
	ports(want + "udp:5432\n")
	mustSh(t, mnt, `printf '1\n2\n' | cat > $MNT/web/ports`)
	ports("1\n2\n")
	mustSh(t, mnt, `printf 9999 > $MNT/web/ports`) // the last line needs no newline
	ports("9999\n")
	f.setState("web", ops.StateRunning)
	failSh(t, mnt, `echo 8081 > $MNT/web/ports`, "Device or resource busy")
	f.setState("web", ops.StateStopped)
	mustSh(t, mnt, `echo > $MNT/web/ports`)
	ports("")
	f.add("decl", &fakeContainer{declarative: true, ports: []string{"tcp:80:80"}}, false)
	failSh(t, mnt, `echo 81 > $MNT/decl/ports`, "Operation not permitted")
	if got := mustSh(t, mnt, `cat $MNT/decl/ports`); got != "tcp:80:80\n" {
		t.Errorf("declarative ports: %q", got)
	}
}
