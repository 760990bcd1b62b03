package ops

import (
	"errors"
	"fmt"
	"io/fs"
	"path"

	"nixcfs/internal/guestroot"
)

// The files of a container's root tree that nixcfs reads and writes. The tree is the
// guest's: every access goes through a guestroot handle, so that no symlink, "..", FIFO
// or device the guest plants there leads the host to its own files or hangs it.

// MaxConfigSize caps configuration.nix: a configuration is kilobytes, and a read or a
// write of gigabytes must fail rather than fill the daemon's memory.
const MaxConfigSize = 16 << 20

// maxSmallFile caps the other files read from a root tree (host keys).
const maxSmallFile = 16 << 10

// Errors of accesses to a root tree that the guest made unsafe, for errors.Is.
var (
	ErrEscape     = guestroot.ErrEscape     // a symlink or ".." leads out of the tree
	ErrNotRegular = guestroot.ErrNotRegular // a FIFO, device, socket or directory
	ErrTooLarge   = guestroot.ErrTooLarge   // over the cap for that file
)

// inRoot runs f with a handle on the container's root tree.
func (l Layout) inRoot(name string, f func(r *guestroot.Root) error) error {
	r, err := guestroot.Open(l.RootPath(name))
	if err != nil {
		return err
	}
	defer r.Close()
	if err := f(r); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (l Layout) readConfig(name string) (text []byte, err error) {
	err = l.inRoot(name, func(r *guestroot.Root) error {
		text, err = r.ReadFile(configInRoot, MaxConfigSize)
		return err
	})
	return text, err
}

func (l Layout) statConfig(name string) (fi fs.FileInfo, err error) {
	err = l.inRoot(name, func(r *guestroot.Root) error {
		fi, err = r.Stat(configInRoot)
		return err
	})
	return fi, err
}

// writeConfig replaces configuration.nix atomically; a symlink planted at its name is
// replaced, never followed.
func (l Layout) writeConfig(name string, text []byte) error {
	return l.inRoot(name, func(r *guestroot.Root) error {
		if err := r.MkdirAll(path.Dir(configInRoot), 0o755); err != nil {
			return err
		}
		return r.WriteFile(configInRoot, text, 0o644)
	})
}

// HostKey returns the container's SSH host key (nixos-container show-host-key), as
// Layout.HostKey reads it. A refusal (a key the guest linked out of the tree, made a
// FIFO or grew past maxSmallFile) is noted in its status, naming the file; no key at
// all is os.ErrNotExist, and no failure.
func (m *Manager) HostKey(name string) ([]byte, error) {
	if _, err := m.reg.lookup(name); err != nil {
		return nil, err
	}
	key, err := m.l.HostKey(name)
	return key, m.notedUnlessMissing(name, err)
}

// HostKey returns the container's SSH host key: the ed25519 key, else the ECDSA one. A key that is there but refused (a symlink leading
// out of the tree, a FIFO, too large) is that error, unless the other key is readable:
// an error only of the last key tried would hide it behind "no such file".
func (l Layout) HostKey(name string) ([]byte, error) {
	var key []byte
	err := l.inRoot(name, func(r *guestroot.Root) error {
		var errs []error
		for _, k := range []string{"etc/ssh/ssh_host_ed25519_key.pub", "etc/ssh/ssh_host_ecdsa_key.pub"} {
			var err error
			if key, err = r.ReadFile(k, maxSmallFile); err == nil {
				return nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		if len(errs) == 0 {
			return fs.ErrNotExist
		}
		return errors.Join(errs...)
	})
	return key, err
}
