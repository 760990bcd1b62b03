package main

// Completion in real interactive shells: bash (with bash-completion), zsh and fish run
// in tmux, load the scripts nixcfs generates, and a Tab is typed. Names come from a
// conf directory given with --conf-dir, as a user's typed flags select one.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shellSession is one interactive shell in a tmux session.
type shellSession struct {
	t    *testing.T
	name string
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make deps installs it)", tool)
		}
	}
}

func startShell(t *testing.T, dir string, argv ...string) *shellSession {
	t.Helper()
	s := &shellSession{t: t, name: fmt.Sprintf("nixcfs-compl-%d-%d", os.Getpid(), time.Now().UnixNano())}
	args := append([]string{"new-session", "-d", "-s", s.name, "-x", "200", "-y", "50", "-c", dir, "--"}, argv...)
	if out, err := s.tmux(args...).CombinedOutput(); err != nil {
		t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	t.Cleanup(func() { s.tmux("kill-server").Run() })
	// Keys typed before the shell is ready (a Ctrl-C while it reads its rc file) may
	// end it.
	if screen, ok := s.poll(15*time.Second, func(screen string) bool { return strings.Contains(screen, "$") }); !ok {
		t.Fatalf("the shell never showed its prompt:\n%s", screen)
	}
	return s
}

func (s *shellSession) keys(keys ...string) {
	s.t.Helper()
	args := append([]string{"send-keys", "-t", s.name}, keys...)
	if out, err := s.tmux(args...).CombinedOutput(); err != nil {
		s.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
}

func (s *shellSession) screen() string {
	out, _ := s.tmux("capture-pane", "-p", "-t", s.name).Output()
	return string(out)
}

// tmux is a command to the session's own tmux server (-L): another test's, or
// another run's on the same machine, never ends it.
func (s *shellSession) tmux(args ...string) *exec.Cmd {
	return exec.Command("tmux", append([]string{"-L", s.name}, args...)...)
}

func hasAll(screen string, want []string) bool {
	for _, w := range want {
		if !strings.Contains(screen, w) {
			return false
		}
	}
	return true
}

// poll waits up to timeout for a screen ok accepts, and returns the last screen.
func (s *shellSession) poll(timeout time.Duration, ok func(screen string) bool) (string, bool) {
	deadline := time.Now().Add(timeout)
	for {
		screen := s.screen()
		if ok(screen) {
			return screen, true
		}
		if time.Now().After(deadline) {
			return screen, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clear cancels the line (and any completion still running, which a Ctrl-C may end
// instead) until the screen holds only the prompt, and still does a moment later: a
// shell redraws its line after a clear-screen.
func (s *shellSession) clear() {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s.keys("C-c")
		s.keys("C-l")
		var lone time.Time
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			switch {
			case strings.TrimSpace(s.screen()) != "$":
				lone = time.Time{}
			case lone.IsZero():
				lone = time.Now()
			case time.Since(lone) >= 300*time.Millisecond:
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen never showed a lone prompt:\n%s", s.screen())
		}
	}
}

// complete types line on a clear screen, then Tab twice (bash lists the candidates on
// the second), and waits until the screen shows every one of want. None of want may
// be in line itself.
func (s *shellSession) complete(line string, want ...string) string {
	s.t.Helper()
	return s.completeAt(line, len(line), want...)
}

// completeAt is complete with the cursor moved back to column col of line. On a
// loaded machine a keystroke may cross the shell's redraw, so a line whose
// completion does not show is typed again, twice at most.
func (s *shellSession) completeAt(line string, col int, want ...string) string {
	s.t.Helper()
	var screen string
	for attempt := 1; attempt <= 3; attempt++ {
		s.clear()
		s.keys("-l", line)
		for range len(line) - col {
			s.keys("Left")
		}
		s.keys("Tab")
		time.Sleep(200 * time.Millisecond)
		s.keys("Tab")
		var ok bool
		if screen, ok = s.poll(10*time.Second, func(screen string) bool { return hasAll(screen, want) }); ok {
			return screen
		}
		s.t.Logf("attempt %d: %q never showed %q:\n%s", attempt, line, want, screen)
	}
	s.t.Fatalf("%q never completed to %q", line, want)
	return screen
}

// completionFixture is a conf directory with two containers whose names share a
// prefix, a mount-like directory with an events file and a container directory, the
// completion scripts, and nixcfs on PATH.
type completionFixture struct{ confDir, mnt, scripts, bin string }

func newCompletionFixture(t *testing.T) completionFixture {
	f := completionFixture{confDir: t.TempDir(), mnt: t.TempDir(), scripts: t.TempDir(), bin: selfBinary(t)}
	for _, n := range []string{"foo", "fob", "web"} {
		os.WriteFile(filepath.Join(f.confDir, n+".conf"), []byte("PRIVATE_NETWORK=1\n"), 0o644)
	}
	os.WriteFile(filepath.Join(f.confDir, "not.a.name.conf"), nil, 0o644)
	os.WriteFile(filepath.Join(f.mnt, "events"), nil, 0o644)
	os.MkdirAll(filepath.Join(f.mnt, "foo"), 0o755)
	os.WriteFile(filepath.Join(f.mnt, "foo", "state"), nil, 0o644)
	root := newRoot()
	for _, sh := range shells {
		w, err := os.Create(filepath.Join(f.scripts, sh.file))
		if err != nil {
			t.Fatal(err)
		}
		if err := sh.gen(root, w); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	return f
}

// check completes the same lines in every shell. Fish hands completions only the line
// up to the cursor, so there the redirection must come first.
func (f completionFixture) check(t *testing.T, s *shellSession, seesWholeLine bool) {
	t.Helper()
	s.complete("nixcfs sta", "start", "status")
	s.complete("nixcfs start --conf-dir="+f.confDir+" fo", "fob", "foo")
	if got := s.complete("nixcfs status --conf-dir "+f.confDir+" ", "fob", "foo", "web"); strings.Contains(got, "not.a.name") {
		t.Errorf("a conf file that is no container name was offered:\n%s", got)
	}
	s.complete("nixcfs create x --layout ", "auto", "new", "old")
	s.complete("nixcfs create x --auto", "--auto-start")
	s.complete("nixcfs run --conf-dir="+f.confDir+" w", "web")
	s.complete("echo > "+f.mnt+"/foo/state ", "start", "stop", "restart", "reload", "terminate")
	s.complete("echo > foo/state re", "restart", "reload")
	if seesWholeLine {
		// A line from history, edited before its redirection.
		s.completeAt("echo re > foo/state", len("echo re"), "restart", "reload")
	}
}

func TestBashCompletion(t *testing.T) {
	needTools(t, "tmux", "bash")
	if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err != nil {
		t.Skip("needs bash-completion (make deps installs it)")
	}
	f := newCompletionFixture(t)
	rc := filepath.Join(f.scripts, "bashrc")
	os.WriteFile(rc, []byte(fmt.Sprintf("PS1='$ '\nPATH=%s:$PATH\nsource /usr/share/bash-completion/bash_completion\nsource %s\n",
		f.bin, filepath.Join(f.scripts, "nixcfs.bash"))), 0o644)
	s := startShell(t, f.mnt, "env", "-u", "HISTFILE", "TERM=xterm", "bash", "--noprofile", "--rcfile", rc, "-i")
	f.check(t, s, true)
}

func TestZshCompletion(t *testing.T) {
	needTools(t, "tmux", "zsh")
	f := newCompletionFixture(t)
	os.WriteFile(filepath.Join(f.scripts, ".zshrc"), []byte(fmt.Sprintf("PROMPT='$ '\npath=(%s $path)\nfpath=(%s $fpath)\nautoload -U compinit\ncompinit -u -D\n",
		f.bin, f.scripts)), 0o644)
	s := startShell(t, f.mnt, "env", "ZDOTDIR="+f.scripts, "TERM=xterm", "zsh", "-i")
	f.check(t, s, true)
}

func TestFishCompletion(t *testing.T) {
	needTools(t, "tmux", "fish")
	f := newCompletionFixture(t)
	conf := filepath.Join(f.scripts, "config.fish")
	os.WriteFile(conf, []byte(fmt.Sprintf("function fish_prompt; echo -n '$ '; end\nset -g fish_greeting\nset -x PATH %s $PATH\nset -p fish_complete_path %s\n",
		f.bin, f.scripts)), 0o644)
	// Fish keeps its runtime files in XDG_RUNTIME_DIR when that is private, else in /tmp.
	runtime := t.TempDir()
	os.Chmod(runtime, 0o700)
	s := startShell(t, f.mnt, "env", "TERM=xterm", "HOME="+f.scripts, "XDG_RUNTIME_DIR="+runtime, "fish", "--no-config", "-i", "-C", "source "+conf)
	f.check(t, s, false)
}

// Completion reads names itself: no root, no D-Bus, quickly.
func TestContainerNames(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b", "a", "ab", "bad.name", "toolongname12"} {
		os.WriteFile(filepath.Join(dir, n+".conf"), nil, 0o644)
	}
	os.Mkdir(filepath.Join(dir, "sub.conf.d"), 0o755)
	lf := layoutFlags{layout: "auto", confDir: dir}
	start := time.Now()
	got := containerNames(&lf, "")
	if elapsed := time.Since(start); elapsed > 100*time.Millisecond {
		t.Errorf("listing names took %v", elapsed)
	}
	if strings.Join(got, " ") != "a ab b" {
		t.Errorf("names: %q, want a ab b", got)
	}
	if got := containerNames(&lf, "a"); strings.Join(got, " ") != "a ab" {
		t.Errorf("names starting with a: %q", got)
	}
}
