package ops

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultNixOSPath is nixos-container's entry point on a real NixOS host.
const DefaultNixOSPath = "<nixpkgs/nixos>"

// builder runs `nix-env -p PROFILE -I nixos-config=FILE -f NIXOS --set -A system`, the
// command nixos-container runs on create and update. nixosPath is <nixpkgs/nixos> on a
// NixOS host and the project's guest/ in tests and the demo: the same code for both.
type builder struct {
	nixosPath string
	slots     chan struct{} // bounds concurrent builds (20 parallel mkdirs)
}

func newBuilder(nixosPath string, parallel int) *builder {
	if nixosPath == "" {
		nixosPath = DefaultNixOSPath
	}
	if parallel < 1 {
		parallel = 1
	}
	return &builder{nixosPath: nixosPath, slots: make(chan struct{}, parallel)}
}

// build sets the profile to the system built from configFile, writing nix's output to
// logPath. On failure the profile is unchanged and the error names the log. Cancelling
// ctx kills the build.
//
// nixos-container runs `nix-env -p PROFILE -I nixos-config=FILE -f NIXOS --set -A
// system` in one step, but nix-env swallows evaluation errors (a `throw` such as "The
// option `foo' does not exist." becomes "--set requires exactly one derivation"). So the
// system is built with nix-build, which reports them, held by a temporary gc root in
// gcRootDir until `nix-env -p PROFILE --set` has made it the next generation.
func (b *builder) build(ctx context.Context, profileDir, gcRootDir, configFile, logPath string) error {
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
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("build: open log: %w", err)
	}
	defer logFile.Close()
	outLink := filepath.Join(gcRootDir, ".nixcfs-build")
	defer os.Remove(outLink)
	args := []string{b.nixosPath, "-I", "nixos-config=" + configFile, "-A", "system", "--out-link", outLink}
	fmt.Fprintf(logFile, "$ nix-build %s\n", shellJoin(args))
	if err := b.run(ctx, logFile, nil, "nix-build", args...); err != nil {
		return err
	}
	system, err := os.Readlink(outLink)
	if err != nil {
		return fmt.Errorf("%w: nix-build made no %s: %v", ErrBuildFailed, outLink, err)
	}
	return b.setProfile(ctx, logFile, profileDir, system)
}

// buildFlake is create/update --flake: nixos-container builds
// FLAKE#nixosConfigurations."ATTR".config.system.build.toplevel with the nix command
// (flakes enabled for this call), then sets the profile to it.
func (b *builder) buildFlake(ctx context.Context, profileDir, gcRootDir, flake, logPath string) error {
	ref, attr, err := splitFlake(flake)
	if err != nil {
		return err
	}
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
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("build: open log: %w", err)
	}
	defer logFile.Close()
	outLink := filepath.Join(gcRootDir, ".nixcfs-build")
	defer os.Remove(outLink)
	args := []string{"--extra-experimental-features", "nix-command flakes", "build", "--out-link", outLink,
		"--", fmt.Sprintf("%s#nixosConfigurations.%q.config.system.build.toplevel", ref, attr)}
	fmt.Fprintf(logFile, "$ nix %s\n", shellJoin(args))
	if err := b.run(ctx, logFile, nil, "nix", args...); err != nil {
		return err
	}
	system, err := os.Readlink(outLink)
	if err != nil {
		return fmt.Errorf("%w: nix build made no %s: %v", ErrBuildFailed, outLink, err)
	}
	return b.setProfile(ctx, logFile, profileDir, system)
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
func (b *builder) setSystem(ctx context.Context, profileDir, systemPath, logPath string) error {
	if err := os.MkdirAll(profileDir, 0o755); err != nil {
		return fmt.Errorf("set system: %w", err)
	}
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("set system: open log: %w", err)
	}
	defer logFile.Close()
	return b.setProfile(ctx, logFile, profileDir, systemPath)
}

func (b *builder) setProfile(ctx context.Context, logFile *os.File, profileDir, system string) error {
	args := []string{"-p", filepath.Join(profileDir, "system"), "--set", system}
	fmt.Fprintf(logFile, "$ nix-env %s\n", shellJoin(args))
	return b.run(ctx, logFile, logFile, "nix-env", args...)
}

// run runs a nix command with its diagnostics (stderr) in the log.
func (b *builder) run(ctx context.Context, logFile *os.File, stdout io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = stdout, logFile
	// nix-env's builders run as its children: cancel the whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		fmt.Fprintf(logFile, "nixcfs: build cancelled\n")
		return ctx.Err()
	}
	if err != nil {
		fmt.Fprintf(logFile, "nixcfs: %s failed: %v\n", name, err)
		return fmt.Errorf("%w: %s: %v (see %s)", ErrBuildFailed, name, err, logFile.Name())
	}
	return nil
}

func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}

func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@+,<>", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
