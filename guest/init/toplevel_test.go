package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildToplevel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	configFile := filepath.Join(dir, ".attr-config")
	must(t, os.WriteFile(configFile, testConfig{hostName: "foo"}.json(t), 0o644))
	env := map[string]string{
		"out":            filepath.Join(dir, "out"),
		"init":           "/nix/store/xxx-nixcfs-guest-init",
		"configJSONPath": configFile,
		"nixosVersion":   "25.11.nixcfs",
	}
	if code := runBuildToplevel(func(k string) string { return env[k] }, io.Discard); code != 0 {
		t.Fatalf("build-toplevel exited %d", code)
	}

	out := env["out"]
	for _, link := range []string{"init", "bin/switch-to-configuration"} {
		target, err := os.Readlink(filepath.Join(out, link))
		if err != nil || target != env["init"] {
			t.Errorf("%s -> %q, %v; want a link to %s", link, target, err, env["init"])
		}
	}
	version, err := os.ReadFile(filepath.Join(out, "nixos-version"))
	if err != nil || string(version) != "25.11.nixcfs" {
		t.Errorf("nixos-version = %q, %v", version, err)
	}
	data, err := os.ReadFile(filepath.Join(out, "config.json"))
	must(t, err)
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	if host := cfg["networking"].(map[string]any)["hostName"]; host != "foo" {
		t.Errorf("config.json hostName = %v", host)
	}
}

func TestBuildToplevelNeedsItsEnvironment(t *testing.T) {
	t.Parallel()
	var stderr strings.Builder
	code := runBuildToplevel(func(string) string { return "" }, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "is not set") {
		t.Errorf("build-toplevel without environment: exit %d, stderr %q", code, stderr.String())
	}
}
