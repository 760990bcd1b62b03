package ops

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"nixcfs/internal/crash"
)

// DefaultNixOSPath is nixos-container's entry point on a real NixOS host.
const DefaultNixOSPath = "<nixpkgs/nixos>"

// builder runs `nix-env -p PROFILE -I nixos-config=FILE -f NIXOS --set -A system`, the
// command nixos-container runs on create and update. nixosPath is <nixpkgs/nixos> on a
// NixOS host and the project's guest/ in tests and the demo: the same code for both.
type builder struct {
	nixosPath string
	slots     chan struct{} // bounds concurrent builds (20 parallel mkdirs)
	extra     *lineWriter   // Options.BuildOutput; nil for none
}

func newBuilder(nixosPath string, parallel int, extra io.Writer) *builder {
	if nixosPath == "" {
		nixosPath = DefaultNixOSPath
	}
	if parallel < 1 {
		parallel = 1
	}
	return &builder{nixosPath: nixosPath, slots: make(chan struct{}, parallel), extra: newLineWriter(extra)}
}

// build sets the profile to the system built from configFile, writing nix's output to
// out. On failure the profile is unchanged and the error names the log. Cancelling
// ctx kills the build.
//
// nixos-container runs `nix-env -p PROFILE -I nixos-config=FILE -f NIXOS --set -A
// system` in one step, but nix-env swallows evaluation errors (a `throw` such as "The
// option `foo' does not exist." becomes "--set requires exactly one derivation"). So the
// system is built with nix-build, which reports them, and then set with nix-env.
func (b *builder) build(ctx context.Context, profileDir, gcRootDir, configFile string, out buildOutput) error {
	return b.buildWith(ctx, profileDir, gcRootDir, out, func(outLink string) (string, []string) {
		return "nix-build", []string{b.nixosPath, "-I", "nixos-config=" + configFile, "-A", "system", "--out-link", outLink}
	})
}

// buildFlake is create/update --flake: nixos-container builds
// FLAKE#nixosConfigurations."ATTR".config.system.build.toplevel with the nix command
// (flakes enabled for this call), then sets the profile to it.
func (b *builder) buildFlake(ctx context.Context, profileDir, gcRootDir, flake string, out buildOutput) error {
	ref, attr, err := splitFlake(flake)
	if err != nil {
		return err
	}
	return b.buildWith(ctx, profileDir, gcRootDir, out, func(outLink string) (string, []string) {
		return "nix", []string{"--extra-experimental-features", "nix-command flakes", "build", "--out-link", outLink,
			"--", fmt.Sprintf("%s#nixosConfigurations.%q.config.system.build.toplevel", ref, attr)}
	})
}

// outLinkPrefix begins the name of a build's out-link in the container's gc roots;
// the builder's PID ends it.
const outLinkPrefix = ".nixcfs-build-"

// outLinkPID is the PID in the name of an out-link, also of the temporary link
// nix-build makes first (OUT.tmp-PID-RANDOM, renamed to OUT); 0 when the name has none.
func outLinkPID(name string) int {
	pid, _, _ := strings.Cut(strings.TrimPrefix(name, outLinkPrefix), ".")
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// removeOutLink removes a build's out-link and any temporary link of nix-build's
// left beside it (by a build cut short).
func removeOutLink(outLink string) {
	os.Remove(outLink)
	tmps, _ := filepath.Glob(outLink + ".tmp-*")
	for _, tmp := range tmps {
		os.Remove(tmp)
	}
}

// buildWith runs the build command that command gives (it writes its result to
// outLink, a temporary gc root in gcRootDir that holds the system until `nix-env -p
// PROFILE --set` has made it the next generation), in one of the builder's slots.
func (b *builder) buildWith(ctx context.Context, profileDir, gcRootDir string, out buildOutput, command func(outLink string) (string, []string)) error {
	select {
	case b.slots <- struct{}{}:
		defer func() { <-b.slots }()
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, d := range []string{profileDir, gcRootDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("build: %w", err)
		}
	}
	log, err := b.openLog(out, 0o644)
	if err != nil {
		return fmt.Errorf("build: open log: %w", err)
	}
	defer log.Close()
	// This process's own out-link: a build of another process (the command line beside
	// the mount) never takes it for its own, and one a crash left is known by its PID.
	outLink := filepath.Join(gcRootDir, fmt.Sprintf("%s%d", outLinkPrefix, os.Getpid()))
	defer removeOutLink(outLink)
	name, args := command(outLink)
	log.note("$ %s %s\n", name, ShellJoin(args))
	if err := b.run(ctx, log, nil, crash.BuildRunning, name, args...); err != nil {
		return err
	}
	system, err := os.Readlink(outLink)
	if err != nil {
		return fmt.Errorf("%w: %s made no %s: %v", ErrBuildFailed, name, outLink, err)
	}
	crash.At(crash.BuildProfile)
	return b.setProfile(ctx, log, profileDir, system)
}

// splitFlake splits "REF#ATTR"; the attribute is required here, the caller defaults
// it to the container's name as nixos-container does.
func splitFlake(flake string) (ref, attr string, err error) {
	ref, attr, ok := strings.Cut(flake, "#")
	if !ok || ref == "" || attr == "" || strings.ContainsAny(attr, "\"#") {
		return "", "", fmt.Errorf("%w: flake %q: want FLAKE#ATTR", ErrInvalid, flake)
	}
	return ref, attr, nil
}

// CheckFlakes tells whether this host's nix can build flakes (the nix command, 2.4 or
// later), with a message that says what is missing.
func CheckFlakes() error {
	out, err := exec.Command("nix", "--extra-experimental-features", "nix-command flakes", "flake", "--help").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: --flake needs a nix that builds flakes (2.4 or later, the nix command): %s", ErrInvalid, firstLine(string(out), err))
	}
	return nil
}

