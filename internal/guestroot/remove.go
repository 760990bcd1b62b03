package guestroot

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// RemoveTree removes the root tree at dir, as a container's destroy does, without ever
// touching anything outside it:
//
//   - First every mount at or under dir is unmounted, detached, deepest first. They are
//     found in mountinfo by dir's real path (its host-owned parent resolved through
//     symlinks; nothing inside the tree is resolved), and each is reached from that
//     parent without following any symlink and unmounted only if it is the mount
//     mountinfo named, so that a guest cannot steer an unmount elsewhere.
//   - Then the tree is deleted with calls relative to open directories, never following
//     a symlink (a symlink is removed, not its target) and never entering another
//     mount: a directory whose mount id differs from the tree's is an error.
//
// A missing dir is not an error. If dir itself is a symlink, only the symlink is
// removed. The mounts are those of the calling thread's mount namespace. The walk
// holds a bounded number of descriptors however deep the guest nested its directories.
func RemoveTree(dir string) error {
	if err := removeTree(dir); err != nil {
		return fmt.Errorf("remove root tree %s: %w", dir, err)
	}
	return nil
}

// UnmountTree is RemoveTree's first step alone: every mount at or under dir is
// unmounted, detached, deepest first, and the tree stays. A destroy does it at once and
// leaves the deleting to the background.
func UnmountTree(dir string) error {
	err := withTree(dir, false, func(parent int, realDir string) error {
		return unmountUnder(parent, realDir)
	})
	if err != nil {
		return fmt.Errorf("unmount in root tree %s: %w", dir, err)
	}
	return nil
}

func removeTree(dir string) error {
	return withTree(dir, true, func(parent int, realDir string) error {
		if err := unmountUnder(parent, realDir); err != nil {
			return err
		}
		return removeDir(parent, filepath.Base(realDir))
	})
}

// withTree resolves dir's host-owned parent and calls do with it open, when dir is a
// directory. A missing dir is nothing to do; a dir that is a symlink or another
// non-directory is unlinked if unlinkOther, else left.
func withTree(dir string, unlinkOther bool, do func(parent int, realDir string) error) error {
	realDir, err := realPath(dir)
	if err != nil {
		return err
	}
	if realDir == "/" {
		return fmt.Errorf("refusing to remove /: %w", unix.EINVAL)
	}
	parent, err := unix.Open(filepath.Dir(realDir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: filepath.Dir(realDir), Err: err}
	}
	defer unix.Close(parent)
	base := filepath.Base(realDir)
	var st unix.Stat_t
	switch err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case err == unix.ENOENT:
		return nil
	case err != nil:
		return &fs.PathError{Op: "stat", Path: realDir, Err: err}
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		if !unlinkOther {
			return nil
		}
		if err := unix.Unlinkat(parent, base, 0); err != nil && err != unix.ENOENT {
			return &fs.PathError{Op: "remove", Path: realDir, Err: err}
		}
		return nil
	}
	return do(parent, realDir)
}

// unmountUnder unmounts every mount at or under realDir, whose parent directory is open
// as parent. It goes round until none is left: unmounting one may reveal another that
// it hid.
func unmountUnder(parent int, realDir string) error {
	base := filepath.Base(realDir)
	for {
		mounts, err := mountsUnder(realDir)
		if err != nil {
			return err
		}
		if len(mounts) == 0 {
			return nil
		}
		progress := false
		for _, m := range mounts {
			done, err := unmountOne(parent, base+strings.TrimPrefix(m.point, realDir), m)
			if err != nil {
				return err
			}
			progress = progress || done
		}
		if !progress {
			points := make([]string, len(mounts))
			for i, m := range mounts {
				points[i] = m.point
			}
			return fmt.Errorf("cannot reach the mounts under it to unmount them: %s: %w", strings.Join(points, ", "), unix.EBUSY)
		}
	}
}

// unmountOne detaches mount m, reached as rel from parent. It reports false, and
// leaves it for a later round, when rel does not lead to m's root without symlinks:
// another mount is on top of it, or the guest changed the path.
func unmountOne(parent int, rel string, m mountEntry) (bool, error) {
	fd, err := openat2(parent, rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return false, nil
	}
	defer unix.Close(fd)
	id, err := mountID(fd)
	if err != nil {
		return false, err
	}
	if id != m.id {
		return false, nil
	}
	// umount2 on the descriptor's /proc link unmounts exactly the mount held open;
	// the path in mountinfo could be resolved again differently.
	if err := unix.Unmount(fmt.Sprintf("/proc/thread-self/fd/%d", fd), unix.MNT_DETACH); err != nil {
		return false, &fs.PathError{Op: "unmount", Path: m.point, Err: err}
	}
	return true, nil
}

// mountID is the id of the mount fd is on (statx's STATX_MNT_ID, Linux 5.8+).
func mountID(fd int) (uint64, error) {
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, fmt.Errorf("statx: %w", err)
	}
	if stx.Mask&unix.STATX_MNT_ID == 0 {
		return 0, errors.New("the kernel does not report mount ids (Linux 5.8 or later is needed)")
	}
	return stx.Mnt_id, nil
}

