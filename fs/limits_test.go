package fs

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The limit files and the stats file with shell tools, on the fake (the contract holds
// it to ops); the real ones are in testscripts/limits.txtar and stats.txtar.

func TestLimitFilesWithShellTools(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	if got := mustSh(t, mnt, `cat $MNT/web/memory.max $MNT/web/cpu.max $MNT/web/pids.max $MNT/web/cpu.weight $MNT/web/io.weight`); got != "max\nmax 100000\nmax\n100\n100\n" {
		t.Errorf("unset limits read %q", got)
	}
	mustSh(t, mnt, `echo 64M > $MNT/web/memory.max && echo '50000 100000' > $MNT/web/cpu.max && echo 20 >> $MNT/web/pids.max`)
	if got := mustSh(t, mnt, `cat $MNT/web/memory.max $MNT/web/cpu.max $MNT/web/pids.max`); got != "67108864\n50000 100000\n20\n" {
		t.Errorf("limits after writes read %q", got)
	}
	// Each reports its true size, so cp and sendfile copies get all of it.
	mustSh(t, mnt, `for f in memory.max cpu.max pids.max cpu.weight io.weight stats; do
		test "$(stat -c %s $MNT/web/$f)" = "$(cat $MNT/web/$f | wc -c)" || { echo "$f: wrong size"; exit 1; }; done`)
	for _, bad := range []string{`echo 64Q`, `echo 0`, `echo "1 2 3"`, `echo`} {
		failSh(t, mnt, bad+` > $MNT/web/memory.max`, "Invalid argument")
	}
	failSh(t, mnt, `/bin/echo 1 > $MNT/web/cpu.weight && /bin/echo 10001 > $MNT/web/cpu.weight`, "Invalid argument")
	if got := mustSh(t, mnt, `cat $MNT/web/memory.max $MNT/web/cpu.weight`); got != "67108864\n1\n" {
		t.Errorf("limits after bad writes read %q", got)
	}
	if st, _ := f.Status("web"); !strings.Contains(st.Error, "cpu.weight") {
		t.Errorf("status error after a bad write: %q", st.Error)
	}
}

func TestLimitFilesOfDeclarativeContainer(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("decl", &fakeContainer{declarative: true}, false)
	mustSh(t, mnt, `cat $MNT/decl/memory.max`)
	failSh(t, mnt, `echo 1G > $MNT/decl/memory.max`, "Operation not permitted")
}

func TestStatsFile(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	zero := "memory_current 0\nmemory_peak 0\ncpu_usage_usec 0\ntasks 0\nio_read_bytes 0\nio_write_bytes 0\nnet_rx_bytes 0\nnet_tx_bytes 0\nuptime_s 0\n"
	if got := mustSh(t, mnt, `cat $MNT/web/stats`); got != zero {
		t.Errorf("stats of a stopped container:\n%s", got)
	}
	mustSh(t, mnt, `echo start > $MNT/web/state`)
	if got := mustSh(t, mnt, `grep -E '^(tasks|memory_current) ' $MNT/web/stats`); got != "memory_current 4194304\ntasks 2\n" {
		t.Errorf("stats of a running container:\n%s", got)
	}
	cp := t.TempDir() + "/stats.copy"
	mustSh(t, mnt, `python3 -c 'import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])' $MNT/web/stats `+cp+` && cmp `+cp+` $MNT/web/stats`)
	failSh(t, mnt, `echo 0 > $MNT/web/stats`, "Permission denied")
}

// Every refusal by a limit file is EINVAL with an error line in status that names the
// file and the value, and changes no limit: what is not one value, a truncation, a
// value written at an offset where none starts, and a value out of its syntax. A
// marker error before each case keeps one that writes no line from passing on the
// line of the case before.
func TestLimitFilesRefusalsNamed(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	all := `cat $MNT/web/memory.max $MNT/web/cpu.max $MNT/web/pids.max $MNT/web/cpu.weight $MNT/web/io.weight`
	mustSh(t, mnt, `echo 1G > $MNT/web/memory.max && echo 200 > $MNT/web/cpu.weight`)
	before := mustSh(t, mnt, all)
	for _, file := range []string{"memory.max", "cpu.max", "pids.max", "cpu.weight", "io.weight"} {
		for _, tc := range []struct{ write, want string }{
			{`truncate -s 3 $F`, file + `: "" refused: truncation to 3 bytes`},
			{`echo > $F`, file + `: "\n" refused: a file takes one value per write`},
			{`/usr/bin/printf '20\n30\n' > $F`, file + `: "20\n30\n" refused: a file takes one value per write`},
			{`/usr/bin/printf '20\n\n' > $F`, file + `: "20\n\n" refused: a file takes one value per write`},
			{`printf 20 | dd of=$F bs=16 seek=1 conv=notrunc status=none`, file + `: "20" refused: a write at offset 16`},
			// dd warns that it cannot truncate the file to 100 bytes, and writes.
			{`printf 20 | dd of=$F bs=1 seek=100 status=none`, file + `: "2" refused: a write at offset 100`},
			{`echo 0 > $F`, file + ` "0": `},
			{`echo ２０ > $F`, file + ` "２０": `},
			{`printf '20\0' > $F`, file + ` "20\x00": `},
		} {
			marker := fmt.Sprintf("marker-%s-%q", file, tc.write)
			f.NoteError("web", errors.New(marker))
			failSh(t, mnt, "F=$MNT/web/"+file+"; "+tc.write, "Invalid argument")
			if st, _ := f.Status("web"); !strings.Contains(st.Error, tc.want) {
				t.Errorf("%s: %s: status error %q, want %q", file, tc.write, st.Error, tc.want)
			}
		}
	}
	if after := mustSh(t, mnt, all); after != before {
		t.Errorf("refused writes changed the limits:\n%s\nwere\n%s", after, before)
	}
}

// A value is written whole: from the start of the file, with >>, or after the value
// the same open wrote before; a value at another offset is refused (above).
func TestLimitFilesWriteOffsets(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	for _, tc := range []struct{ write, want string }{
		{`echo 10 > $F`, "10"},
		{`echo 11 >> $F`, "11"},
		{`printf 12 > $F`, "12"},
		{`echo 13 | tee $F`, "13"},
		{`echo 14 | tee -a $F`, "14"},
		{`echo 15 | cat > $F`, "15"},
		{`/bin/echo 16 > $F`, "16"},
		{`exec 3>$F; echo 17 >&3; echo 18 >&3; exec 3>&-`, "18"},
		{`exec 3>>$F; echo 19 >&3; echo 20 >&3; exec 3>&-`, "20"},
		{`printf 21 | dd of=$F status=none`, "21"},
		{`python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY); os.pwrite(fd, b"22", 0); os.pwrite(fd, b"23", 0)' $F`, "23"},
	} {
		mustSh(t, mnt, "F=$MNT/web/pids.max; "+tc.write)
		if got := mustSh(t, mnt, `cat $MNT/web/pids.max`); got != tc.want+"\n" {
			t.Errorf("%s: pids.max reads %q, want %s", tc.write, got, tc.want)
		}
	}
	// The next write after a refused one comes where the refused one came.
	mustSh(t, mnt, `exec 3>$MNT/web/pids.max; ! echo 0 >&3 && echo 24 >&3`)
	if got := mustSh(t, mnt, `cat $MNT/web/pids.max`); got != "24\n" {
		t.Errorf("after a refused and a good write on one open: %q", got)
	}
}
