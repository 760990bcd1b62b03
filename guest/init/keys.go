package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"nixcfs/internal/atomicfile"
)

// authorizedKeysDir is where NixOS's sshd looks for keys
// (AuthorizedKeysFile includes /etc/ssh/authorized_keys.d/%u).
const authorizedKeysDir = "etc/ssh/authorized_keys.d"

// writeAuthorizedKeys makes dir hold exactly one file per user in files
// (name -> content): changed files are replaced atomically, files of users
// that are no longer configured are removed.
func writeAuthorizedKeys(dir string, files map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("authorized keys: %w", err)
	}
	var errs []error
	for user, content := range files {
		if err := writeFileAtomic(filepath.Join(dir, user), []byte(content), 0o444); err != nil {
			errs = append(errs, fmt.Errorf("authorized keys of %s: %w", user, err))
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("authorized keys: %w", err))...)
	}
	for _, e := range entries {
		if _, wanted := files[e.Name()]; wanted || e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("authorized keys: remove stale %s: %w", e.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// writeFileAtomic replaces path with data unless it already holds exactly
// that, so readers never see a half-written file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return os.Chmod(path, perm)
	}
	return atomicfile.Write(path, data, perm)
}

// replaceSymlink points link at target, atomically (a new link renamed over
// the old one), creating the link's directory if needed.
func replaceSymlink(target, link string) error {
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return err
	}
	tmp := link + ".new"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
