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
	return pollLock(ctx, func() (*fileLock, bool, error) { return tryLockFile(path) })
}

// pollLock tries a lock until try takes it or fails, or ctx ends: polled, not
// blocking, so that a caller that gives up (an interrupted mkdir) can.
func pollLock[L any](ctx context.Context, try func() (L, bool, error)) (L, error) {
	for {
		l, ok, err := try()
		if err != nil || ok {
			return l, err
		}
		select {
		case <-ctx.Done():
			var none L
			return none, context.Cause(ctx)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// flockNB takes an exclusive flock on f if no one holds one: false when another open
// file holds it.
func flockNB(f *os.File) (bool, error) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	for err == unix.EINTR {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err == unix.EWOULDBLOCK {
		return false, nil
	}
	return err == nil, err
}

// tryLockFile takes the lock on path if no one holds it.
func tryLockFile(path string) (*fileLock, bool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		}
		locked, err := flockNB(f)
		switch {
		case err != nil:
			f.Close()
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		case !locked:
			f.Close()
			return nil, false, nil
		case !samePath(f, path):
			// Its holder removed the file (a destroy removes the directory) before we
			// had it: a lock on a removed file locks nothing. Again, on the path.
			f.Close()
			continue
		}
		return &fileLock{f}, true, nil
	}
}

// samePath tells whether the open file is still the one at path.
func samePath(f *os.File, path string) bool {
	var open, named unix.Stat_t
	return unix.Fstat(int(f.Fd()), &open) == nil && unix.Stat(path, &named) == nil &&
		open.Dev == named.Dev && open.Ino == named.Ino
}

// unlock releases the lock; a second call does nothing.
func (l *fileLock) unlock() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
