package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"nixcfs/ops"
)

func TestProgressText(t *testing.T) {
	for _, tc := range []struct {
		p    ops.BuildProgress
		want string
	}{
		{ops.BuildProgress{}, "foo: evaluating"},
		{ops.BuildProgress{ToBuild: 5}, "foo: finishing"},
		{ops.BuildProgress{Built: 2, ToBuild: 5, Building: "dep-3"}, "foo: building dep-3"},
		{ops.BuildProgress{ToBuild: 5, Fetched: 1, ToFetch: 4}, "foo: fetching, fetched 1/4"},
		{ops.BuildProgress{Built: 1, ToBuild: 5, Fetched: 4, ToFetch: 4, Building: strings.Repeat("x", 50)},
			"foo: building " + strings.Repeat("x", 39) + "…, fetched 4/4"},
	} {
		if got := progressText("foo", "evaluating", tc.p); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.p, got, tc.want)
		}
	}
}

// create's addresses come before nix's lines, as with nixos-container.
func TestHeldOutput(t *testing.T) {
	var b bytes.Buffer
	h := newHeldOutput(&b, true)
	h.Write([]byte("these 4 derivations will be built:\n"))
	b.WriteString("host IP is 10.233.1.1, container IP is 10.233.1.2\n")
	h.release()
	h.Write([]byte("building ...\n"))
	h.release()
	if want := "host IP is 10.233.1.1, container IP is 10.233.1.2\nthese 4 derivations will be built:\nbuilding ...\n"; b.String() != want {
		t.Errorf("%q, want %q", b.String(), want)
	}
	var nilHeld *heldOutput
	nilHeld.release() // a terminal's session has none
}

// depsConfig is configuration text (for --config) whose build has several
// derivations: three dependencies, then, if gate is not "", one that waits until the
// file gate exists (a test holds the build there while it looks), then the system.
// tag makes them new, never found in the store already.
func depsConfig(tag, gate string) string {
	deps := fmt.Sprintf(`map (i: pkgs.runCommand "dep-${toString i}-%s" { } "echo dep ${toString i}; echo ${toString i} > $out") [ 1 2 3 ]`, tag)
	if gate == "" {
		return "system.extraDependencies = " + deps + ";"
	}
	return fmt.Sprintf(`system.extraDependencies = [ (pkgs.runCommand "gate-%s" { deps = %s; } "echo waiting for %s; until [ -e %s ]; do sleep 0.1; done; echo $deps > $out") ];`,
		tag, deps, gate, gate)
}

// failingConfig has a derivation whose builder fails, with words of its own.
func failingConfig(tag string) string {
	return fmt.Sprintf(`system.extraDependencies = [ (pkgs.runCommand "bad-%s" { } "echo this builder fails on purpose; exit 3") ];`, tag)
}

func newTag() string { return fmt.Sprint(time.Now().UnixNano()) }

