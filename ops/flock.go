package ops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// fileLock is an flock(2) held on a file: a lock between processes, which the kernel
// releases when its holder dies, however it dies.
type fileLock struct{ f *os.File }

// lockFile takes the lock on path, creating it, or gives up when ctx ends.
func lockFile(ctx context.Context, path string) (*fileLock, error) {
	for {
		l, ok, err := tryLockFile(path)
		if err != nil || ok {
			return l, err
		}
		// Polled, not blocking, so that a caller that gives up (an interrupted mkdir)
		// can.
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// tryLockFile takes the lock on path if no one holds it.
func tryLockFile(path string) (*fileLock, bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch err {
		case nil:
			return &fileLock{f}, true, nil
		case unix.EINTR:
			continue
		case unix.EWOULDBLOCK:
			f.Close()
			return nil, false, nil
		}
		f.Close()
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
}

// unlock releases the lock; a second call does nothing.
func (l *fileLock) unlock() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
