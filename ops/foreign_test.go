package ops

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// A build log another process writes is read as it grows, a line cut in two
// included, and from its start again once a new build truncated it.
func TestForeignLogFollowsGrowthAndTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build.log")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var out bytes.Buffer
	l := &foreignLog{path: path, lines: nixLines{extra: newLineWriter(&out)}}
	defer l.close()
	if _, moved := l.read(); moved {
		t.Error("an empty log moved the progress")
	}
	w.WriteString("these 3 derivations will be built:\n  /nix/store/a-x.drv\nbuilding '/nix/store/aaaa-dep-1.drv'")
	if p, moved := l.read(); !moved || p.ToBuild != 3 || p.Building != "" {
		t.Errorf("after the first lines: %+v %v", p, moved)
	}
	w.WriteString("...\nbuilding '/nix/store/bbbb-dep-2.drv'...\n")
	if p, moved := l.read(); !moved || p.Built != 1 || p.Building != "dep-2" {
		t.Errorf("after the cut line's end: %+v %v", p, moved)
	}
	if _, moved := l.read(); moved {
		t.Error("nothing new moved the progress")
	}
	// A new build truncates the log and writes it again, shorter.
	w.Truncate(0)
	w.Seek(0, 0)
	w.WriteString("this derivation will be built:\n")
	if p, moved := l.read(); !moved || p.ToBuild != 1 || p.Built != 0 || p.Building != "" {
		t.Errorf("after a truncation: %+v %v", p, moved)
	}
	want := "these 3 derivations will be built:\n  /nix/store/a-x.drv\nbuilding '/nix/store/aaaa-dep-1.drv'...\n" +
		"building '/nix/store/bbbb-dep-2.drv'...\nthis derivation will be built:\n"
	if out.String() != want {
		t.Errorf("lines passed on:\n%q\nwant\n%q", out.String(), want)
	}
}

// A log that does not exist yet is no progress, and is read once it does.
func TestForeignLogMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build.log")
	l := &foreignLog{path: path}
	defer l.close()
	if _, moved := l.read(); moved {
		t.Error("a missing log moved the progress")
	}
	os.WriteFile(path, []byte("this path will be fetched (1 MiB download):\n"), 0o600)
	if p, moved := l.read(); !moved || p.ToFetch != 1 {
		t.Errorf("%+v %v", p, moved)
	}
}