// Without a terminal, nix's own lines go to stderr as they come, as nixos-container
// shows them: after create's addresses, what nix will build, each derivation it
// begins; and a failed build's error.
func TestCLIBuildOutputNonTerminal(t *testing.T) {
	requireTestHost(t)
	t.Cleanup(func() { nixcfs(t, "", "destroy", "prog1") })
	tag := newTag()
	r := must(t, "create", "prog1", "--config", depsConfig(tag, ""))
	lines := strings.Split(r.stderr, "\n")
	if !regexp.MustCompile(`^host IP is 10\.233\.\d+\.1, container IP is 10\.233\.\d+\.2$`).MatchString(lines[0]) {
		t.Errorf("create's stderr does not begin with the addresses:\n%s", r.stderr)
	}
	for _, want := range []string{
		"\nthese 4 derivations will be built:\n",
		"\nbuilding '/nix/store/", "-dep-1-" + tag + ".drv'...\n", "\ndep 1\n",
		"-nixos-system-prog1-", // the system, after its dependencies
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("create's stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "$ nix-build") {
		t.Errorf("nixcfs's own lines of the log went to stderr:\n%s", r.stderr)
	}

	r = nixcfs(t, "", "update", "prog1", "--config", failingConfig(tag))
	if r.code == 0 {
		t.Fatalf("update with a failing builder succeeded:\n%s", r.stderr)
	}
	for _, want := range []string{"this builder fails on purpose\n", "error: builder for '/nix/store/",
		"nixcfs: failed to build container configuration: "} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("failed update's stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// tmuxScreen is a command run on a terminal: a tmux session on a server of the test's
// own.
type tmuxScreen struct {
	t            *testing.T
	socket, name string
}

// onTerminal runs the shell script script in a 120x24 terminal.
func onTerminal(t *testing.T, script string) *tmuxScreen {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is needed (make deps installs it)")
	}
	file := filepath.Join(t.TempDir(), "run.sh")
	if err := os.WriteFile(file, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s := &tmuxScreen{t: t, socket: fmt.Sprintf("nixcfs-progress-%d", os.Getpid()), name: fmt.Sprintf("progress-%d", time.Now().UnixNano())}
	if out, err := exec.Command("tmux", "-L", s.socket, "new-session", "-d", "-s", s.name, "-x", "120", "-y", "24",
		"sh "+file+"; echo script exited $?; sleep 3600").CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	return s
}

// waitFor waits until the screen matches re, and returns the matching line.
func (s *tmuxScreen) waitFor(re string, timeout time.Duration) string {
	s.t.Helper()
	rx := regexp.MustCompile(re)
	var screen string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out, err := exec.Command("tmux", "-L", s.socket, "capture-pane", "-p", "-t", s.name).Output()
		if err != nil {
			s.t.Fatalf("tmux capture-pane: %v", err)
		}
		screen = string(out)
		if m := rx.FindString(screen); m != "" {
			return m
		}
	}
	s.t.Fatalf("the screen never matched %s:\n%s", re, screen)
	return ""
}

// On a terminal, create shows one line, redrawn in place: the derivation being built,
// the derivations built of those to build, the time so far. It is gone when create
// ends. A failed build shows the end of its log.
func TestCLIProgressOnTerminal(t *testing.T) {
	requireTestHost(t)
	t.Cleanup(func() { nixcfs(t, "", "destroy", "prog2") })
	tag, gate := newTag(), filepath.Join(t.TempDir(), "gate")
	env := fmt.Sprintf("export NIXCFS_NIXOS_PATH=%s NIX_CONFIG=%s TERM=xterm\n",
		ops.ShellQuote(os.Getenv("NIXCFS_GUEST")), ops.ShellQuote(os.Getenv("NIX_CONFIG")))
	bin := ops.ShellQuote(os.Getenv("NIXCFS_BIN"))
	s := onTerminal(t, env+bin+" create prog2 --config "+ops.ShellQuote(depsConfig(tag, gate))+"\n")
	// Held at the gate: three dependencies built of five derivations.
	line := s.waitFor(`prog2: building gate-`+tag+`.*\(3/5\).*\[\d+s\]`, 3*time.Minute)
	t.Logf("the progress line: %s", line)
	s.waitFor(`prog2: building gate-.*\(3/5\).*\[([2-9]|\d\d+)s\]`, time.Minute) // the time goes on
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	screen := s.waitFor(`(?s).*script exited \d+`, 3*time.Minute)
	if !strings.Contains(screen, "script exited 0") || strings.Contains(screen, "prog2: building") {
		t.Errorf("create did not end cleanly, or left its line:\n%s", screen)
	}

	s = onTerminal(t, env+bin+" update prog2 --config "+ops.ShellQuote(failingConfig(tag))+"\n")
	screen = s.waitFor(`(?s).*script exited \d+`, 3*time.Minute)
	for _, want := range []string{"last lines of /var/log/nixcfs/prog2.build.log:", "this builder fails on purpose",
		"error: builder for '/nix/store/", "failed to build container configuration", "script exited 1"} {
		if !strings.Contains(screen, want) {
			t.Errorf("a failed update's screen lacks %q:\n%s", want, screen)
		}
	}
}

// A start waits for a build of another process (here another nixcfs; the mount's
// alike), and shows it as its own: on a terminal the progress line, elsewhere nix's
// lines, read from the build log that process writes. It then starts the system that
// build made.
func TestCLIStartFollowsAnotherProcessBuild(t *testing.T) {
	requireTestHost(t)
	t.Cleanup(func() { nixcfs(t, "", "destroy", "prog3") })
	must(t, "create", "prog3")
	tag, gate := newTag(), filepath.Join(t.TempDir(), "gate")
	update := exec.Command(os.Getenv("NIXCFS_BIN"), "update", "prog3", "--config", depsConfig(tag, gate))
	update.Env = append(os.Environ(), "NIXCFS_NIXOS_PATH="+os.Getenv("NIXCFS_GUEST"))
	var updateErr bytes.Buffer
	update.Stderr = &updateErr
	if err := update.Start(); err != nil {
		t.Fatal(err)
	}
	defer update.Process.Kill() // if the test fails before its end; a no-op after
	buildLog := "/var/log/nixcfs/prog3.build.log"
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if log, _ := os.ReadFile(buildLog); bytes.Contains(log, []byte("\nwaiting for "+gate)) {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the update's build never reached the gate:\n%s\n%s", log, updateErr.String())
		}
	}

	env := fmt.Sprintf("export NIXCFS_NIXOS_PATH=%s NIX_CONFIG=%s TERM=xterm\n",
		ops.ShellQuote(os.Getenv("NIXCFS_GUEST")), ops.ShellQuote(os.Getenv("NIX_CONFIG")))
	bin := ops.ShellQuote(os.Getenv("NIXCFS_BIN"))
	s := onTerminal(t, env+bin+" start prog3\n")
	s.waitFor(`prog3: building gate-`+tag+`.*\(3/5\).*\[\d+s\]`, time.Minute)
	// Without a terminal: nix's lines so far, from the log.
	plain := exec.Command(os.Getenv("NIXCFS_BIN"), "start", "prog3")
	plain.Env = update.Env
	stderr, err := plain.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Start(); err != nil {
		t.Fatal(err)
	}
	defer plain.Process.Kill()
	seen := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for !bytes.Contains(b.Bytes(), []byte("waiting for "+gate+"\n")) {
			n, err := stderr.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		seen <- b.String()
	}()
	select {
	case got := <-seen:
		for _, want := range []string{"these 5 derivations will be built:\n", "-dep-1-" + tag + ".drv'...\n", "waiting for " + gate + "\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("a start without a terminal lacks %q:\n%s", want, got)
			}
		}
	case <-time.After(time.Minute):
		t.Fatal("a start without a terminal showed no line of the build it waits for")
	}
	if st := must(t, "status", "prog3"); strings.TrimSpace(st.stdout) != "down" {
		t.Errorf("a start that waits for a build started before it:\n%s", st.stdout)
	}

	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := update.Wait(); err != nil {
		t.Fatalf("update: %v\n%s", err, updateErr.String())
	}
	if err := plain.Wait(); err != nil {
		t.Errorf("the start without a terminal: %v", err)
	}
	screen := s.waitFor(`(?s).*script exited \d+`, time.Minute)
	if !strings.Contains(screen, "script exited 0") || strings.Contains(screen, "prog3: building") {
		t.Errorf("start did not end cleanly, or left its line:\n%s", screen)
	}
	// It started the system the other build made: the second generation.
	r := must(t, "generations", "prog3", "--json")
	if !regexp.MustCompile(`"number":\s*2,[^}]*"current":\s*true`).MatchString(r.stdout) {
		t.Errorf("generations after the build:\n%s", r.stdout)
	}
	if st := must(t, "status", "prog3"); strings.TrimSpace(st.stdout) != "up" {
		t.Errorf("status after the starts:\n%s", st.stdout)
	}
}
