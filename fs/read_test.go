package fs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nixcfs/ops"
)

// Every file reports its true size, so that sendfile copies (Python's shutil.copy) and
// cp get all of it, and reads see one value per open.
func TestSizesAndCopies(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{host: "10.233.1.1", local: "10.233.1.2"}, false)
	os.WriteFile(f.buildLogPath("web"), []byte("building\ndone\n"), 0o644)
	for _, file := range []string{"state", "config.nix", "status", "address", "host-address", "autostart", "build.log"} {
		mustSh(t, mnt, `cd $MNT/web && f=`+file+` && out=$(mktemp -d) &&
			test "$(stat -c %s $f)" = "$(cat $f | wc -c)" &&
			cp $f $out/cp && cmp $f $out/cp &&
			python3 -c 'import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])' $f $out/py && cmp $f $out/py &&
			head -c 3 $f > /dev/null && rm -r $out`)
	}
	if got := mustSh(t, mnt, `cat $MNT/web/status`); !strings.Contains(got, "name web\nstate stopped\n") || !strings.Contains(got, "local_address 10.233.1.2\n") {
		t.Errorf("status:\n%s", got)
	}
}

// build.log grows while a build runs; tail -f follows it (it polls the size on FUSE).
func TestBuildLogFollowed(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	if got := mustSh(t, mnt, `cat $MNT/web/build.log`); got != "" {
		t.Errorf("build.log before any build: %q", got)
	}
	logFile, err := os.Create(f.buildLogPath("web"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	logFile.WriteString("first\n")
	tail := startSh(t, mnt, `exec tail -f $MNT/web/build.log`)
	tail.waitLine(t, "tail shows the first line", func(l string) bool { return l == "first" })
	logFile.WriteString("second\n")
	tail.waitLine(t, "tail follows the log", func(l string) bool { return l == "second" })
	tail.signal(syscall.SIGTERM)
	if out, _ := tail.finish(t); out != "first\nsecond\n" {
		t.Errorf("tail -f build.log: %q", out)
	}
}

// log is the journal: read per open, and again when a reader reaches its end or asks
// for the size with the file open (cp, shutil.copy and tail -f fstat it). Looking at
// the name (lookup, ls -l, stat of the path) counts its size at most once a second.
func TestJournal(t *testing.T) {
	f, mnt := mountFake(t)
	journal := "2024-01-01T00:00:00+0000 host systemd[1]: Starting container web...\n"
	f.set(func() { f.journal = journal })
	f.add("web", &fakeContainer{}, false)
	want := strconv.Itoa(len(journal))
	// A burst of stats without an open handle: the true size, one journal read.
	if got := mustSh(t, mnt, `stat -c %s $MNT/web/log; ls -l $MNT/web > /dev/null; stat -c %s $MNT/web/log`); got != want+"\n"+want+"\n" {
		t.Errorf("size without an open handle: %q, want %s", got, want)
	}
	f.set(func() {
		if f.logReads != 1 {
			t.Errorf("the journal was read %d times for a burst of stats and ls -l, want 1", f.logReads)
		}
	})
	mustSh(t, mnt, `exec 3<$MNT/web/log && test "$(stat -c %s $MNT/web/log)" = `+want+` && test "$(stat -L -c %s /dev/fd/3)" = `+want)
	if got := mustSh(t, mnt, `cat $MNT/web/log`); got != journal {
		t.Errorf("log: %q", got)
	}
	out := t.TempDir()
	mustSh(t, mnt, `cd $MNT/web && cp log `+out+`/cp && python3 -c 'import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])' log `+out+`/py`)
	for _, copied := range []string{"cp", "py"} {
		if got := fileText(t, filepath.Join(out, copied)); got != strings.TrimSpace(journal) {
			t.Errorf("%s of log: %q", copied, got)
		}
	}
	tail := startSh(t, mnt, `exec tail -f $MNT/web/log`)
	tail.waitLine(t, "tail shows the journal", func(l string) bool { return strings.HasSuffix(l, "Starting container web...") })
	f.set(func() { f.journal += "2024-01-01T00:00:01+0000 host systemd[1]: Started container web.\n" })
	tail.waitLine(t, "tail follows the journal", func(l string) bool { return strings.HasSuffix(l, "Started container web.") })
	tail.signal(syscall.SIGTERM)
	tail.finish(t)
}

// readers waits until n readers of the events stream are registered with the backend
// (the root's own follower is one of them).
func readers(t *testing.T, f *fakeBackend, n int) {
	t.Helper()
	eventually(t, 10*time.Second, fmt.Sprintf("%d events readers", n), func() bool { return f.watcherCount() == n })
}

// events streams one line per change from the moment it is opened, blocks in read
// until there is one, and lets an interrupted reader go.
func TestEvents(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	f.setState("web", ops.StateRunning) // before the open: not shown
	cat := startSh(t, mnt, `exec cat $MNT/events`)
	readers(t, f, 2)
	f.setState("web", ops.StateStopped)
	f.add("db", &fakeContainer{}, true)
	cat.waitLine(t, "db's creation", func(l string) bool { return strings.HasSuffix(l, " db container created") })
	begin := time.Now()
	cat.signal(syscall.SIGINT)
	out, _ := cat.finish(t)
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("cat events ran %v after SIGINT", took)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], " web state stopped") || !strings.HasSuffix(lines[1], " db container created") {
		t.Fatalf("events:\n%s", out)
	}
	if _, err := time.Parse(time.RFC3339, strings.Fields(lines[0])[0]); err != nil {
		t.Errorf("time: %v", err)
	}
}

