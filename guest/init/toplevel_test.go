package main

import (
	"debug/elf"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// staticBusybox is Debian's busybox-static (make deps installs it); tests
// that need a real one skip without it.
func staticBusybox(t *testing.T) string { return staticTool(t, "/bin/busybox", "busybox-static") }

// staticBash is Debian's bash-static (make deps installs it).
func staticBash(t *testing.T) string { return staticTool(t, "/bin/bash-static", "bash-static") }

// staticTool is the static executable at path, which Debian's package pkg has.
func staticTool(t *testing.T, path, pkg string) string {
	t.Helper()
	if err := checkStatic(path); err != nil {
		t.Skipf("%s: %v (apt-get install %s)", path, err, pkg)
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
		"bash":           staticBash(t),
		"system":         "x86_64-linux",
		// system.extraDependencies, as Nix passes a list.
		"extraDependencies": "/nix/store/aaa-dep-1 /nix/store/bbb-dep-2",
	}
	var stderr strings.Builder
	if code := runBuildToplevel(func(k string) string { return env[k] }, &stderr); code != 0 {
		t.Fatalf("build-toplevel exited %d: %s", code, stderr.String())
	}

	out := env["out"]
	if deps, err := os.ReadFile(filepath.Join(out, "extra-dependencies")); err != nil || string(deps) != env["extraDependencies"] {
		t.Errorf("extra-dependencies = %q, %v; want %q, as NixOS writes it", deps, err, env["extraDependencies"])
	}
	for _, link := range []string{"nixcfs-init", "bin/switch-to-configuration"} {
		target, err := os.Readlink(filepath.Join(out, link))
		if err != nil || target != env["init"] {
			t.Errorf("%s -> %q, %v; want a link to %s", link, target, err, env["init"])
		}
	}
	// What NixOS's container@.service reads: the platform, as NixOS writes it.
	if platform, err := os.ReadFile(filepath.Join(out, "system")); err != nil || string(platform) != "x86_64-linux" {
		t.Errorf("system = %q, %v; want x86_64-linux without a newline", platform, err)
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
	if target, err := os.Readlink(filepath.Join(bin, "bash")); err != nil || target != env["bash"] {
		t.Errorf("sw/bin/bash -> %q, %v; want %s (not busybox)", target, err, env["bash"])
	}
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

// init is a script, as NixOS's stage 2 is: nspawn runs it, and NixOS's
// container init script sources it with bash. Both ways it must exec the
// system's nixcfs-init, which finds its system from that path.
func TestBuildToplevelInitScript(t *testing.T) {
	t.Parallel()
	busybox, bash := staticBusybox(t), staticBash(t)
	dir := t.TempDir()
	configFile := filepath.Join(dir, ".attr-config")
	must(t, os.WriteFile(configFile, testConfig{hostName: "foo"}.json(t), 0o644))
	// A stand-in for the guest's binary that tells how it was started.
	fakeInit := filepath.Join(dir, "fake-init")
	writeExecutable(t, fakeInit, []byte("#!"+busybox+" sh\necho \"started as $0 with $#\"\n"), 0o755)
	out := filepath.Join(dir, "out")
	env := map[string]string{
		"out": out, "init": fakeInit, "configJSONPath": configFile,
		"busybox": busybox, "bash": bash, "system": "x86_64-linux",
	}
	var stderr strings.Builder
	if code := runBuildToplevel(func(k string) string { return env[k] }, &stderr); code != 0 {
		t.Fatalf("build-toplevel exited %d: %s", code, stderr.String())
	}
	script, err := os.ReadFile(filepath.Join(out, "init"))
	must(t, err)
	if first, _, _ := strings.Cut(string(script), "\n"); first != "#!"+out+"/sw/bin/sh" {
		t.Errorf("init's first line %q; want the system's own sh", first)
	}
	if fi, err := os.Stat(filepath.Join(out, "init")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("init is not executable: %v", err)
	}
	want := "started as " + filepath.Join(out, "nixcfs-init") + " with 0\n"
	// Run, as nspawn does.
	if got, err := exec.Command(filepath.Join(out, "init")).Output(); err != nil || string(got) != want {
		t.Errorf("running init: %q, %v; want %q", got, err, want)
	}
	// Sourced by bash with an argument, as NixOS's container init script does.
	got, err := exec.Command(bash, "-e", "-c", `set +e; . "$1"; echo not replaced`, "container-init", filepath.Join(out, "init")).Output()
	if err != nil || string(got) != want {
		t.Errorf("bash sourcing init: %q, %v; want %q", got, err, want)
	}
}

func TestStage2ScriptPathTooLong(t *testing.T) {
	t.Parallel()
	if _, err := stage2Script("/nix/store/" + strings.Repeat("x", 300)); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("stage2Script with a 300-byte path: %v", err)
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
			"configJSONPath": configFile, "busybox": busybox, "bash": "/bin/bash-static", "system": "x86_64-linux",
		}
		var stderr strings.Builder
		code := runBuildToplevel(func(k string) string { return env[k] }, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), "apt-get install busybox-static") {
			t.Errorf("build-toplevel with busybox %s: exit %d, stderr %q", busybox, code, stderr.String())
		}
	}
}

func TestBuildToplevelRejectsADynamicBash(t *testing.T) {
	t.Parallel()
	busybox := staticBusybox(t)
	dir := t.TempDir()
	configFile := filepath.Join(dir, ".attr-config")
	must(t, os.WriteFile(configFile, testConfig{hostName: "foo"}.json(t), 0o644))
	bashes := []string{filepath.Join(dir, "missing")}
	if err := checkStatic("/bin/sh"); err != nil && strings.Contains(err.Error(), "dynamically linked") {
		bashes = append(bashes, "/bin/sh") // Debian's dash
	}
	for _, bash := range bashes {
		env := map[string]string{
			"out": filepath.Join(dir, "out"), "init": "/nix/store/xxx-init",
			"configJSONPath": configFile, "busybox": busybox, "bash": bash, "system": "x86_64-linux",
		}
		var stderr strings.Builder
		code := runBuildToplevel(func(k string) string { return env[k] }, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), "apt-get install bash-static") {
			t.Errorf("build-toplevel with bash %s: exit %d, stderr %q", bash, code, stderr.String())
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

// A program written by writeProgram (as build-toplevel writes init, and tests
// their stand-ins) can be run at once however busily other goroutines start
// commands meanwhile, as parallel tests do: no child inherits its write fd,
// which would make the exec fail with ETXTBSY. Not parallel: it is its own
// fork storm.
func TestWriteProgramRunsWhileOthersFork(t *testing.T) {
	dir := t.TempDir()
	var stop atomic.Bool
	var forkers sync.WaitGroup
	for range 4 {
		forkers.Add(1)
		go func() {
			defer forkers.Done()
			for !stop.Load() {
				_ = exec.Command("/bin/true").Run()
			}
		}()
	}
	defer func() { stop.Store(true); forkers.Wait() }()

	deadline := time.Now().Add(time.Second)
	runs := 0
	for ; runs < 100 || time.Now().Before(deadline); runs++ {
		program := filepath.Join(dir, strconv.Itoa(runs))
		must(t, writeProgram(program, []byte("#!/bin/sh\necho started\n"), 0o755))
		got, err := exec.Command(program).Output()
		if errors.Is(err, syscall.ETXTBSY) {
			t.Fatalf("run %d: %v: a child forked meanwhile held the program's write fd", runs, err)
		}
		if err != nil || string(got) != "started\n" {
			t.Fatalf("run %d: %q, %v", runs, got, err)
		}
	}
	t.Logf("%d programs written and run", runs)
}
