package guestroot

import (
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Stat describes the file at name (size, mode, mtime), following symlinks that stay
// inside the tree. Nothing is opened for real: a FIFO or device is described, not
// touched.
func (r *Root) Stat(name string) (fs.FileInfo, error) {
	rel, err := inTree(name)
	if err != nil {
		return nil, pathError("stat", name, err)
	}
	fd, err := r.open(rel, unix.O_PATH)
	if err != nil {
		return nil, pathError("stat", name, err)
	}
	// os.File.Stat is fstat(2), which an O_PATH descriptor supports; it gives the
	// familiar FileInfo, with *syscall.Stat_t as Sys().
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, pathError("stat", name, err)
	}
	return fi, nil
}

// ReadFile returns the content of the regular file at name, following symlinks that
// stay inside the tree. Anything else (directory, FIFO, socket, device) is
// ErrNotRegular and is never opened for reading, so a FIFO cannot block the caller and a
// device open cannot have side effects. A file of more than max bytes is ErrTooLarge;
// the buffer never holds more than max+1 bytes, whatever the file's size claims.
func (r *Root) ReadFile(name string, max int64) ([]byte, error) {
	rel, err := inTree(name)
	if err != nil {
		return nil, pathError("read", name, err)
	}
	data, err := r.readFile(rel, max)
	if err != nil {
		return nil, pathError("read", name, err)
	}
	return data, nil
}

func (r *Root) readFile(rel string, max int64) ([]byte, error) {
	if max < 0 {
		return nil, fmt.Errorf("negative size cap %d: %w", max, unix.EINVAL)
	}
	// First a handle that names the file without opening it: only once it is known
	// to be a regular file is it opened for reading.
	pathFD, err := r.open(rel, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer unix.Close(pathFD)
	var st unix.Stat_t
	if err := unix.Fstat(pathFD, &st); err != nil {
		return nil, err
	}
	if err := regular(st.Mode); err != nil {
		return nil, err
	}
	if st.Size > max {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, st.Size, max)
	}
	// Reopening the handle through /proc opens exactly the inode checked above; opening
	// rel again would let the guest swap in a FIFO or device in between.
	fd, err := unix.Open(fmt.Sprintf("/proc/thread-self/fd/%d", pathFD), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("reopen for reading: %w", err)
	}
	defer unix.Close(fd)
	var again unix.Stat_t
	if err := unix.Fstat(fd, &again); err != nil {
		return nil, err
	}
	if again.Dev != st.Dev || again.Ino != st.Ino {
		return nil, fmt.Errorf("reopened a different file: %w", unix.ESTALE)
	}
	return readCapped(fd, st.Size, max)
}

// regular says why a file of mode m may not be read, or nil for a regular file.
func regular(m uint32) error {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return nil
	case unix.S_IFDIR:
		return fmt.Errorf("%w: a directory", ErrNotRegular)
	case unix.S_IFIFO:
		return fmt.Errorf("%w: a FIFO", ErrNotRegular)
	case unix.S_IFSOCK:
		return fmt.Errorf("%w: a socket", ErrNotRegular)
	case unix.S_IFCHR, unix.S_IFBLK:
		return fmt.Errorf("%w: a device", ErrNotRegular)
	default:
		return fmt.Errorf("%w: file type %#o", ErrNotRegular, m&unix.S_IFMT)
	}
}

// readCapped reads fd to its end, failing once more than max bytes arrive. size (from
// fstat) only sizes the first buffer: a file may grow while read, and files such as
// those of /proc claim 0. The buffer then doubles up to max+1 bytes, so a file that
// lies about its size costs at most about twice that in allocations, once.
func readCapped(fd int, size, max int64) ([]byte, error) {
	buf := make([]byte, 0, min(size, max)+1)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > max {
				return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
			}
			grown := make([]byte, len(buf), min(int64(cap(buf))*2+512, max+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, err
		case n == 0:
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}
