// Package testscripts holds end-to-end scenarios: real shells with mkdir, echo, cat,
// sed -i, vim, cp, python3 and curl against a real `nixcfs mount`, which builds and
// runs real containers. They run inside the test host (make integration-test).
package testscripts

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// oneAtATime runs the scenarios one after the other: each mounts its own daemon, and
// all of them build and run containers on the same host.
var oneAtATime sync.Mutex

func TestScripts(t *testing.T) {
	if os.Getenv("NIXCFS_TESTHOST") != "1" {
		t.Skip("end-to-end scripts: run inside the test host (make integration-test)")
	}
	bin, guest := os.Getenv("NIXCFS_BIN"), os.Getenv("NIXCFS_GUEST")
	if bin == "" || guest == "" {
		t.Fatal("NIXCFS_BIN and NIXCFS_GUEST must name the nixcfs binary and the guest/ directory")
	}
	testscript.Run(t, testscript.Params{
		Dir: ".",
		Setup: func(env *testscript.Env) error {
			oneAtATime.Lock()
			d, err := startDaemon(env, bin, guest)
			if err != nil {
				oneAtATime.Unlock()
				return err
			}
			env.Defer(func() {
				d.stop(env)
				oneAtATime.Unlock()
			})
			// What the scripts see: the mount, and nixos-container's command line on the
			// same files for changes made outside it.
			env.Setenv("MNT", d.mnt)
			env.Setenv("NIXCFS", bin)
			env.Setenv("NIXCFS_NIXOS_PATH", guest)
			env.Setenv("VIM", vimProgram())
			for _, k := range []string{"NIX_CONFIG", "TERM"} {
				env.Setenv(k, os.Getenv(k))
			}
			return nil
		},
	})
}

// daemon is one `nixcfs mount` process.
type daemon struct {
	mnt    string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

func startDaemon(env *testscript.Env, bin, guest string) (*daemon, error) {
	mnt, err := os.MkdirTemp("", "nixcfs-mnt-")
	if err != nil {
		return nil, err
	}
	d := &daemon{mnt: mnt, log: filepath.Join(env.WorkDir, "nixcfs.log"), exited: make(chan struct{})}
	logFile, err := os.Create(d.log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	d.cmd = exec.Command(bin, "mount", "--nixos-path="+guest, "--log-level=debug", mnt)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	d.cmd.Dir = "/"
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		d.cmd.Wait()
		close(d.exited)
	}()
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(mnt, "events")); err == nil {
			return d, nil
		}
		select {
		case <-d.exited:
			out, _ := os.ReadFile(d.log)
			return nil, fmt.Errorf("nixcfs mount exited: %s\n%s", d.cmd.ProcessState, out)
		default:
		}
		if time.Now().After(end) {
			d.stop(env)
			return nil, errors.New("nixcfs mount did not mount within 60s")
		}
	}
}

// stop removes what the script left (stopping containers first), ends the daemon with
// SIGTERM as systemd would, and makes sure nothing stays mounted.
func (d *daemon) stop(env *testscript.Env) {
	entries, _ := os.ReadDir(d.mnt)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(d.mnt, e.Name())
		os.WriteFile(filepath.Join(dir, "state"), []byte("terminate\n"), 0)
		if err := os.Remove(dir); err != nil {
			logf(env, "cleanup %s: %v", e.Name(), err)
		}
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		logf(env, "nixcfs mount ignored SIGTERM for 20s; killing it")
		d.cmd.Process.Kill()
		<-d.exited
	}
	if mounted(d.mnt) {
		logf(env, "%s still mounted after the daemon ended", d.mnt)
		exec.Command("umount", "-l", d.mnt).Run()
	}
	if t, ok := env.T().(interface{ Failed() bool }); ok && t.Failed() {
		out, _ := os.ReadFile(d.log)
		logf(env, "nixcfs mount log:\n%s", out)
	}
	os.Remove(d.mnt)
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

func logf(env *testscript.Env, format string, a ...any) {
	env.T().Log(fmt.Sprintf(format, a...))
}

func mounted(path string) bool {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}
