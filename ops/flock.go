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
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		for err == unix.EINTR {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		}
		switch {
		case err == unix.EWOULDBLOCK:
			f.Close()
			return nil, false, nil
		case err != nil:
			f.Close()
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
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
