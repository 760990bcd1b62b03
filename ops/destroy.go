package ops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Destroy removes the container: profile, gc roots, root tree, build log and conf
// file. A container that runs, starts or stops is refused (ErrBusy) at once, without
// waiting for a start in progress: stop it first. A build in progress is cancelled.
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
	root := m.l.RootPath(name)
	if err := m.markDestroying(c, root); err != nil {
		return err
	}
	if err := m.removeFiles(ctx, name); err != nil {
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
func (m *Manager) markDestroying(c *record, root string) error {
	if mnt := MountsUnder(root); len(mnt) > 0 {
		return fmt.Errorf("%w: %s has filesystems mounted in its root tree (%s); unmount them first", ErrBusy, c.name, strings.Join(mnt, ", "))
	}
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

// removeFiles removes every file of the container, the conf file last, under
// nixos-container's lock, which conf edits take: none writes it back.
func (m *Manager) removeFiles(ctx context.Context, name string) error {
	var errs []error
	for _, p := range []string{m.l.ProfilePath(name), m.l.GCRootPath(name)} {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.discard(m.l.RootPath(name)); err != nil {
		errs = append(errs, err)
	}
	os.Remove(m.l.BuildLogPath(name))
	if lock, err := lockAddresses(ctx, m.l.LockFile); err != nil {
		errs = append(errs, err)
	} else {
		if err := os.Remove(m.l.ConfPath(name)); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
		lock.unlock()
	}
	return errors.Join(errs...)
}

const trashPrefix = ".nixcfs-trash-"

// discard removes a directory tree: renamed to a hidden name in its parent, so that it
// is gone from its place at once, then deleted in the background (Close waits). A
// large root tree must not hold up the caller.
func (m *Manager) discard(dir string) error {
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return nil
	}
	trash, err := os.MkdirTemp(filepath.Dir(dir), trashPrefix)
	if err != nil {
		return removeTree(dir)
	}
	if err := os.Rename(dir, filepath.Join(trash, filepath.Base(dir))); err != nil {
		os.Remove(trash)
		return removeTree(dir)
	}
	m.goBackground(func() {
		if err := removeTree(trash); err != nil {
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
		if err := removeTree(t); err != nil {
			m.log.Warn().Err(err).Str("path", t).Msg("removing a destroyed root tree")
		}
	}
}

// removeTree is os.RemoveAll that refuses to descend into a filesystem mounted inside
// the tree (nixos-container's `rm --one-file-system`): a bind mount's host data is
// never deleted.
func removeTree(dir string) error {
	if mnt := MountsUnder(dir); len(mnt) > 0 {
		return fmt.Errorf("%w: filesystems are mounted under %s (%s)", ErrBusy, dir, strings.Join(mnt, ", "))
	}
	return os.RemoveAll(dir)
}
