package fs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// mountFake mounts the filesystem over a fakeBackend in a temporary directory, for as
// long as the test runs. Shell tools then drive it as subprocesses.
func mountFake(t *testing.T, journal ...func(context.Context, string) ([]byte, error)) (*fakeBackend, string) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	f := newFakeBackend(t)
	mnt := t.TempDir()
	o := Options{Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)}
	root := New(f, o)
	if len(journal) > 0 {
		root.journal = journal[0] // no journald here
	}
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
	return f, mnt
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

// eventually polls cond for up to d.
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
