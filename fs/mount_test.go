package fs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// mountFake mounts the filesystem over a fakeBackend in a temporary directory, for as
// long as the test runs. Shell tools then drive it as subprocesses.
func mountFake(t *testing.T) (*fakeBackend, string) {
	t.Helper()
	f, mnt, _ := mountFakeRoot(t)
	return f, mnt
}

// mountFakeRoot is mountFake that also gives the filesystem's root, for tests that
// wait on a node's state.
func mountFakeRoot(t *testing.T) (*fakeBackend, string, *Root) {
	t.Helper()
	return mountFakeWith(t, Options{})
}

// mountFakeWith is mountFakeRoot with the mount's options (AllowOther); Log is the
// test's own.
func mountFakeWith(t *testing.T, o Options) (*fakeBackend, string, *Root) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	f := newFakeBackend(t)
	mnt := t.TempDir()
	o.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	root := New(f, o)
	srv, err := mountRoot(mnt, root, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	return f, mnt, root
}

// sh runs a bash script with $MNT set, and returns its combined output and whether it
// succeeded. bash, because dash reports every write error as "I/O error".
func sh(t *testing.T, mnt, script string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Env = append(os.Environ(), "MNT="+mnt, "VIM="+vimProgram())
	cmd.WaitDelay = time.Second // a child left behind holding the output fails the test, not hangs it
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s: timed out\n%s", script, out)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%s: %v", script, err)
	}
	return string(out), err == nil
}

// vimProgram is the vim there is: the test host's fresh /etc lacks the alternatives
// link /usr/bin/vim points through.
func vimProgram() string {
	for _, name := range []string{"vim.basic", "vim.tiny", "vim"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return "vim"
}

// mustSh runs a script that must succeed and returns its output.
func mustSh(t *testing.T, mnt, script string) string {
	t.Helper()
	out, ok := sh(t, mnt, script)
	if !ok {
		t.Fatalf("%s: failed:\n%s", script, out)
	}
	return out
}

// failSh runs a script that must fail with a message containing want.
func failSh(t *testing.T, mnt, script, want string) {
	t.Helper()
	out, ok := sh(t, mnt, script)
	if ok {
		t.Fatalf("%s: succeeded, want failure %q:\n%s", script, want, out)
	}
	if !strings.Contains(out, want) {
		t.Fatalf("%s: output %q, want %q", script, out, want)
	}
}

// eventually polls cond, which says what it waits for, for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("not within %v: %s", d, what)
		}
	}
}

func fileText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(b))
}

// bgShell is a bash script running in the background with $MNT set, for tests that act
// while it runs: its output arrives line by line, and each line written to its stdin
// lets a `read _` in it go on.
type bgShell struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	out   strings.Builder // every line so far; read only after lines is closed
	done  chan error
}

func startSh(t *testing.T, mnt, script string) *bgShell {
	t.Helper()
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "MNT="+mnt)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &bgShell{cmd: cmd, stdin: stdin, lines: make(chan string, 1024), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.lines <- sc.Text()
		}
		close(b.lines)
		b.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		for range b.lines {
		}
	})
	return b
}

// waitLine waits (10 s at most) for the next line that satisfies want, and returns it.
func (b *bgShell) waitLine(t *testing.T, what string, want func(string) bool) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-b.lines:
			if !ok {
				t.Fatalf("the script ended before %s:\n%s", what, b.out.String())
			}
			b.out.WriteString(line + "\n")
			if want(line) {
				return line
			}
		case <-deadline:
			t.Fatalf("not within 10s: %s; output so far:\n%s", what, b.out.String())
		}
	}
}

// proceed lets the script's next `read _` return.
func (b *bgShell) proceed(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(b.stdin, "\n"); err != nil {
		t.Fatal(err)
	}
}

// signal sends sig to the script's process.
func (b *bgShell) signal(sig os.Signal) { b.cmd.Process.Signal(sig) }

// finish waits for the script to end and returns all it printed.
func (b *bgShell) finish(t *testing.T) (string, error) {
	t.Helper()
	for line := range b.lines {
		b.out.WriteString(line + "\n")
	}
	select {
	case err := <-b.done:
		return b.out.String(), err
	case <-time.After(10 * time.Second):
		t.Fatalf("the script did not end within 10s:\n%s", b.out.String())
		return "", nil
	}
}
