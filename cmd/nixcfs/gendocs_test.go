package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"nixcfs/docs"
	nixfs "nixcfs/fs"
)

// gendocs writes what `nixcfs gen-docs` writes into a temporary directory.
func gendocs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if r := self(t, "gen-docs", "--man", filepath.Join(dir, "man"), "--completions", filepath.Join(dir, "completions")); r.code != 0 {
		t.Fatalf("gen-docs: exit %d\n%s", r.code, r.stderr)
	}
	return dir
}

// nixcfs(1) has every verb but the hidden ones, with every flag; groff reads both
// pages without a warning (-Wfile: the test host's fresh /etc has no man.local).
func TestManPages(t *testing.T) {
	dir := gendocs(t)
	page1, err := os.ReadFile(filepath.Join(dir, "man", "man1", "nixcfs.1"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(page1)
	if !strings.Contains(text, ".TH \"nixcfs\" \"1\"") && !strings.Contains(text, ".TH nixcfs 1") {
		t.Errorf("nixcfs.1 has no .TH nixcfs 1 line:\n%.300s", text)
	}
	root := newRoot()
	for _, c := range root.Commands() {
		inPage := strings.Contains(text, ".SS nixcfs "+c.Name()+" ")
		if c.Hidden == inPage {
			t.Errorf("nixcfs.1: verb %s hidden=%v, but its section is there=%v", c.Name(), c.Hidden, inPage)
		}
		if c.Hidden {
			continue
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(text, "--"+f.Name) {
				t.Errorf("nixcfs.1 lacks %s's --%s", c.Name(), f.Name)
			}
		})
	}
	for _, want := range []string{"--version", "NIXCFS_NIXOS_PATH", "EXIT STATUS", `\fBnixcfs\fP(5)`} {
		if !strings.Contains(text, want) {
			t.Errorf("nixcfs.1 lacks %q", want)
		}
	}

	if _, err := exec.LookPath("groff"); err != nil {
		t.Skip("needs groff (make deps installs groff-base) to check the pages")
	}
	for _, page := range []string{"man1/nixcfs.1", "man5/nixcfs.5"} {
		cmd := exec.Command("groff", "-t", "-man", "-Tutf8", "-ww", "-Wfile", "-z", filepath.Join(dir, "man", page))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("groff %s: %v\n%s", page, err, stderr.String())
		}
	}
}

// nixcfs(5) is docs/filesystem.md, and it describes every file the mount has: the
// container files fs/container.go lists and the root's events file.
func TestFilesystemPageHasEveryFile(t *testing.T) {
	dir := gendocs(t)
	page5, err := os.ReadFile(filepath.Join(dir, "man", "man5", "nixcfs.5"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page5), "the files of a nixcfs mount") {
		t.Errorf("nixcfs.5 is not docs/filesystem.md:\n%.300s", page5)
	}
	for _, name := range nixfs.FileNames() {
		if !strings.Contains(docs.Filesystem, "*MNT*/*NAME*/**"+name+"**\n:") {
			t.Errorf("docs/filesystem.md has no entry for NAME/%s", name)
		}
	}
	if !strings.Contains(docs.Filesystem, "*MNT*/**events**\n:") {
		t.Error("docs/filesystem.md has no entry for the events file")
	}
}

// The completion scripts gen-docs writes are the ones `nixcfs completion` prints.
func TestCompletionFilesAreTheCommands(t *testing.T) {
	dir := gendocs(t)
	for _, sh := range shells {
		file, err := os.ReadFile(filepath.Join(dir, "completions", sh.file))
		if err != nil {
			t.Fatal(err)
		}
		if r := self(t, "completion", sh.name); r.code != 0 || r.stdout != string(file) {
			t.Errorf("nixcfs completion %s (exit %d) differs from gen-docs' %s", sh.name, r.code, sh.file)
		}
	}
}

// docs/cli.md names every verb and every flag the command line has, so that it
// cannot fall behind the command's definition.
func TestCLIPageHasEveryVerbAndFlag(t *testing.T) {
	page, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(page)
	for _, c := range newRoot().Commands() {
		if c.Hidden {
			continue
		}
		if !strings.Contains(doc, "`nixcfs "+c.Name()+" ") {
			t.Errorf("docs/cli.md has no heading for %s", c.Name())
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(doc, "`--"+f.Name) {
				t.Errorf("docs/cli.md does not name %s --%s", c.Name(), f.Name)
			}
		})
	}
}
