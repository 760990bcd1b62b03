package guestroot

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// WriteFile replaces the file at name with data and mode perm (exactly: the umask does
// not apply), atomically: readers see the old content or the new one. Whatever is at
// name is replaced, never followed: a symlink planted there is itself replaced by the
// file (this is how etc/resolv.conf is refreshed). The parent directory must exist and
// may be reached through symlinks that stay inside the tree; a directory at name is an
// error.
func (r *Root) WriteFile(name string, data []byte, perm fs.FileMode) error {
	return r.writeFile(name, data, perm, randomTempName)
}

// writeFile is WriteFile with the temp names chosen by tempName, so that a test can
// plant a symlink at the very name that will be tried.
func (r *Root) writeFile(name string, data []byte, perm fs.FileMode, tempName func(base string) string) error {
	err := r.inParent(name, func(dir int, base string) error {
		tmp, err := writeTemp(dir, base, data, perm, tempName)
		if err != nil {
			return err
		}
		// renameat replaces the directory entry at base, whatever it is (but a
		// directory), without resolving it.
		if err := unix.Renameat(dir, tmp, dir, base); err != nil {
			unix.Unlinkat(dir, tmp, 0)
			return err
		}
		return unix.Fsync(dir)
	})
	if err != nil {
		return pathError("write", name, err)
	}
	return nil
}

// CreateIfMissing creates name with data and mode perm if nothing is there, and
// reports whether it did. Anything already there, a symlink included (dangling or not,
// leading anywhere), is left alone and not followed. Like WriteFile, the file appears
// whole or not at all.
func (r *Root) CreateIfMissing(name string, data []byte, perm fs.FileMode) (created bool, err error) {
	err = r.inParent(name, func(dir int, base string) error {
		tmp, err := writeTemp(dir, base, data, perm, randomTempName)
		if err != nil {
			return err
		}
		// linkat never replaces and never follows the new name: EEXIST means something
		// is there. (renameat2's RENAME_NOREPLACE would too, but not every filesystem
		// has it.)
		err = unix.Linkat(dir, tmp, dir, base, 0)
		unix.Unlinkat(dir, tmp, 0)
		switch err {
		case nil:
			created = true
			return unix.Fsync(dir)
		case unix.EEXIST:
			return nil
		default:
			return err
		}
	})
	if err != nil {
		return created, pathError("create", name, err)
	}
	return created, nil
}

// MkdirAll creates the directory name and any missing parents with mode perm (less the
// umask, as mkdir(2) does). Existing directories, and symlinks to directories inside
// the tree, are used as they are; a symlink leading out is ErrEscape, and an existing
// non-directory is an error (ENOTDIR).
func (r *Root) MkdirAll(name string, perm fs.FileMode) error {
	rel, err := inTree(name)
	if err != nil {
		return pathError("mkdir", name, err)
	}
	if err := r.mkdirAll(rel, perm); err != nil {
		return pathError("mkdir", name, err)
	}
	return nil
}

func (r *Root) mkdirAll(rel string, perm fs.FileMode) error {
	// Each prefix is resolved from the top of the tree, not from the previous
	// directory's handle, so that a symlink to anywhere inside the tree is followed.
	parent, err := unix.Dup(r.fd)
	if err != nil {
		return err
	}
	defer func() { unix.Close(parent) }()
	prefix := ""
	for _, c := range splitPath(rel) {
		if c == "." {
			continue
		}
		if prefix != "" {
			prefix += "/"
		}
		prefix += c
		if c != ".." {
			// A single name in an open directory: nothing to follow, and EEXIST
			// whatever (even a symlink) is already there.
			if err := unix.Mkdirat(parent, c, uint32(perm.Perm())); err != nil && err != unix.EEXIST {
				return err
			}
		}
		next, err := r.open(prefix, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		unix.Close(parent)
		parent = next
	}
	return nil
}

// splitPath splits a relative path at its slashes, leaving out empty components.
func splitPath(rel string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(rel); i++ {
		if i == len(rel) || rel[i] == '/' {
			if i > start {
				out = append(out, rel[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// inParent opens the parent directory of name inside the tree and calls f with it and
// the last component, which f handles with single-name *at calls that follow nothing.
func (r *Root) inParent(name string, f func(dir int, base string) error) error {
	parent, base, err := splitParent(name)
	if err != nil {
		return err
	}
	// O_RDONLY rather than O_PATH: the directory is fsynced. O_DIRECTORY makes the
	// kernel refuse anything else before opening it, so no device is opened.
	dir, err := r.open(parent, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	return f(dir, base)
}

// writeTemp writes data to a new file in dir, named after base, and returns its name.
// O_CREAT|O_EXCL|O_NOFOLLOW creates a new inode or fails: an entry planted at the
// chosen name, a symlink included, is never opened; another name is tried instead.
func writeTemp(dir int, base string, data []byte, perm fs.FileMode, tempName func(base string) string) (string, error) {
	for range 16 {
		tmp := tempName(base)
		fd, err := unix.Openat(dir, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == unix.EEXIST {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("create a temp file: %w", err)
		}
		err = fill(fd, data, perm)
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
		if err != nil {
			unix.Unlinkat(dir, tmp, 0)
			return "", fmt.Errorf("write a temp file: %w", err)
		}
		return tmp, nil
	}
	return "", errors.New("create a temp file: every name tried was taken")
}

// fill writes data, sets the mode, and syncs, so that the rename that follows publishes
// a complete file.
func fill(fd int, data []byte, perm fs.FileMode) error {
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		data = data[n:]
	}
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		return err
	}
	return unix.Fsync(fd)
}

// randomTempName is a hidden name next to base that a guest cannot predict. base is
// shortened so that the name stays within NAME_MAX.
func randomTempName(base string) string {
	var b [8]byte
	rand.Read(b[:])
	if len(base) > 200 {
		base = base[:200]
	}
	return "." + base + ".nixcfs-tmp-" + hex.EncodeToString(b[:])
}
