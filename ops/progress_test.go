package ops

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// testdata/nix-2.8 holds nix's stderr as this project's machines print it (Debian's
// nix 2.8, no terminal), recorded from real builds:
//
//	guest.log    nix-build of the guest system with three system.extraDependencies
//	fetch.log    three derivations built, three paths fetched from a binary cache
//	fetch-one.log  one of each ("this derivation", "this path")
//	fail.log     a builder that fails
//	nix-build-command.log  `nix build` (the flake builder), which announces nothing
func readRecorded(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "nix-2.8", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// steps feeds text to a parser line by line and returns the progress after each line
// that moved it, as String shows it.
func steps(n *nixProgress, text string) []string {
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if n.line(line) {
			out = append(out, n.p.String())
		}
	}
	return out
}

func TestNixProgressRecorded(t *testing.T) {
	for _, tc := range []struct {
		file  string
		steps []string
		end   string
	}{
		{"guest.log", []string{
			"0/4 fetched 0/0",
			"0/4 fetched 0/0 building dep-1-1796055273",
			"1/4 fetched 0/0 building dep-2-1796055273",
			"2/4 fetched 0/0 building dep-3-1796055273",
			"3/4 fetched 0/0 building nixos-system-prog-25.11.nixcfs",
		}, "4/4 fetched 0/0"},
		{"fetch.log", []string{
			"0/3 fetched 0/0",
			"0/3 fetched 0/3",
			"0/3 fetched 1/3",
			"0/3 fetched 2/3",
			"0/3 fetched 3/3",
			"0/3 fetched 3/3 building probe-dep-3-d1796055261",
			"1/3 fetched 3/3 building probe-dep-4-d1796055261",
			"2/3 fetched 3/3 building probe-top-d1796055261",
		}, "3/3 fetched 3/3"},
		{"fetch-one.log", []string{
			"0/1 fetched 0/0",
			"0/1 fetched 0/1",
			"0/1 fetched 1/1",
			"0/1 fetched 1/1 building probe-top-d1796055261",
		}, "1/1 fetched 1/1"},
		{"fail.log", []string{
			"0/3 fetched 0/0",
			"0/3 fetched 0/0 building probe-bad-h",
		}, "1/3 fetched 0/0"},
		{"nix-build-command.log", []string{
			"0/? fetched 0/0 building probe-dep-0-f1796055261",
			"1/? fetched 0/0 building probe-dep-1-f1796055261",
			"2/? fetched 0/0 building probe-top-f1796055261",
		}, "3/? fetched 0/0"},
	} {
		var n nixProgress
		got := steps(&n, readRecorded(t, tc.file))
		if strings.Join(got, "\n") != strings.Join(tc.steps, "\n") {
			t.Errorf("%s: steps\n%s\nwant\n%s", tc.file, strings.Join(got, "\n"), strings.Join(tc.steps, "\n"))
		}
		// nix's end: what it began last is built (after a failure nobody asks).
		if end := n.end(); end.String() != tc.end {
			t.Errorf("%s: at the end %q, want %q", tc.file, end, tc.end)
		}
	}
}

// nix 2.3 announces without a count and lists one indented path per line.
func TestNixProgressUncounted(t *testing.T) {
	var n nixProgress
	got := steps(&n, `these derivations will be built:
  /nix/store/aaaa-one.drv
  /nix/store/bbbb-two.drv
these paths will be fetched (1.00 MiB download, 5.00 MiB unpacked):
  /nix/store/cccc-three
building '/nix/store/aaaa-one.drv'...
  /nix/store/dddd-not-a-list-any-more
building '/nix/store/bbbb-two.drv' on 'ssh://builder'...
`)
	want := []string{"0/1 fetched 0/0", "0/2 fetched 0/0", "0/2 fetched 0/1",
		"0/2 fetched 0/1 building one", "1/2 fetched 0/1 building two"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("steps %q, want %q", got, want)
	}
}

// The log file gets nix's bytes as they come; the extra writer and the parser get
// whole lines, whatever the pieces nix's output arrives in.
func TestBuildLogWriter(t *testing.T) {
	text := readRecorded(t, "fetch.log") + "a last line without a newline"
	path := filepath.Join(t.TempDir(), "x.build.log")
	var extra bytes.Buffer
	var reports []BuildProgress
	b := &builder{extra: newLineWriter(&extra)}
	log, err := b.openLog(buildOutput{path: path, progress: func(p BuildProgress) { reports = append(reports, p) }}, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for rest := text; rest != ""; {
		n := min(7, len(rest))
		if _, err := log.Write([]byte(rest[:n])); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
		// The file holds every byte written so far: tail -f follows it.
		if data, _ := os.ReadFile(path); string(data) != text[:len(text)-len(rest)] {
			t.Fatalf("the log lags behind what nix wrote")
		}
	}
	log.note("nixcfs: a note\n")
	log.ended()
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	if extra.String() != text+"\n" {
		t.Errorf("extra writer got\n%q\nwant nix's text\n%q", extra.String(), text+"\n")
	}
	data, _ := os.ReadFile(path)
	if string(data) != text+"nixcfs: a note\n" {
		t.Errorf("log file:\n%s", data)
	}
	if len(reports) != 9 {
		t.Errorf("%d reports, want one per change (8) and one at the end: %v", len(reports), reports)
	}
	if last := reports[len(reports)-1]; last.String() != "3/3 fetched 3/3" {
		t.Errorf("last report %q", last)
	}
}

// Progress is kept for Status at every change and published at most every
// progressInterval, the latest change last.
func TestProgressEventsThrottled(t *testing.T) {
	r := newRegistry(zerolog.Nop())
	c := newRecord("foo")
	run := &buildRun{}
	r.records["foo"], c.running = c, run
	since := time.Now()
	run.progress.Since = since
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := r.watch(ctx, "foo")
	begun := time.Now()
	for i := 1; i <= 20; i++ {
		r.noteProgress("foo", BuildProgress{Built: i, ToBuild: 20})
	}
	r.mu.Lock()
	kept := run.progress
	r.mu.Unlock()
	if kept.Built != 20 || !kept.Since.Equal(since) {
		t.Errorf("kept %+v, want 20 built since the build began", kept)
	}
	var got []string
	for len(got) == 0 || got[len(got)-1] != "20/20 fetched 0/0" {
		select {
		case ev := <-events:
			if ev.Kind != EventProgress {
				t.Fatalf("event %v", ev)
			}
			got = append(got, ev.Value)
		case <-time.After(10 * time.Second):
			t.Fatalf("the last progress never went out: %q", got)
		}
	}
	if len(got) != 2 || got[0] != "1/20 fetched 0/0" || time.Since(begun) < progressInterval {
		t.Errorf("events %q after %v; want the first at once, the last after %v", got, time.Since(begun), progressInterval)
	}
	// A build that ended publishes nothing more.
	r.noteProgress("foo", BuildProgress{Built: 21})
	r.mu.Lock()
	c.running = nil
	r.mu.Unlock()
	r.noteProgress("foo", BuildProgress{Built: 22})
	select {
	case ev := <-events:
		t.Errorf("an event after the build ended: %v", ev)
	case <-time.After(2 * progressInterval):
	}
}
