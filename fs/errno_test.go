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
