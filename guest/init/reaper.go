package main

import (
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// reaper waits for every child of PID 1: orphans re-parented to init and
// the children init starts itself. Because it reaps with wait4(-1), those
// own children cannot be waited for with exec.Cmd.Wait (it would find them
// gone); run hands their exit status over instead.
type reaper struct {
	mu      sync.Mutex                      // held around each reaping round and around Start
	waiting map[int]chan syscall.WaitStatus // children started by run
}

func newReaper() *reaper {
	return &reaper{waiting: map[int]chan syscall.WaitStatus{}}
}

// loop reaps whenever a SIGCHLD arrives on sigchld, until it is closed.
func (r *reaper) loop(sigchld <-chan os.Signal) {
	r.reap()
	for range sigchld {
		r.reap()
	}
}

// reap collects every exited child; signals coalesce, so it loops until
// none is left.
func (r *reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if ch, ok := r.waiting[pid]; ok {
			delete(r.waiting, pid)
			ch <- status
		}
	}
}

// childTimeout bounds a child of run; switch-to-configuration takes well
// under a second.
const childTimeout = 5 * time.Minute

// run starts path with args, its stdout and stderr into one pipe, and
// returns the output and exit code once the reaper has seen it exit.
func (r *reaper) run(path string, args ...string) ([]byte, int, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, 0, err
	}
	defer pr.Close()
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = pw, pw
	exited := make(chan syscall.WaitStatus, 1)

	r.mu.Lock() // no reaping between Start and registering the pid
	err = cmd.Start()
	if err == nil {
		r.waiting[cmd.Process.Pid] = exited
	}
	r.mu.Unlock()
	pw.Close()
	if err != nil {
		return nil, 0, err
	}
	defer cmd.Process.Release()

	output := make(chan []byte, 1)
	go func() {
		var buf []byte
		chunk := make([]byte, 32*1024)
		for {
			n, err := pr.Read(chunk)
			buf = append(buf, chunk[:n]...)
			if err != nil {
				output <- buf
				return
			}
		}
	}()

	var status syscall.WaitStatus
	select {
	case status = <-exited:
	case <-time.After(childTimeout):
		cmd.Process.Kill()
		status = <-exited
	}
	// A grandchild may hold the pipe open; take what came shortly after.
	pr.SetReadDeadline(time.Now().Add(time.Second))
	out := <-output
	if status.Signaled() {
		return out, 128 + int(status.Signal()), nil
	}
	return out, status.ExitStatus(), nil
}
