// Package guestroot lets host-side code, running as root, read and write files in a
// container's root tree without ever leaving it. The tree is the guest's "/" and its
// root user controls every name in it: a symlink planted at etc/nixos or at
// etc/resolv.conf must not make the host read or overwrite its own files, a FIFO must
// not hang a read, a device node must not be opened at all.
//
// Every path is resolved by the kernel with openat2(2) and RESOLVE_BENEATH |
// RESOLVE_NO_MAGICLINKS from a directory handle on the tree: "..", absolute symlinks,
// relative symlinks that climb out and /proc magic links fail with ErrEscape instead
// of being followed. Relative symlinks that stay inside the tree are followed. A name
// is always relative to the tree; a leading "/" is allowed and means the same thing,
// as it would inside the container.
//
// Linux 5.6 or later (openat2) is needed; RemoveTree needs 5.8 (statx's mount id).
package guestroot

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrEscape is matched (errors.Is) by the error of an access whose path leads out of
// the root tree: through "..", an absolute symlink, a relative symlink that climbs out,
// or a magic link such as /proc/self/root.
var ErrEscape = errors.New("leads out of the container's root tree")

// ErrNotRegular is matched by the error of a read of something that is not a regular
// file: a directory, FIFO, socket or device.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is matched by the error of a read of a file larger than the caller's cap.
var ErrTooLarge = errors.New("file too large")

// escapeError says how a path left the tree and matches ErrEscape.
type escapeError string

func (e escapeError) Error() string        { return string(e) }
func (e escapeError) Is(target error) bool { return target == ErrEscape }

const (
	errSymlinkEscape escapeError = "a symlink or .. leads out of the container's root tree"
	errMagicLink     escapeError = "a magic link (as in /proc) would lead out of the container's root tree"
)

// beneath is how every path in a tree is resolved. RESOLVE_BENEATH alone blocks magic
// links today, but its manual page says that may change; RESOLVE_NO_MAGICLINKS does not.
const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

// Root is an open handle on a root tree. Its methods may be called concurrently, Close
// after all of them.
type Root struct {
	dir string
	fd  int // O_RDONLY|O_DIRECTORY: a base for openat2, and fsync-able
}

// Open opens the root tree at dir. dir itself belongs to the host and is followed
// through symlinks (/var/lib/nixos-containers may be one, /proc/PID/root is a magic
// link); it must be a directory.
func Open(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open root tree", Path: dir, Err: err}
	}
	return &Root{dir: dir, fd: fd}, nil
}

// Close releases the handle.
func (r *Root) Close() error {
	if err := unix.Close(r.fd); err != nil {
		return &fs.PathError{Op: "close root tree", Path: r.dir, Err: err}
	}
	return nil
}

// Dir is the directory the tree was opened at.
func (r *Root) Dir() string { return r.dir }

// inTree turns a name given by a caller into one openat2 accepts relative to the tree.
func inTree(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", unix.EINVAL
	}
	name = strings.TrimLeft(name, "/")
	if name == "" {
		return ".", nil
	}
	return name, nil
}

// splitParent splits name into its parent directory and a last component that can
// be created, renamed or linked with a single *at call.
func splitParent(name string) (parent, base string, err error) {
	name, err = inTree(name)
	if err != nil {
		return "", "", err
	}
	parent, base = ".", name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		parent, base = name[:i], name[i+1:]
	}
	if base == "" || base == "." || base == ".." {
		return "", "", fmt.Errorf("%q does not end in a file name: %w", name, unix.EINVAL)
	}
	return parent, base, nil
}

// open resolves name inside the tree with openat2, following symlinks that stay inside.
// flags never hold O_NOFOLLOW: a caller that must not follow the last component opens
// its parent and uses a single-name *at call. Errors are bare (the caller wraps them in
// a PathError); an escape is reported as one, whatever errno told it.
func (r *Root) open(name string, flags int) (int, error) {
	fd, err := openat2(r.fd, name, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: beneath})
	switch err {
	case nil:
		return fd, nil
	case unix.EXDEV:
		return -1, errSymlinkEscape
	case unix.ELOOP:
		return -1, r.classifyLoop(name)
	default:
		return -1, err
	}
}

// openat2 is unix.Openat2, asked again when the kernel says to.
func openat2(dirfd int, name string, how *unix.OpenHow) (int, error) {
	for range 64 {
		fd, err := unix.Openat2(dirfd, name, how)
		// EAGAIN: a concurrent rename (the guest may be running) kept the kernel from
		// proving that ".." stayed inside; asking again is what openat2(2) recommends.
		if err != unix.EAGAIN && err != unix.EINTR {
			return fd, err
		}
	}
	return -1, fmt.Errorf("resolution kept racing with renames: %w", unix.EAGAIN)
}

// classifyLoop tells a magic link (refused by RESOLVE_NO_MAGICLINKS with ELOOP) from a
// real symlink loop: the same resolution without that flag either escapes (EXDEV, as
// RESOLVE_BENEATH treats magic links today) or, on a kernel that would let it through,
// succeeds; only a true loop still says ELOOP.
func (r *Root) classifyLoop(name string) error {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH,
	}
	fd, err := openat2(r.fd, name, &how)
	switch {
	case err == nil:
		unix.Close(fd) // an O_PATH handle: nothing was read or opened for real
		return errMagicLink
	case err == unix.EXDEV:
		return errMagicLink
	default:
		return unix.ELOOP
	}
}

// pathError names the path inside the tree, which is what a reader of the error can act
// on; the caller adds which container it was.
func pathError(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: strings.TrimLeft(name, "/"), Err: err}
}
