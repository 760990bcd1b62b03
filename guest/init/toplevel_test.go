package main

import (
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// staticBusybox is Debian's busybox-static (make deps installs it); tests
// that need a real one skip without it.
func staticBusybox(t *testing.T) string {
	t.Helper()
	const path = "/bin/busybox"
	if err := checkStatic(path); err != nil {
		t.Skipf("%s: %v (apt-get install busybox-static)", path, err)
	}
	return path
}

func TestBuildToplevel(t *testing.T) {
	t.Parallel()
	busybox := staticBusybox(t)
	dir := t.TempDir()
	configFile := filepath.Join(dir, ".attr-config")
	must(t, os.WriteFile(configFile, testConfig{hostName: "foo"}.json(t), 0o644))
	env := map[string]string{
		"out":            filepath.Join(dir, "out"),
		"init":           "/nix/store/xxx-nixcfs-guest-init",
		"configJSONPath": configFile,
		"nixosVersion":   "25.11.nixcfs",
		"busybox":        busybox,
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

	bin := filepath.Join(out, "sw", "bin")
	if target, err := os.Readlink(filepath.Join(bin, "busybox")); err != nil || target != busybox {
		t.Errorf("sw/bin/busybox -> %q, %v; want %s", target, err, busybox)
	}
	for _, applet := range []string{"sh", "su", "login", "hostname", "env", "ls", "cat", "ps", "ip", "nologin"} {
		if target, err := os.Readlink(filepath.Join(bin, applet)); err != nil || target != "busybox" {
			t.Errorf("sw/bin/%s -> %q, %v; want busybox", applet, target, err)
		}
	}
	for _, skipped := range []string{"init", "linuxrc"} {
		if _, err := os.Lstat(filepath.Join(bin, skipped)); err == nil {
			t.Errorf("sw/bin/%s exists; init is the guest's own", skipped)
		}
	}
	// The links run their applet.
	got, err := exec.Command(filepath.Join(bin, "echo"), "applet", "runs").Output()
	if err != nil || string(got) != "applet runs\n" {
		t.Errorf("sw/bin/echo = %q, %v", got, err)
	}
}

func TestBuildToplevelRejectsABadBusybox(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	configFile := filepath.Join(dir, ".attr-config")
	must(t, os.WriteFile(configFile, testConfig{hostName: "foo"}.json(t), 0o644))
	notELF := filepath.Join(dir, "busybox")
	writeExecutable(t, notELF, []byte("#!/bin/sh\necho sh\n"), 0o755)
	for _, busybox := range []string{notELF, filepath.Join(dir, "missing")} {
		env := map[string]string{
			"out": filepath.Join(dir, "out"), "init": "/nix/store/xxx-init",
			"configJSONPath": configFile, "busybox": busybox,
		}
		var stderr strings.Builder
		code := runBuildToplevel(func(k string) string { return env[k] }, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), "apt-get install busybox-static") {
			t.Errorf("build-toplevel with busybox %s: exit %d, stderr %q", busybox, code, stderr.String())
		}
	}
}

func TestCheckStatic(t *testing.T) {
	t.Parallel()
	must(t, checkStatic(staticBusybox(t)))
	// Debian's own /bin/sh (dash) is dynamically linked.
	if f, err := elf.Open("/bin/sh"); err == nil {
		dynamic := false
		for _, p := range f.Progs {
			dynamic = dynamic || p.Type == elf.PT_INTERP
		}
		f.Close()
		if err := checkStatic("/bin/sh"); dynamic && (err == nil || !strings.Contains(err.Error(), "dynamically linked")) {
			t.Errorf("checkStatic(/bin/sh, dynamic) = %v", err)
		}
	}
}

func TestParseApplets(t *testing.T) {
	t.Parallel()
	applets, err := parseApplets([]byte("[\n[[\nbusybox\nenv\nhostname\nid\ninit\nlinuxrc\nlogin\nls\nsh\nsu\nsh\n"))
	must(t, err)
	if got := strings.Join(applets, " "); got != "[ [[ env hostname id login ls sh su" {
		t.Errorf("applets = %s", got)
	}
	if _, err := parseApplets([]byte("sh\nls\n")); err == nil || !strings.Contains(err.Error(), "no applet su, login, hostname, env, id") {
		t.Errorf("parseApplets without su... = %v", err)
	}
	if _, err := parseApplets([]byte("sh\nsu\nlogin\nhostname\nenv\nid\n../x\n")); err == nil {
		t.Errorf("parseApplets accepted ../x")
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
