package main

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

func TestWriteAuthorizedKeys(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), authorizedKeysDir)

	steps := []map[string]string{
		{"alice": "ssh-ed25519 AAAA alice\n", "bob": "ssh-ed25519 BBBB bob\nssh-rsa CCCC bob\n"},
		{"alice": "ssh-ed25519 DDDD alice-new\n"}, // bob no longer configured
		{},
	}
	for i, want := range steps {
		if err := writeAuthorizedKeys(dir, want); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		entries, err := os.ReadDir(dir)
		must(t, err)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		var wantNames []string
		for name := range want {
			wantNames = append(wantNames, name)
		}
		sort.Strings(wantNames)
		if len(names) != len(wantNames) {
			t.Fatalf("step %d: files %v, want %v", i, names, wantNames)
		}
		for j := range names {
			if names[j] != wantNames[j] {
				t.Fatalf("step %d: files %v, want %v", i, names, wantNames)
			}
		}
		for name, content := range want {
			path := filepath.Join(dir, name)
			got, err := os.ReadFile(path)
			if err != nil || string(got) != content {
				t.Errorf("step %d: %s = %q, %v; want %q", i, name, got, err, content)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o444 {
				t.Errorf("step %d: %s mode %v, %v; want 0444", i, name, fi.Mode(), err)
			}
		}
	}
}

func TestReplaceSymlink(t *testing.T) {
	t.Parallel()
	link := filepath.Join(t.TempDir(), "run", "current-system")
	for _, target := range []string{"/nix/store/a-system", "/nix/store/b-system"} {
		must(t, replaceSymlink(target, link))
		if got, err := os.Readlink(link); err != nil || got != target {
			t.Errorf("current-system -> %q, %v; want %s", got, err, target)
		}
	}
}