// removeDir deletes the directory base of parent and everything in it, on its own
// mount only.
func removeDir(parent int, base string) error {
	fd, err := unix.Openat(parent, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: base, Err: err}
	}
	mnt, err := mountID(fd)
	if err != nil {
		unix.Close(fd)
		return err
	}
	if err := emptyDir(fd, mnt); err != nil {
		return err
	}
	if err := unix.Unlinkat(parent, base, unix.AT_REMOVEDIR); err != nil {
		return &fs.PathError{Op: "remove", Path: base, Err: err}
	}
	return nil
}

// level is a directory the walk went down into: its name in its parent, and the
// parent's identity, checked when the walk comes back up through "..".
type level struct {
	name     string
	dev, ino uint64
}

// emptyDir deletes everything in the directory open as fd (and closes fd), staying on
// mount mnt. Only the current directory is held open: going down opens the child,
// coming back opens "..", and checks that it is the directory it came from. So a
// guest's million nested directories cost no descriptors, and no stack.
func emptyDir(fd int, mnt uint64) error {
	w := &treeWalk{cur: fd, mnt: mnt}
	defer func() { unix.Close(w.cur) }()
	buf := make([]byte, 32<<10)
	var names []string
	for {
		n, err := unix.ReadDirent(w.cur, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "read directory", Path: w.where("."), Err: err}
		}
		if n == 0 {
			// cur is empty: go up and remove it, or stop at the top.
			if len(w.down) == 0 {
				return nil
			}
			if err := w.up(); err != nil {
				return err
			}
			continue
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names[:0])
		if err := w.remove(names); err != nil {
			return err
		}
	}
}

// treeWalk is emptyDir's place in the tree: the directory open now, and the way down.
type treeWalk struct {
	cur  int
	down []level
	mnt  uint64
}

// where is name's path from the top of the walk, for errors.
func (w *treeWalk) where(name string) string {
	parts := make([]string, 0, len(w.down)+1)
	for _, l := range w.down {
		parts = append(parts, l.name)
	}
	return strings.Join(append(parts, name), "/")
}

// up leaves the current directory, which is empty, for its parent, and removes it.
func (w *treeWalk) up() error {
	up, err := goUp(w.cur, w.down[len(w.down)-1])
	if err != nil {
		return &fs.PathError{Op: "go up from", Path: w.where("."), Err: err}
	}
	unix.Close(w.cur)
	w.cur = up
	name := w.down[len(w.down)-1].name
	w.down = w.down[:len(w.down)-1]
	if err := unix.Unlinkat(w.cur, name, unix.AT_REMOVEDIR); err != nil {
		return &fs.PathError{Op: "remove", Path: w.where(name), Err: err}
	}
	return nil
}

// remove unlinks the entries names of the current directory, until one is a
// directory: the walk then goes down into it. The rest of the batch is read again,
// from the start, when the walk comes back up; what was deleted by then is no longer
// listed.
func (w *treeWalk) remove(names []string) error {
	for _, name := range names {
		err := unix.Unlinkat(w.cur, name, 0)
		if err == nil || err == unix.ENOENT {
			continue
		}
		if err != unix.EISDIR {
			return &fs.PathError{Op: "remove", Path: w.where(name), Err: err}
		}
		child, err := goDown(w.cur, name, w.mnt)
		if err != nil {
			return &fs.PathError{Op: "remove", Path: w.where(name), Err: err}
		}
		var st unix.Stat_t
		if err := unix.Fstat(w.cur, &st); err != nil {
			unix.Close(child)
			return &fs.PathError{Op: "stat", Path: w.where("."), Err: err}
		}
		w.down = append(w.down, level{name: name, dev: st.Dev, ino: st.Ino})
		unix.Close(w.cur)
		w.cur = child
		return nil
	}
	return nil
}

// goDown opens the subdirectory name of dir, refusing a symlink (O_NOFOLLOW) and a
// directory on another mount.
func goDown(dir int, name string, mnt uint64) (int, error) {
	child, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	id, err := mountID(child)
	if err == nil && id != mnt {
		err = fmt.Errorf("another filesystem is mounted here; not descending into it: %w", unix.EBUSY)
	}
	if err != nil {
		unix.Close(child)
		return -1, err
	}
	return child, nil
}

// goUp opens the parent of dir and checks it is the directory the walk came down from
// (a concurrent rename could have moved dir elsewhere).
func goUp(dir int, from level) (int, error) {
	up, err := unix.Openat(dir, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(up, &st); err != nil {
		unix.Close(up)
		return -1, err
	}
	if st.Dev != from.dev || st.Ino != from.ino {
		unix.Close(up)
		return -1, errors.New("the directory was moved during the removal")
	}
	return up, nil
}
