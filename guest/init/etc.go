package main

// What init keeps in the container's root for its shell and its users, at
// boot and on every activation, at the paths NixOS has them:
//
//	/bin/sh         -> SYSTEM/sw/bin/sh (busybox's ash)
//	/usr/bin/env    -> SYSTEM/sw/bin/env
//	/etc/passwd, /etc/group, /etc/shadow (see users.go)
//	/etc/profile    PATH=/run/wrappers/bin:/run/current-system/sw/bin:/bin, PS1
//	/etc/shells, /etc/hostname
//	/root, /var/empty and the homes of users with createHome
//
// Files are replaced atomically and only when they change; links are
// replaced atomically. Login shells (su -l, login) read /etc/profile, so
// `su root -l -c CMD' finds CMD in /run/current-system/sw/bin.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// profilePath is login shells' PATH, as on NixOS (less its per-user profiles).
const profilePath = "/run/wrappers/bin:/run/current-system/sw/bin:/bin"

// etcProfile is /etc/profile.
const etcProfile = `# /etc/profile: written by the nixcfs guest's init at boot and on every
# activation; changes here are lost. Read by login shells (su -l, login).
export PATH="` + profilePath + `"
if [ "$(id -u)" = 0 ]; then
    PS1='[\u@\h:\w]# '
else
    PS1='[\u@\h:\w]$ '
fi
export PS1
umask 022
[ -r /etc/profile.local ] && . /etc/profile.local
`

// etcShells is /etc/shells: the shells su lets a user pick.
const etcShells = `/run/current-system/sw/bin/sh
/run/current-system/sw/bin/ash
/bin/sh
`

// systemLinks are the links into the system outside it: path -> program
// of SYSTEM/sw/bin.
var systemLinks = []struct{ link, program string }{
	{"bin/sh", "sh"},
	{"usr/bin/env", "env"},
}

// writeEtc makes root (the container's /) match system and cfg; hash hashes
// initial passwords. Every step is tried; the errors are joined.
func writeEtc(root, system string, cfg *Config, hash func(string) (string, error)) error {
	var errs []error
	for _, l := range systemLinks {
		target := filepath.Join(system, "sw", "bin", l.program)
		if _, err := os.Stat(target); err != nil {
			errs = append(errs, fmt.Errorf("link /%s: the system has no %s (is it built by this guest?)", l.link, target))
			continue
		}
		if err := replaceSymlink(target, filepath.Join(root, l.link)); err != nil {
			errs = append(errs, fmt.Errorf("link /%s: %w", l.link, err))
		}
	}

	etc := filepath.Join(root, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return errors.Join(append(errs, err)...)
	}
	acc, err := writeAccounts(etc, cfg, hash)
	if err != nil {
		errs = append(errs, err)
	}
	files := map[string]string{"profile": etcProfile, "shells": etcShells}
	if name := cfg.Networking.HostName; name != "" {
		files["hostname"] = name + "\n"
	}
	for name, content := range files {
		if err := writeFileAtomic(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("write /etc/%s: %w", name, err))
		}
	}

	for _, d := range []struct {
		path string
		mode fs.FileMode
	}{{"root", 0o700}, {"var/empty", 0o555}} {
		if err := os.MkdirAll(filepath.Join(root, d.path), d.mode); err != nil {
			errs = append(errs, fmt.Errorf("make /%s: %w", d.path, err))
		}
	}
	if acc != nil {
		for _, a := range acc.users {
			if err := makeHome(root, a); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// writeAccounts rewrites etc/passwd, etc/group and etc/shadow from cfg and
// what they held.
func writeAccounts(etc string, cfg *Config, hash func(string) (string, error)) (*accounts, error) {
	read := func(name string) ([]byte, error) {
		data, err := os.ReadFile(filepath.Join(etc, name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return data, err
	}
	var old [3][]byte
	for i, name := range []string{"passwd", "group", "shadow"} {
		data, err := read(name)
		if err != nil {
			// Without them, uids and passwords set before would be lost.
			return nil, fmt.Errorf("accounts: %w", err)
		}
		old[i] = data
	}
	acc, err := makeAccounts(cfg, parseOldAccounts(old[0], old[1], old[2]), hash)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	var errs []error
	// group first and shadow before passwd: a user is never in /etc/passwd
	// before its group and password are in place.
	for _, f := range []struct {
		name, content string
		mode          fs.FileMode
	}{{"group", acc.group, 0o644}, {"shadow", acc.shadow, 0o600}, {"passwd", acc.passwd, 0o644}} {
		if err := writeFileAtomic(filepath.Join(etc, f.name), []byte(f.content), f.mode); err != nil {
			errs = append(errs, fmt.Errorf("write /etc/%s: %w", f.name, err))
		}
	}
	return acc, errors.Join(errs...)
}

// makeHome creates the home of a user with createHome, owned by the user,
// mode 0700, if it does not exist (NixOS's users.users.NAME.homeMode).
func makeHome(root string, a account) error {
	if !a.createHome || !filepath.IsAbs(a.home) || filepath.Clean(a.home) == "/" {
		return nil
	}
	home := filepath.Join(root, a.home)
	if _, err := os.Lstat(home); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(home), 0o755); err != nil {
		return fmt.Errorf("home of %s: %w", a.name, err)
	}
	if err := os.Mkdir(home, 0o700); err != nil {
		return fmt.Errorf("home of %s: %w", a.name, err)
	}
	if os.Geteuid() != 0 {
		return nil // only tests run unprivileged
	}
	if err := os.Lchown(home, a.uid, a.gid); err != nil {
		return fmt.Errorf("home of %s: %w", a.name, err)
	}
	return nil
}
