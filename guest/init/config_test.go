package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	system := writeSystem(t, t.TempDir(), testConfig{
		hostName: "foo",
		hello:    &HelloConfig{Enable: true, Port: 8080, Message: "hi"},
		keys:     map[string][]string{"alice": {"ssh-ed25519 AAAA alice@a", "ssh-rsa BBBB alice@b\n"}, "bob": nil},
	})
	cfg, err := loadConfig(system)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Networking.HostName != "foo" || cfg.Networking.UseDHCP {
		t.Errorf("networking = %+v", cfg.Networking)
	}
	if want := (HelloConfig{Enable: true, Port: 8080, Message: "hi"}); cfg.Services.Hello != want {
		t.Errorf("hello = %+v, want %+v", cfg.Services.Hello, want)
	}
	if cfg.System.StateVersion != "25.11" {
		t.Errorf("stateVersion = %q", cfg.System.StateVersion)
	}
	keys := cfg.authorizedKeys()
	if want := "ssh-ed25519 AAAA alice@a\nssh-rsa BBBB alice@b\n"; keys["alice"] != want {
		t.Errorf("alice's keys = %q, want %q", keys["alice"], want)
	}
	if _, ok := keys["bob"]; ok {
		t.Errorf("bob has no keys but gets a file: %q", keys["bob"])
	}
}

func TestParseConfigRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, json, want string
	}{
		{"not json", `{`, "unexpected end"},
		{"port out of range", `{"services":{"hello":{"enable":true,"port":70000}}}`, "not a TCP port"},
		{"user name with slash", `{"users":{"users":{"../root":{}}}}`, "not a usable user name"},
		{"wrong type", `{"networking":{"hostName":42}}`, "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseConfig(%s) = %v, want an error containing %q", tc.json, err, tc.want)
			}
		})
	}
}

func TestLoadConfigMissing(t *testing.T) {
	t.Parallel()
	_, err := loadConfig(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("loadConfig of an empty directory = %v, want an error naming config.json", err)
	}
}

// systemPathOf follows the profile's symlink chain to the system, as init
// (SYSTEM/init) and switch-to-configuration (SYSTEM/bin/...) do.
func TestSystemPathOf(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	system := writeSystem(t, filepath.Join(dir, "store", "abc-nixos-system-foo"), testConfig{hostName: "foo"})
	profiles := filepath.Join(dir, "profiles")
	must(t, os.MkdirAll(profiles, 0o755))
	must(t, os.Symlink(system, filepath.Join(profiles, "system-1-link")))
	must(t, os.Symlink("system-1-link", filepath.Join(profiles, "system")))
	want, err := filepath.EvalSymlinks(system)
	must(t, err)

	for _, tc := range []struct {
		program string
		levels  int
	}{
		{filepath.Join(profiles, "system", "init"), 1},
		{filepath.Join(profiles, "system", "bin", "switch-to-configuration"), 2},
		{filepath.Join(system, "bin", "switch-to-configuration"), 2},
	} {
		got, err := systemPathOf(tc.program, tc.levels)
		if err != nil || got != want {
			t.Errorf("systemPathOf(%s, %d) = %q, %v; want %q", tc.program, tc.levels, got, err, want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
