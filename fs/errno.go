package fs

import (
	"context"
	"errors"
	"io/fs"
	"syscall"

	"nixcfs/ops"
)

// errnoOf maps an ops error to the errno the interface gives it. The readable reason is in
// the container's status (ops records it), since errno alone is thin.
func errnoOf(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, context.DeadlineExceeded):
		return syscall.ETIMEDOUT
	case errors.Is(err, ops.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, ops.ErrExists):
		return syscall.EEXIST
	case errors.Is(err, ops.ErrNameTooLong):
		return syscall.ENAMETOOLONG
	case errors.Is(err, ops.ErrInvalidName), errors.Is(err, ops.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, ops.ErrNoAddress):
		return syscall.ENOSPC
	case errors.Is(err, ops.ErrBusy):
		return syscall.EBUSY
	case errors.Is(err, ops.ErrDeclarative):
		return syscall.EPERM
	case errors.Is(err, ops.ErrAddressInUse):
		return syscall.EADDRINUSE
	case errors.Is(err, ops.ErrOverridden):
		return syscall.ECANCELED // a stop written while this start waited
	case errors.Is(err, ops.ErrEscape):
		return syscall.ELOOP // a guest's symlink leads out of its root tree
	case errors.Is(err, ops.ErrNotRegular):
		return syscall.EINVAL
	case errors.Is(err, ops.ErrTooLarge):
		return syscall.EFBIG
	case errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT
	}
	// ErrBuildFailed, ErrStartFailed, ErrUnitOperation, ErrNotBuilt and the unforeseen.
	return syscall.EIO
}

// interruptible runs op to its end, but returns EINTR as soon as the FUSE request is
// interrupted (Ctrl-C on the writer): the operation goes on and status shows how it
// ends. op never sees the request's cancellation, so an interrupted start still starts.
func detached(ctx context.Context, op func(context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- op(context.WithoutCancel(ctx)) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return context.Canceled
	}
}
