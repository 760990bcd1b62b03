package ops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"nixcfs/internal/crash"
)

// The container's configuration.nix: read, replaced and built. Each text written queues
// a build of that text (queueConfig).

// ReadConfig returns the container's configuration.nix: a regular file of at most
// MaxConfigSize inside its root tree (ErrEscape, ErrNotRegular, ErrTooLarge otherwise,
// noted in its status); os.ErrNotExist when it has none (made from a prebuilt system).
func (m *Manager) ReadConfig(name string) ([]byte, error) {
	if _, err := m.reg.lookup(name); err != nil {
		return nil, err
	}
	text, err := m.l.readConfig(name)
	return text, m.notedUnlessMissing(name, err)
}

// ConfigInfo is the size and modification time of the container's configuration.nix,
// with the same errors as ReadConfig.
func (m *Manager) ConfigInfo(name string) (size int64, mtime time.Time, err error) {
	if _, err := m.reg.lookup(name); err != nil {
		return 0, time.Time{}, err
	}
	fi, err := m.l.statConfig(name)
	if err != nil {
		return 0, time.Time{}, m.notedUnlessMissing(name, err)
	}
	return fi.Size(), fi.ModTime(), nil
}

// notedUnlessMissing is noted, except for a file that is simply not there.
func (m *Manager) notedUnlessMissing(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return m.noted(name, err)
}

// SetConfig is `nixos-container update NAME --config-file`: the text becomes the
// container's configuration.nix, the system is built and, if the container runs,
// activated without a restart. The new text stays even when the build fails; the
// container then keeps its previous system and Status says why. If ctx ends once the
// build has been queued, the build and switch go on and ctx's error is returned.
func (m *Manager) SetConfig(ctx context.Context, name string, text []byte) error {
	run, err := m.queueConfig(name, text)
	if err != nil {
		return err
	}
	return m.waitRun(ctx, run)
}

// WriteConfig is SetConfig that returns as soon as the text is written and its build
// queued: for a rename over config.nix, during which the kernel holds the container
// directory's lock. The build's outcome shows in Status and the events.
func (m *Manager) WriteConfig(ctx context.Context, name string, text []byte) error {
	_, err := m.queueConfig(name, text)
	return err
}

// Update builds the current configuration.nix and, if the container runs, switches it
// to the new system (`nixos-container update NAME`).
func (m *Manager) Update(ctx context.Context, name string) error {
	run, err := m.queueConfig(name, nil)
	if err != nil {
		return err
	}
	return m.waitRun(ctx, run)
}

// queueConfig writes text as the container's configuration.nix (nil keeps the one
// there) and queues a build of it. Builds of one container run one at a time, in the
// order their texts were written, each of its own text.
func (m *Manager) queueConfig(name string, text []byte) (*buildRun, error) {
	c, err := m.reg.lookupForChange(name)
	if err != nil {
		return nil, err
	}
	c.textMu.Lock()
	defer c.textMu.Unlock()
	if text != nil {
		err = m.l.writeConfig(name, text)
	} else {
		text, err = m.l.readConfig(name)
	}
	hash := textHash(text)
	if err == nil {
		err = m.l.noteWritten(name, hash)
	}
	if err != nil {
		return nil, m.noted(name, fmt.Errorf("configuration of %s: %w", name, err))
	}
	crash.At(crash.ConfigWritten)
	m.reg.mu.Lock()
	run := m.queueLocked(c)
	run.hash = hash
	m.reg.mu.Unlock()
	m.runQueued(c, run, func(ctx context.Context) error {
		conf, err := m.Conf(name)
		if err != nil {
			return err
		}
		if err := m.buildSystem(ctx, name, conf, text); err != nil {
			return err
		}
		if st, _ := m.State(name); st.Running() {
			return m.reloadUnit(ctx, name)
		}
		return nil
	})
	return run, nil
}
