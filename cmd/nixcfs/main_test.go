package main

// The command line's definition, without containers: help, errors, --version, the
// flag syntax nixos-container users type, and `mount` on a host without systemd.
// These run anywhere; the verbs against the real stack are in cli_test.go.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestMain lets this test binary be nixcfs itself (NIXCFS_TEST_MAIN=1), for the shells
// and processes the tests start.
func TestMain(m *testing.M) {
	if os.Getenv("NIXCFS_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// selfBinary is a directory holding `nixcfs`, a script that runs this test binary as
// nixcfs, for PATH.
func selfBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := "#!/bin/sh\nNIXCFS_TEST_MAIN=1 exec '" + exe + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "nixcfs"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// self runs this binary as nixcfs with args.
func self(t *testing.T, args ...string) cliResult {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "NIXCFS_TEST_MAIN=1")
	return gather(t, cmd)
}

// gather runs cmd, a nixcfs, and gathers what it wrote and how it exited.
func gather(t *testing.T, cmd *exec.Cmd) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("nixcfs %v: %v", cmd.Args[1:], err)
	}
	return cliResult{out.String(), errb.String(), code}
}

func TestUsageAndErrors(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string // a regexp
	}{
		{nil, 1, `^Usage: nixcfs VERB \[flags\] \[NAME\]\n(.|\n)*  mount +serve the containers`},
		{[]string{"--help"}, 0, `Verbs:\n  mount `},
		{[]string{"-help"}, 0, `Verbs:\n  mount `},
		{[]string{"-h"}, 0, `Verbs:\n  mount `},
		{[]string{"help"}, 0, `Verbs:\n  mount `},
		{[]string{"frobnicate"}, 1, `^nixcfs: unknown action ‘frobnicate’\n$`},
		{[]string{"--frob"}, 1, `^nixcfs: unknown action ‘--frob’\n$`},
		{[]string{"start", "--help"}, 0, `^Usage: nixcfs start NAME\n\nstart a container; returns once it is up\.\n\nFlags:\n(.|\n)*--conf-dir`},
		{[]string{"start", "-help"}, 0, `^Usage: nixcfs start NAME\n`},
		{[]string{"run", "-h"}, 0, `^Usage: nixcfs run NAME -- COMMAND\.\.\.\n`},
		{[]string{"mount", "--help"}, 0, `^Usage: nixcfs mount \[flags\] \[MOUNTPOINT\]\n\nServes the host's NixOS containers(.|\n)*READY=1(.|\n)*\nFlags:\n(.|\n)*-allow-other`},
		{[]string{"start"}, 1, `^nixcfs: no container name specified\n$`},
		{[]string{"run"}, 1, `^nixcfs: no container name specified\n$`},
		{[]string{"start", "a", "b"}, 1, `^nixcfs: start takes one container name, not \["a" "b"\]\n$`},
		{[]string{"create", "x", "--nosuch"}, 1, `^nixcfs: unknown flag: --nosuch\nUsage: nixcfs create NAME \[flags\]`},
		{[]string{"create", "x", "-nosuch"}, 1, `^nixcfs: unknown shorthand flag`},
		{[]string{"create", "x", "--config"}, 1, `^nixcfs: flag needs an argument: --config\n`},
		{[]string{"mount", "a", "b"}, 1, `^nixcfs: mount takes one mount point, not \["a" "b"\]\n$`},
		{[]string{"unit"}, 1, `^nixcfs: unit: expected prestart, start, reload or poststop\n$`},
		{[]string{"unit", "start"}, 1, `^nixcfs: no container name specified\n$`},
		{[]string{"completion", "tcsh"}, 1, `^nixcfs: completion: no completion for "tcsh": bash, zsh or fish\n$`},
	} {
		r := self(t, tc.args...)
		if r.code != tc.code || !regexp.MustCompile(tc.stderr).MatchString(r.stderr) {
			t.Errorf("nixcfs %q: exit %d, stderr:\n%s\nwant exit %d, stderr matching %q", tc.args, r.code, r.stderr, tc.code, tc.stderr)
		}
		if r.stdout != "" {
			t.Errorf("nixcfs %q: stdout %q, want none", tc.args, r.stdout)
		}
	}
}

// The hidden verbs stay out of help.
func TestHiddenVerbs(t *testing.T) {
	r := self(t, "--help")
	for _, v := range []string{"unit", "gen-docs", "__complete"} {
		if strings.Contains(r.stderr, "  "+v+" ") {
			t.Errorf("--help lists %s:\n%s", v, r.stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	r := self(t, "--version")
	// This test binary has no -ldflags, and -buildvcs may be off: the fallbacks.
	want := `^nixcfs \S+ \(commit \S+, ` + regexp.QuoteMeta(runtime.Version()) + ` ` + runtime.GOOS + `/` + runtime.GOARCH + `\)\n$`
	if r.code != 0 || !regexp.MustCompile(want).MatchString(r.stdout) {
		t.Errorf("--version: exit %d, stdout %q, want %q", r.code, r.stdout, want)
	}
}

// Flags go before or after NAME, with one dash or two, as they always have (Go's
// flag package) and as nixos-container's getopt takes them; after -- nothing is a flag.
func TestGoFlagStyle(t *testing.T) {
	root := newRoot()
	create := findVerb(root, "create")
	for _, tc := range []struct{ in, want []string }{
		{[]string{"foo", "-config", "x", "-auto-start"}, []string{"foo", "--config", "x", "--auto-start"}},
		{[]string{"-config=a b", "foo"}, []string{"--config=a b", "foo"}},
		{[]string{"-h", "-x", "-nosuch"}, []string{"-h", "-x", "-nosuch"}},
		{[]string{"foo", "--", "-config"}, []string{"foo", "--", "-config"}},
		{[]string{"--config", "-", "foo"}, []string{"--config", "-", "foo"}},
	} {
		if got := goFlagStyle(create, tc.in); strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") {
			t.Errorf("goFlagStyle(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// On a host whose PID 1 is not systemd, mount says so and what to do, before it makes
// anything: here a private PID and mount namespace without /run/systemd stands for
// such a host.
func TestMountWithoutSystemd(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, for a private mount namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	exe, _ := os.Executable()
	mnt := t.TempDir()
	cmd := exec.Command("unshare", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private",
		"sh", "-c", `mount -t tmpfs tmpfs /run && exec "$0" mount "$1"`, exe, mnt)
	cmd.Env = append(os.Environ(), "NIXCFS_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("mount without systemd: %v\n%s", err, out)
	}
	want := `^nixcfs: systemd is not running as PID 1 on this host \(PID 1 is \S+\): .*"make demo"`
	if !regexp.MustCompile(want).Match(out) || strings.Contains(string(out), "bus") {
		t.Errorf("mount without systemd said:\n%s\nwant %q", out, want)
	}
}
