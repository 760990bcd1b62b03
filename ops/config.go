package ops

import (
	"context"
	"fmt"
	"os"
	"time"
)

// The container's configuration.nix: read, replaced and built. Builds go through
// claimBuild, so each caller's text is the one built.

// ReadConfig returns the container's configuration.nix.
func (m *Manager) ReadConfig(name string) ([]byte, error) {
	if _, err := m.reg.lookup(name); err != nil {
		return nil, err
	}
	return os.ReadFile(m.l.ConfigPath(name))
}

// ConfigInfo is the size and modification time of the container's configuration.nix;
// os.ErrNotExist when it has none (made from a prebuilt system).
func (m *Manager) ConfigInfo(name string) (size int64, mtime time.Time, err error) {
	if _, err := m.reg.lookup(name); err != nil {
		return 0, time.Time{}, err
	}
	fi, err := os.Stat(m.l.ConfigPath(name))
	if err != nil {
		return 0, time.Time{}, err
	}
	return fi.Size(), fi.ModTime(), nil
}

// SetConfig is `nixos-container update NAME --config-file`: the text becomes the
// container's configuration.nix, the system is built and, if the container runs,
// activated without a restart. The new text stays even when the build fails; the
// container then keeps its previous system and Status says why. If ctx ends once the
// build has begun, the build and switch go on and ctx's error is returned.
func (m *Manager) SetConfig(ctx context.Context, name string, text []byte) error {
	return m.update(ctx, name, text)
}

// Update builds the current configuration.nix and, if the container runs, switches it
// to the new system (`nixos-container update NAME`).
func (m *Manager) Update(ctx context.Context, name string) error {
	return m.update(ctx, name, nil)
}

func (m *Manager) update(ctx context.Context, name string, text []byte) error {
	c, err := m.reg.lookupForChange(name)
	if err != nil {
		return err
	}
	run, err := m.claimBuild(ctx, c)
	if err != nil {
		return err
	}
	m.runBuild(c, run, func(ctx context.Context) error {
		if text != nil {
			if err := writeFileAtomic(m.l.ConfigPath(name), text, 0o644); err != nil {
				return fmt.Errorf("write configuration of %s: %w", name, err)
			}
		}
		conf, err := m.Conf(name)
		if err != nil {
			return err
		}
		if err := m.buildSystem(ctx, name, conf); err != nil {
			return err
		}
		if st, _ := m.State(name); st.Running() {
			return m.reloadUnit(ctx, name)
		}
		return nil
	})
	return m.waitRun(ctx, run)
}
