package fs

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"nixcfs/ops"
)

func TestEchoToStateActsInWrite(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	mustSh(t, mnt, `echo start > $MNT/web/state`)
	if got := mustSh(t, mnt, `cat $MNT/web/state`); got != "running\n" {
		t.Errorf("after start: %q", got)
	}
	mustSh(t, mnt, `echo start > $MNT/web/state`) // idempotent
	mustSh(t, mnt, `printf '  stop  ' > $MNT/web/state`)
	if got := mustSh(t, mnt, `cat $MNT/web/state`); got != "stopped\n" {
		t.Errorf("after stop: %q", got)
	}
	mustSh(t, mnt, `echo start >> $MNT/web/state`) // O_APPEND: at the size the kernel knows
	for _, bad := range []string{`echo bogus`, `printf 'start\n\n'`, `printf 'start stop'`, `echo`} {
		failSh(t, mnt, bad+` > $MNT/web/state`, "Invalid argument")
	}
	failSh(t, mnt, `echo reload > $MNT/nope/state`, "No such file or directory")
}

func TestFailedStartIsEIO(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{startErr: fmt.Errorf("%w: container@web.service: failed", ops.ErrStartFailed)}, false)
	failSh(t, mnt, `echo start > $MNT/web/state`, "Input/output error")
	failSh(t, mnt, `/bin/echo start > $MNT/web/state`, "Input/output error")
}

// A waiting write interrupted by a signal returns EINTR at once; the start goes on.
func TestInterruptedStartGoesOn(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	gate := make(chan struct{})
	f.set(func() { f.startGate = gate })
	begin := time.Now()
	// perl does not retry an interrupted syswrite; the ALRM handler lets it go on.
	out := mustSh(t, mnt, `perl -e '$SIG{ALRM} = sub {}; alarm 1;
		open(my $f, ">", "$ENV{MNT}/web/state") or die "open: $!";
		my $n = syswrite($f, "start\n");
		print defined $n ? "wrote $n\n" : "error: $!\n";'`)
	if !strings.Contains(out, "Interrupted system call") {
		t.Fatalf("interrupted write: %q", out)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("interrupted write took %v", took)
	}
	if st, _ := f.State("web"); st != ops.StateStarting {
		t.Errorf("state after the interrupted write = %s, want starting", st)
	}
	close(gate)
	eventually(t, 2*time.Second, "the start goes on", func() bool {
		st, _ := f.State("web")
		return st.Running()
	})
	f.set(func() {
		if f.startCtx.Err() != nil {
			t.Error("the operation saw the interruption")
		}
	})
}

// Writes to a declarative container are refused at open; reads work.
func TestDeclarativeIsReadOnly(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("decl", &fakeContainer{declarative: true}, false)
	for _, w := range []string{
		`echo start > $MNT/decl/state`,
		`echo x > $MNT/decl/config.nix`,
		`echo 10.233.9.2 > $MNT/decl/address`,
		`echo 1 > $MNT/decl/autostart`,
		`sed -i s/a/b/ $MNT/decl/config.nix`,
		`touch $MNT/decl/scratch`,
	} {
		failSh(t, mnt, w, "Operation not permitted")
	}
	mustSh(t, mnt, `cat $MNT/decl/state $MNT/decl/config.nix $MNT/decl/status >/dev/null`)
	f.set(func() {
		if f.startCalls != 0 || len(f.commits) != 0 {
			t.Errorf("backend was changed: %d starts, %q", f.startCalls, f.commits)
		}
	})
}

func TestAddressWrites(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{host: "10.233.1.1", local: "10.233.1.2"}, false)
	f.add("db", &fakeContainer{host: "10.233.2.1", local: "10.233.2.2", state: ops.StateRunning}, false)
	if got := mustSh(t, mnt, `cat $MNT/web/address $MNT/web/host-address`); got != "10.233.1.2\n10.233.1.1\n" {
		t.Errorf("addresses: %q", got)
	}
	mustSh(t, mnt, `echo 10.233.9.2 > $MNT/web/address && echo 10.233.9.1 > $MNT/web/host-address`)
	if got := mustSh(t, mnt, `cat $MNT/web/address $MNT/web/host-address`); got != "10.233.9.2\n10.233.9.1\n" {
		t.Errorf("new addresses: %q", got)
	}
	failSh(t, mnt, `echo 10.233.2.2 > $MNT/web/address`, "Address already in use")
	failSh(t, mnt, `echo 300.1.1.1 > $MNT/web/address`, "Invalid argument")
	// The status names the file that refused the value.
	failSh(t, mnt, `echo 127.0.0.1 > $MNT/web/host-address`, "Invalid argument")
	if got := mustSh(t, mnt, `grep ^error $MNT/web/status`); !strings.HasPrefix(got, `error host-address: "127.0.0.1\n" refused: `) {
		t.Errorf("status after a refused host-address: %q", got)
	}
	failSh(t, mnt, `echo 10.233.8.2 > $MNT/db/address`, "Device or resource busy")
}