// tail -f follows events when told to start at the first line: plain tail -f first
// reads to the end of the file to find its last ten lines, and a stream has no end.
func TestEventsTailed(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	tail := startSh(t, mnt, `exec stdbuf -oL tail -n +1 -f $MNT/events`)
	readers(t, f, 2)
	f.setState("web", ops.StateRunning)
	tail.waitLine(t, "tail -n +1 -f shows the change", func(l string) bool { return strings.HasSuffix(l, " web state running") })
}

// Two reads of one events fd block together: interrupting the one that waits behind
// the other lets it go at once (EINTR), and the other still gets the next event.
// pread, because read(2) of a shared file serialises on its position in the kernel.
func TestEventsSharedFdInterrupted(t *testing.T) {
	f, mnt, root := mountFakeRoot(t)
	f.add("web", &fakeContainer{}, false)
	events := root.GetChild(eventsName).Operations().(*eventsFile)
	reading := func(n int32) {
		eventually(t, 10*time.Second, fmt.Sprintf("%d blocked reads of events", n), func() bool { return events.reading.Load() == n })
	}
	first := filepath.Join(t.TempDir(), "first")
	sh := startSh(t, mnt, `exec 3<$MNT/events
		pread() { exec python3 -c 'import os, sys; sys.stdout.write(os.pread(3, 4096, 0).decode())'; }
		pread > `+first+` & first=$!
		read _
		pread & second=$!
		read _
		begin=$(date +%s%N)
		kill $second
		! wait $second
		echo "second: $(( ($(date +%s%N) - begin) / 1000000 )) ms"
		wait $first
		cat `+first)
	reading(1)
	sh.proceed(t)
	reading(2)
	sh.proceed(t)
	line := sh.waitLine(t, "the interrupted reader's end", func(l string) bool { return strings.HasPrefix(l, "second: ") })
	var ms int
	if _, err := fmt.Sscanf(line, "second: %d ms", &ms); err != nil || ms > 1000 {
		t.Errorf("the interrupted reader took %d ms (%v)", ms, err)
	}
	f.setState("web", ops.StateRunning)
	if out, err := sh.finish(t); err != nil || !strings.HasSuffix(out, " web state running\n") {
		t.Errorf("the other reader (%v):\n%s", err, out)
	}
}

// NAME/events is that container's stream alone: changes to another container (db)
// before and after one to web never reach web's reader. The stream keeps its order, so
// once web's last line is in, every line before it is too.
func TestContainerEventsOnlyItsOwn(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	f.add("db", &fakeContainer{}, false)
	cat := startSh(t, mnt, `exec cat $MNT/web/events`)
	readers(t, f, 2)
	f.setState("db", ops.StateRunning)
	f.NoteError("db", errors.New("db broke"))
	f.setState("web", ops.StateRunning)
	f.removeOutside("db")
	f.NoteError("web", errors.New("web broke"))
	cat.waitLine(t, "web's error", func(l string) bool { return strings.HasSuffix(l, " web error web broke") })
	cat.signal(syscall.SIGINT)
	out, _ := cat.finish(t)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], " web state running") {
		t.Errorf("web/events:\n%s\nwant web's two changes alone", out)
	}
	for _, l := range lines {
		if fields := strings.Fields(l); len(fields) < 2 || fields[1] != "web" {
			t.Errorf("web/events has another container's line: %q", l)
		}
	}
}
