package fs

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// The kernel interrupts a waiting FUSE request (its context ends) for any signal the
// caller catches, not only for Ctrl-C: a shell's SIGCHLD when one of its background
// jobs ends, Go's SIGURG preemption, SIGWINCH. Those are not meant to stop anything, and
// `(echo start > state) & echo stop > state` must not fail with EINTR because the
// overridden start's subshell ended during the stop. So an interrupt counts only when
// the caller has a signal pending that is: one whose default action is not to be
// ignored. The kernel sends one interrupt per request; after a benign one, the wait
// watches the caller for a signal that counts.

// benignSignals are the signals whose default action is to be ignored (or to continue).
var benignSignals = sigBit(syscall.SIGCHLD) | sigBit(syscall.SIGURG) | sigBit(syscall.SIGWINCH) |
	sigBit(syscall.SIGCONT)

func sigBit(s syscall.Signal) uint64 { return 1 << (uint(s) - 1) }

// callerWatchInterval is how often a wait that ignored a benign interrupt looks at the
// caller's pending signals again.
const callerWatchInterval = 20 * time.Millisecond

// waitInterruptible waits for done, or for the FUSE request's caller to be interrupted
// by a signal that counts; it returns done's error or context.Canceled.
func waitInterruptible(ctx context.Context, done <-chan error) error {
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	var pid uint32
	if caller, ok := fuse.FromContext(ctx); ok {
		pid = caller.Pid
	}
	tick := time.NewTicker(callerWatchInterval)
	defer tick.Stop()
	for {
		if callerInterrupted(pid) {
			return context.Canceled
		}
		select {
		case err := <-done:
			return err
		case <-tick.C:
		}
	}
}

// callerInterrupted tells whether the task pid has a signal pending that should end its
// wait. An unknown caller (pid 0: outside our PID namespace) or one whose status
// cannot be read counts as interrupted, as does one that is gone.
func callerInterrupted(pid uint32) bool {
	if pid == 0 {
		return true
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return true
	}
	return pendingSignalCounts(string(data))
}

// pendingSignalCounts reads a /proc/PID/status text: a signal pending for the task or
// its process, not blocked, and not benign.
func pendingSignalCounts(status string) bool {
	masks := map[string]uint64{}
	for _, line := range strings.Split(status, "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch key {
		case "SigPnd", "ShdPnd", "SigBlk":
			m, err := strconv.ParseUint(strings.TrimSpace(value), 16, 64)
			if err != nil {
				return true
			}
			masks[key] = m
		}
	}
	if len(masks) != 3 {
		return true
	}
	pending := (masks["SigPnd"] | masks["ShdPnd"]) &^ masks["SigBlk"]
	// SIGKILL and SIGSTOP cannot be blocked; a blocked mask never hides them.
	pending |= (masks["SigPnd"] | masks["ShdPnd"]) & (sigBit(syscall.SIGKILL) | sigBit(syscall.SIGSTOP))
	return pending&^benignSignals != 0
}