func TestAutostart(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	mustSh(t, mnt, `test "$(cat $MNT/web/autostart)" = 0 && echo 1 > $MNT/web/autostart && test "$(cat $MNT/web/autostart)" = 1`)
	failSh(t, mnt, `echo yes > $MNT/web/autostart`, "Invalid argument")
}

func TestReadOnlyFiles(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	for _, file := range []string{"status", "build.log", "log", "../events"} {
		failSh(t, mnt, `echo x > $MNT/web/`+file, "Permission denied")
	}
}

// A stop written while a start waits (for a build, for the guest) acts at once: each
// lookup of state is an inode of its own, so the kernel does not queue the second
// writer behind the first; the waiting start ends, overridden.
func TestStopWhileStartWaits(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	gate := make(chan struct{})
	defer close(gate)
	f.set(func() { f.startGate = gate })
	start := startSh(t, mnt, `exec 2>&1; echo start > $MNT/web/state; echo "start: $?"`)
	eventually(t, 10*time.Second, "the start waits", func() bool {
		st, _ := f.State("web")
		return st == ops.StateStarting
	})
	begin := time.Now()
	mustSh(t, mnt, `echo stop > $MNT/web/state`)
	if took := time.Since(begin); took > time.Second {
		t.Errorf("the stop waited %v behind the start", took)
	}
	start.waitLine(t, "the start ends", func(l string) bool { return strings.HasPrefix(l, "start: ") })
	out, _ := start.finish(t)
	if !strings.Contains(out, "Operation canceled") || !strings.Contains(out, "start: 1") {
		t.Errorf("the overridden start: %q", out)
	}
	if st, _ := f.State("web"); st != ops.StateStopped {
		t.Errorf("state %s after the stop", st)
	}
}

// Every state word acts: StateWords, which the command line completes, is what the
// state file takes.
func TestStateWordsAct(t *testing.T) {
	n := newStateFile(&containerRef{b: newFakeBackend(t), name: "web"})
	acts := n.actions()
	if len(acts) != len(StateWords()) {
		t.Errorf("the state file takes %d words, StateWords has %d", len(acts), len(StateWords()))
	}
	for _, w := range StateWords() {
		if acts[w] == nil {
			t.Errorf("%s does not act", w)
		}
	}
}

// A good value written at an offset where no value starts (dd seek=) is refused, EINVAL
// with the file and value in status, by every file that takes values; nothing
// changes. The same value from the start of the file is taken.
func TestValueAtOffsetRefused(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{host: "10.233.1.1", local: "10.233.1.2", current: 1,
		gens: []fakeGeneration{{n: 1, text: ops.DefaultConfig("web", "")}}}, false)
	for _, tc := range []struct{ file, value string }{
		{"address", "10.233.9.2"}, {"host-address", "10.233.9.1"}, {"autostart", "1"},
		{"generation", "1"}, {"ports", "8081"}, {"memory.max", "1G"}, {"state", "start"},
	} {
		before := mustSh(t, mnt, `cat $MNT/web/`+tc.file)
		write := `printf ` + tc.value + ` | dd of=$MNT/web/` + tc.file + ` bs=16 seek=1 conv=notrunc status=none`
		failSh(t, mnt, write, "Invalid argument")
		want := fmt.Sprintf("%s: %q refused: a write at offset 16", tc.file, tc.value)
		if st, _ := f.Status("web"); !strings.Contains(st.Error, want) {
			t.Errorf("%s: status error %q, want %q", write, st.Error, want)
		}
		if after := mustSh(t, mnt, `cat $MNT/web/`+tc.file); after != before {
			t.Errorf("%s: %s reads %q, was %q", write, tc.file, after, before)
		}
		mustSh(t, mnt, `printf `+tc.value+` | dd of=$MNT/web/`+tc.file+` status=none`)
	}
	if got := mustSh(t, mnt, `cat $MNT/web/state $MNT/web/address $MNT/web/autostart $MNT/web/ports`); got != "running\n10.233.9.2\n1\n8081\n" {
		t.Errorf("after the writes from the start: %q", got)
	}
}