func firstLine(s string, err error) string {
	if line, _, _ := strings.Cut(strings.TrimSpace(s), "\n"); line != "" {
		return line
	}
	return err.Error()
}

// setSystem points the profile at an already built system (create --system-path).
func (b *builder) setSystem(ctx context.Context, profileDir, systemPath string, out buildOutput) error {
	if err := os.MkdirAll(profileDir, 0o755); err != nil {
		return fmt.Errorf("set system: %w", err)
	}
	log, err := b.openLog(out, 0o644)
	if err != nil {
		return fmt.Errorf("set system: open log: %w", err)
	}
	defer log.Close()
	return b.setProfile(ctx, log, profileDir, systemPath)
}

func (b *builder) setProfile(ctx context.Context, log *buildLog, profileDir, system string) error {
	return b.nixEnv(ctx, log, profileDir, "--set", system)
}

// nixEnv runs nix-env on the container's profile, with its output in the log.
func (b *builder) nixEnv(ctx context.Context, log *buildLog, profileDir string, args ...string) error {
	args = append([]string{"-p", filepath.Join(profileDir, "system")}, args...)
	log.note("$ nix-env %s\n", ShellJoin(args))
	return b.run(ctx, log, log, "", "nix-env", args...)
}

// switchGeneration points the profile at generation n, with nix-env's output in the
// log.
func (b *builder) switchGeneration(ctx context.Context, profileDir string, n int, out buildOutput) error {
	log, err := b.openLog(out, 0o600)
	if err != nil {
		return fmt.Errorf("switch generation: open log: %w", err)
	}
	defer log.Close()
	return b.nixEnv(ctx, log, profileDir, "--switch-generation", strconv.Itoa(n))
}

// deleteGeneration removes generation n from the profile.
func (b *builder) deleteGeneration(ctx context.Context, profileDir string, n int) error {
	out, err := exec.CommandContext(ctx, "nix-env", "-p", filepath.Join(profileDir, "system"),
		"--delete-generations", strconv.Itoa(n)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("delete generation %d: %s", n, firstLine(string(out), err))
	}
	return nil
}

// run runs a nix command with its diagnostics (stderr) in the log; crashPoint names
// the crash point (package crash) met while it runs.
func (b *builder) run(ctx context.Context, log *buildLog, stdout io.Writer, crashPoint, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	// Stdout and Stderr may be the same writer: exec then writes to it from one
	// goroutine at a time.
	cmd.Stdout, cmd.Stderr = stdout, log
	// nix's builders run as its children: a cancel kills the whole process group. A
	// nixcfs that dies takes the command with it (Pdeathsig), rather than leave it to
	// switch a profile that nobody records.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	// Pdeathsig fires when the thread that started the child ends, not the process:
	// this goroutine keeps its thread until the command is over.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := cmd.Start()
	if err == nil {
		crash.At(crashPoint)
		err = cmd.Wait()
	}
	if err != nil && ctx.Err() != nil { // a command that ended well did its work
		log.note("nixcfs: build cancelled\n")
		return ctx.Err()
	}
	if err != nil {
		log.note("nixcfs: %s failed: %v\n", name, err)
		return fmt.Errorf("%w: %s: %v (see %s)", ErrBuildFailed, name, err, log.Name())
	}
	log.ended()
	return nil
}

// ShellJoin quotes args for a POSIX shell, as a shell user would type them.
func ShellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = ShellQuote(a)
	}
	return strings.Join(quoted, " ")
}

// ShellQuote quotes s for a POSIX shell; plain words stay as they are.
func ShellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@+,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
