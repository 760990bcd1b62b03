package fs

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"nixcfs/ops"
)

func TestErrnoOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{ops.ErrNotFound, syscall.ENOENT},
		{ops.ErrExists, syscall.EEXIST},
		{ops.ErrNameTooLong, syscall.ENAMETOOLONG},
		{ops.ErrInvalidName, syscall.EINVAL},
		{ops.ErrInvalid, syscall.EINVAL},
		{ops.ErrNoAddress, syscall.ENOSPC},
		{ops.ErrBusy, syscall.EBUSY},
		{ops.ErrDeclarative, syscall.EPERM},
		{ops.ErrAddressInUse, syscall.EADDRINUSE},
		{ops.ErrBuildFailed, syscall.EIO},
		{ops.ErrStartFailed, syscall.EIO},
		{ops.ErrUnitOperation, syscall.EIO},
		{ops.ErrNotBuilt, syscall.EIO},
		{context.Canceled, syscall.EINTR},
		{errors.New("anything else"), syscall.EIO},
	} {
		wrapped := fmt.Errorf("doing something to foo: %w", tc.err)
		if tc.err == nil {
			wrapped = nil
		}
		if got := errnoOf(wrapped); got != tc.want {
			t.Errorf("errnoOf(%v) = %v, want %v", wrapped, got, tc.want)
		}
	}
}

func TestDetachedReturnsAtInterruptAndLetsTheOperationEnd(t *testing.T) {
	ctx, interrupt := context.WithCancel(context.Background())
	started, release := make(chan struct{}), make(chan struct{})
	ended := make(chan error, 1)
	go func() {
		<-started
		interrupt()
	}()
	err := detached(ctx, func(ctx context.Context) error {
		close(started)
		<-release
		ended <- ctx.Err()
		return nil
	})
	if errnoOf(err) != syscall.EINTR {
		t.Errorf("interrupted: %v", err)
	}
	close(release)
	if err := <-ended; err != nil {
		t.Errorf("the operation saw %v", err)
	}
}

func TestPendingSignalCounts(t *testing.T) {
	status := func(sigPnd, shdPnd, sigBlk string) string {
		return "Name:\tbash\nState:\tS (sleeping)\nSigQ:\t0/63704\nSigPnd:\t" + sigPnd +
			"\nShdPnd:\t" + shdPnd + "\nSigBlk:\t" + sigBlk + "\nSigIgn:\t0000000000000004\nSigCgt:\t000000004b817efb\n"
	}
	for _, tc := range []struct {
		what   string
		status string
		want   bool
	}{
		{"SIGCHLD (a background job ended)", status("0000000000000000", "0000000000010000", "0000000000000000"), false},
		{"SIGURG (Go's preemption)", status("0000000000400000", "0000000000000000", "0000000000000000"), false},
		{"SIGWINCH", status("0000000000000000", "0000000008000000", "0000000000000000"), false},
		{"SIGINT (Ctrl-C)", status("0000000000000000", "0000000000000002", "0000000000000000"), true},
		{"SIGINT with SIGCHLD", status("0000000000000000", "0000000000010002", "0000000000000000"), true},
		{"SIGALRM to the thread", status("0000000000002000", "0000000000000000", "0000000000000000"), true},
		{"SIGINT blocked", status("0000000000000000", "0000000000000002", "0000000000000002"), false},
		{"SIGKILL", status("0000000000000000", "0000000000000100", "fffffffffffffeff"), true},
		{"nothing pending", status("0000000000000000", "0000000000000000", "0000000000000000"), false},
		{"unreadable", "Name:\tbash\n", true},
	} {
		if got := pendingSignalCounts(tc.status); got != tc.want {
			t.Errorf("%s: pendingSignalCounts = %v, want %v", tc.what, got, tc.want)
		}
	}
}
