package fs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Every file reports its true size, so that sendfile copies (Python's shutil.copy) and
// cp get all of it, and reads see one value per open.
func TestSizesAndCopies(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{host: "10.233.1.1", local: "10.233.1.2"}, false)
	os.WriteFile(f.l.BuildLogPath("web"), []byte("building\ndone\n"), 0o644)
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
	logFile, err := os.Create(f.l.BuildLogPath("web"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	logFile.WriteString("first\n")
	go func() {
		time.Sleep(1500 * time.Millisecond)
		logFile.WriteString("second\n")
	}()
	out, _ := sh(t, mnt, `timeout 4 tail -f $MNT/web/build.log`)
	if out != "first\nsecond\n" {
		t.Errorf("tail -f build.log: %q", out)
	}
}

// log is journalctl's output, run per open, and again when a reader reaches its end or
// asks for the size with the file open (cp, shutil.copy and tail -f fstat it). Looking
// at the name (lookup, ls -l, stat of the path) does not run it: the size is 0 then.
func TestJournal(t *testing.T) {
	var mu sync.Mutex
	runs := 0
	journal := "2024-01-01T00:00:00+0000 host systemd[1]: Starting container web...\n"
	f, mnt := mountFake(t, func(ctx context.Context, name string) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		runs++
		return []byte(journal), nil
	})
	f.add("web", &fakeContainer{}, false)
	journalRuns := func() int {
		mu.Lock()
		defer mu.Unlock()
		return runs
	}
	want := strconv.Itoa(len(journal))
	// A burst of stats without an open handle: the true size, one journalctl run.
	if got := mustSh(t, mnt, `stat -c %s $MNT/web/log; ls -l $MNT/web > /dev/null; stat -c %s $MNT/web/log`); got != want+"\n"+want+"\n" {
		t.Errorf("size without an open handle: %q, want %s", got, want)
	}
	if n := journalRuns(); n != 1 {
		t.Errorf("journalctl ran %d times for a burst of stats and ls -l, want 1", n)
	}
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
	go func() {
		time.Sleep(1500 * time.Millisecond)
		mu.Lock()
		journal += "2024-01-01T00:00:01+0000 host systemd[1]: Started container web.\n"
		mu.Unlock()
	}()
	tailed, _ := sh(t, mnt, `timeout 4 tail -f $MNT/web/log`)
	if !strings.HasSuffix(tailed, "Started container web.\n") {
		t.Errorf("tail -f log: %q", tailed)
	}
}

// events streams one line per change from the moment it is opened, blocks in read
// until there is one, and lets an interrupted reader go.
func TestEvents(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	f.setState("web", "running") // before the open: not shown
	go func() {
		time.Sleep(time.Second)
		f.setState("web", "stopped")
		f.add("db", &fakeContainer{}, true)
	}()
	begin := time.Now()
	out, _ := sh(t, mnt, `timeout -s INT 3 cat $MNT/events`)
	if took := time.Since(begin); took > 5*time.Second {
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
	go func() {
		time.Sleep(time.Second)
		f.setState("web", "running")
	}()
	out, _ := sh(t, mnt, `timeout -s INT 3 stdbuf -oL tail -n +1 -f $MNT/events`)
	if !strings.HasSuffix(out, " web state running\n") {
		t.Errorf("tail -n +1 -f events: %q", out)
	}
}

// Two reads of one events fd block together: interrupting the one that waits behind
// the other lets it go at once (EINTR), and the other still gets the next event.
// pread, because read(2) of a shared file serialises on its position in the kernel.
func TestEventsSharedFdInterrupted(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	go func() {
		time.Sleep(4 * time.Second)
		f.setState("web", "running")
	}()
	first := filepath.Join(t.TempDir(), "first")
	out := mustSh(t, mnt, `exec 3<$MNT/events
		pread() { exec python3 -c 'import os, sys; sys.stdout.write(os.pread(3, 4096, 0).decode())'; }
		pread > `+first+` & first=$!
		sleep 0.5
		pread & second=$!
		sleep 0.5
		begin=$(date +%s%N)
		kill $second
		! wait $second
		echo "second: $(( ($(date +%s%N) - begin) / 1000000 )) ms"
		wait $first
		cat `+first)
	var ms int
	if _, err := fmt.Sscanf(out, "second: %d ms", &ms); err != nil || ms > 1000 {
		t.Errorf("the interrupted reader took %d ms (%v):\n%s", ms, err, out)
	}
	if !strings.HasSuffix(out, " web state running\n") {
		t.Errorf("the other reader:\n%s", out)
	}
}
