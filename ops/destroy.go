package ops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"nixcfs/internal/crash"
	"nixcfs/internal/guestroot"
)

// Destroy removes the container: profile, gc roots, root tree, build log, what nixcfs
// keeps of it, and conf file. A container that runs, starts or stops is refused
// (ErrBusy) at once, without waiting for a start in progress: stop it first. A build
// in progress is cancelled. Filesystems mounted inside the root tree (bind mounts of
// host data) are unmounted, detached, and the tree is deleted without following a
// symlink or entering another mount: the host's data survives.
func (m *Manager) Destroy(ctx context.Context, name string) error {
	return m.noted(name, m.destroy(ctx, name))
}

func (m *Manager) destroy(ctx context.Context, name string) error {
	c, err := m.reg.lookupForChange(name)
	if err != nil {
		return err
	}
	unlock, ok := c.unitSlot.tryLock()
	if !ok {
		return fmt.Errorf("%w: %s is starting", ErrBusy, name)
	}
	defer unlock()
	if err := m.markDestroying(c); err != nil {
		return err
	}
	err = m.removeMarked(ctx, name)
	if err != nil {
		m.reg.mu.Lock()
		c.destroying = false
		m.reg.mu.Unlock()
		return fmt.Errorf("destroy %s: %w", name, err)
	}
	m.sup.resetFailed(ctx, UnitName(name))
	if err := m.forgetLimits(ctx, name); err != nil {
		m.log.Warn().Str("container", name).Err(err).Msg("destroy: limits kept")
	}
	m.reg.mu.Lock()
	m.reg.forgetLocked(c)
	m.reg.mu.Unlock()
	return nil
}

// markDestroying checks that nothing uses the container's files, then marks it, so
// that no build or start begins, and ends a build in progress.
func (m *Manager) markDestroying(c *record) error {
	m.reg.mu.Lock()
	st := m.reg.stateLocked(c)
	if st.Busy() {
		m.reg.mu.Unlock()
		return fmt.Errorf("%w: %s is %s; stop it first", ErrBusy, c.name, st)
	}
	c.destroying = true
	run := c.running
	m.reg.mu.Unlock()
	if run != nil {
		run.cancel()
		m.waitRun(context.Background(), run)
	}
	return nil
}

// removeMarked removes the container's files under its intent to be destroyed, which a
// crash, or a removal that failed, leaves for a later destroy or the next start to
// finish.
func (m *Manager) removeMarked(ctx context.Context, name string) error {
	op, ok, err := m.l.tryLockOp(name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: another process works on %s (a build)", ErrBusy, name)
	}
	if err := op.mark(intentDestroy, 0, ""); err != nil {
		op.done()
		return err
	}
	crash.At(crash.DestroyMarked)
	if err := m.removeAll(ctx, name); err != nil {
		op.release() // the intent stays
		return err
	}
	op.done()
	return nil
}

// removeAll removes every file of the container under nixos-container's address lock,
// which conf edits take: none writes the conf file back. The conf file goes only once
// the rest is gone, so that a removal that fails leaves a container still listed,
// not files nothing names.
func (m *Manager) removeAll(ctx context.Context, name string) error {
	lock, err := lockAddresses(ctx, m.l.LockFile)
	if err != nil {
		return err
	}
	defer lock.unlock()
	if errs := m.removeFiles(name); len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := os.Remove(m.l.ConfPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	crash.At(crash.DestroyConf)
	return os.RemoveAll(m.l.DataPath(name))
}

// removeFiles removes the container's files but its conf file and nixcfs's own:
// profile, gc roots, root tree, build log.
func (m *Manager) removeFiles(name string) []error {
	var errs []error
	for _, p := range []string{m.l.ProfilePath(name), m.l.GCRootPath(name)} {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	crash.At(crash.DestroyProfile)
	if err := m.discard(m.l.RootPath(name)); err != nil {
		errs = append(errs, err)
	}
	crash.At(crash.DestroyRoot)
	if err := os.Remove(m.l.BuildLogPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errs
}

const trashPrefix = ".nixcfs-trash-"

// discard removes a root tree: what is mounted in it is unmounted at once, then it is
// renamed to a hidden name in its parent, so that it is gone from its place, and
// deleted in the background (Close waits). A large root tree must not hold up the
// caller.
func (m *Manager) discard(dir string) error {
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return nil
	}
	if err := guestroot.UnmountTree(dir); err != nil {
		return err
	}
	trash, err := os.MkdirTemp(filepath.Dir(dir), trashPrefix)
	if err != nil {
		return guestroot.RemoveTree(dir)
	}
	if err := os.Rename(dir, filepath.Join(trash, filepath.Base(dir))); err != nil {
		os.Remove(trash)
		return guestroot.RemoveTree(dir)
	}
	m.goBackground(func() {
		if err := guestroot.RemoveTree(trash); err != nil {
			m.log.Warn().Err(err).Str("path", trash).Msg("removing a destroyed root tree")
		}
	})
	return nil
}

// EmptyTrash removes root trees that an earlier run moved aside and did not finish
// deleting. The mount daemon calls it in the background at start.
func (m *Manager) EmptyTrash() {
	leftovers, _ := filepath.Glob(filepath.Join(m.l.StateDir, trashPrefix+"*"))
	for _, t := range leftovers {
		if err := guestroot.RemoveTree(t); err != nil {
			m.log.Warn().Err(err).Str("path", t).Msg("removing a destroyed root tree")
		}
	}
}
