package ops

import (
	"context"
	"fmt"
	"os"
	"os/exec"
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
// logPath. On failure the profile is unchanged (nix-env --set only switches after a
// successful build) and the error names the log. Cancelling ctx kills the build.
func (b *builder) build(ctx context.Context, profileDir, configFile, logPath string) error {
	select {
	case b.slots <- struct{}{}:
		defer func() { <-b.slots }()
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := os.MkdirAll(profileDir, 0o755); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("build: open log: %w", err)
	}
	defer logFile.Close()
	args := []string{"-p", profileDir + "/system",
		"-I", "nixos-config=" + configFile,
		"-f", b.nixosPath, "--set", "-A", "system"}
	fmt.Fprintf(logFile, "$ nix-env %s\n", shellJoin(args))
	return b.run(ctx, logFile, "nix-env", args...)
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
	args := []string{"-p", profileDir + "/system", "--set", systemPath}
	fmt.Fprintf(logFile, "$ nix-env %s\n", shellJoin(args))
	return b.run(ctx, logFile, "nix-env", args...)
}

func (b *builder) run(ctx context.Context, logFile *os.File, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
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
