package main

// Accounts: /etc/passwd, /etc/group and /etc/shadow, made from users.users
// at boot and on every activation, as NixOS's update-users-groups.pl makes
// them with users.mutableUsers = true (its default):
//
//   - /etc/passwd and /etc/group hold exactly the declared users and the
//     groups they name, besides the groups every NixOS system has;
//   - a user without a uid keeps the one /etc/passwd gave it before, or gets
//     the next free one from 1000 up (from 999 down for a system user); a
//     group that is not one of NixOS's gets a gid likewise, from 999 down;
//   - a user's /etc/shadow line is kept once it exists (a password set with
//     passwd stays); a new user's password is its hashedPassword, else its
//     initialPassword hashed, else "!" (locked: no password login, but root
//     can still su to it).

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

const (
	// loginShell is every user's shell but a system user's, as NixOS's
	// /run/current-system/sw/bin/bash is.
	loginShell = "/run/current-system/sw/bin/sh"
	// noLoginShell is a system user's shell.
	noLoginShell = "/run/current-system/sw/bin/nologin"
	// maxID is the highest uid or gid (the 32-bit (uid_t)-1 means "none").
	maxID = 4294967294

	firstNormalID = 1000 // normal users' uids count up from here
	lastSystemID  = 999  // system users' uids and new groups' gids count down from here
	firstSystemID = 400  // ... to here
)

// staticGroups are the groups every NixOS system has, with NixOS's gids
// (nixos/modules/misc/ids.nix and config/users-groups.nix).
var staticGroups = map[string]int{
	"root": 0, "wheel": 1, "kmem": 2, "tty": 3, "disk": 6, "audio": 17,
	"floppy": 18, "uucp": 19, "lp": 20, "cdrom": 24, "tape": 25, "video": 26,
	"dialout": 27, "utmp": 29, "adm": 55, "users": 100, "input": 174,
	"kvm": 302, "render": 303, "sgx": 304, "shadow": 318, "nixbld": 30000,
	"nogroup": 65534,
}

// account is one user as /etc/passwd has it.
type account struct {
	name, gecos, home, shell string
	uid, gid                 int
	createHome               bool
}

// accounts is what makeAccounts decided: the users (sorted by uid) and the
// content of the three files.
type accounts struct {
	users                 []account
	passwd, group, shadow string
	groupIDs              map[string]int
}

// oldAccounts is what the files held before: the uid of each user, the gid
// of each group and each user's /etc/shadow line.
type oldAccounts struct {
	uids   map[string]int
	gids   map[string]int
	shadow map[string]string
}

// parseOldAccounts reads existing /etc/passwd, /etc/group and /etc/shadow
// contents (any of them may be empty). Lines it cannot read are skipped.
func parseOldAccounts(passwd, group, shadow []byte) oldAccounts {
	old := oldAccounts{uids: map[string]int{}, gids: map[string]int{}, shadow: map[string]string{}}
	ids := func(data []byte, into map[string]int) {
		for _, fields := range lines(data) {
			if len(fields) < 3 || fields[0] == "" {
				continue
			}
			if id, err := strconv.Atoi(fields[2]); err == nil && id >= 0 && id <= maxID {
				into[fields[0]] = id
			}
		}
	}
	ids(passwd, old.uids)
	ids(group, old.gids)
	for _, fields := range lines(shadow) {
		if len(fields) >= 2 && fields[0] != "" {
			old.shadow[fields[0]] = strings.Join(fields, ":")
		}
	}
	return old
}

// lines splits a colon-separated file into its lines' fields.
func lines(data []byte) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, strings.Split(line, ":"))
		}
	}
	return out
}

// makeAccounts computes the accounts of cfg (checked by parseConfig), given
// what the files held before. hash hashes an initialPassword for
// /etc/shadow.
func makeAccounts(cfg *Config, old oldAccounts, hash func(password string) (string, error)) (*accounts, error) {
	attrs := cfg.userNames()
	gids, err := groupIDs(cfg, attrs, old)
	if err != nil {
		return nil, err
	}
	uids, err := userIDs(cfg, attrs, old)
	if err != nil {
		return nil, err
	}
	users, members, hashed, err := userAccounts(cfg, attrs, old, uids, gids, hash)
	if err != nil {
		return nil, err
	}
	var passwd, shadow strings.Builder
	for _, a := range users {
		fmt.Fprintf(&passwd, "%s:x:%d:%d:%s:%s:%s\n", a.name, a.uid, a.gid, a.gecos, a.home, a.shell)
		if line, exists := old.shadow[a.name]; exists {
			shadow.WriteString(line + "\n")
		} else {
			fmt.Fprintf(&shadow, "%s:%s:1::::::\n", a.name, hashed[a.name])
		}
	}
	return &accounts{users: users, passwd: passwd.String(), group: groupFile(gids, members),
		shadow: shadow.String(), groupIDs: gids}, nil
}

// primaryGroup is a user's own group, as NixOS defaults it.
func primaryGroup(u UserConfig) string {
	if u.Group != "" {
		return u.Group
	}
	if u.IsNormalUser {
		return "users"
	}
	return "nogroup"
}

// groupIDs numbers the groups: NixOS's own, then those the users name, each
// keeping the number it had if it is free.
func groupIDs(cfg *Config, attrs []string, old oldAccounts) (map[string]int, error) {
	gids := map[string]int{}
	usedGIDs := map[int]bool{}
	for name, gid := range staticGroups {
		gids[name], usedGIDs[gid] = gid, true
	}
	var newGroups []string
	seen := map[string]bool{}
	for _, attr := range attrs {
		u := cfg.Users.Users[attr]
		for _, g := range append([]string{primaryGroup(u)}, u.ExtraGroups...) {
			if _, known := gids[g]; known || seen[g] {
				continue
			}
			seen[g] = true
			if gid, ok := old.gids[g]; ok && !usedGIDs[gid] {
				gids[g], usedGIDs[gid] = gid, true
			} else {
				newGroups = append(newGroups, g)
			}
		}
	}
	for _, g := range newGroups {
		gid, err := allocate(usedGIDs, false)
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", g, err)
		}
		gids[g] = gid
	}
	return gids, nil
}

// userIDs numbers the users: declared uids, then the ones they had, then new ones.
func userIDs(cfg *Config, attrs []string, old oldAccounts) (map[string]int, error) {
	usedUIDs := map[int]bool{}
	uids := map[string]int{}
	for _, attr := range attrs {
		if u := cfg.Users.Users[attr]; u.UID != nil {
			uids[attr], usedUIDs[*u.UID] = *u.UID, true
		}
	}
	var newUsers []string
	for _, attr := range attrs {
		u := cfg.Users.Users[attr]
		if u.UID != nil {
			continue
		}
		if uid, ok := old.uids[u.accountName(attr)]; ok && !usedUIDs[uid] && inAutoRange(uid, u.IsSystemUser) {
			uids[attr], usedUIDs[uid] = uid, true
		} else {
			newUsers = append(newUsers, attr)
		}
	}
	for _, attr := range newUsers {
		uid, err := allocate(usedUIDs, !cfg.Users.Users[attr].IsSystemUser)
		if err != nil {
			return nil, fmt.Errorf("user %s: %w", attr, err)
		}
		uids[attr] = uid
	}
	return uids, nil
}

// userAccounts makes the accounts, sorted by uid, the members of each group, and
// the shadow password of each account the old files did not have.
func userAccounts(cfg *Config, attrs []string, old oldAccounts, uids, gids map[string]int,
	hash func(string) (string, error)) (users []account, members map[string][]string, hashed map[string]string, err error) {
	members, hashed = map[string][]string{}, map[string]string{}
	for _, attr := range attrs {
		u := cfg.Users.Users[attr]
		a := account{name: u.accountName(attr), gecos: u.Description, home: u.Home, shell: loginShell,
			uid: uids[attr], gid: gids[primaryGroup(u)], createHome: u.CreateHome}
		if u.IsSystemUser {
			a.shell = noLoginShell
		}
		if a.home == "" {
			a.home = "/var/empty"
		}
		users = append(users, a)
		for _, g := range u.ExtraGroups {
			members[g] = append(members[g], a.name)
		}
		if _, exists := old.shadow[a.name]; exists {
			continue
		}
		switch {
		case u.HashedPassword != nil:
			hashed[a.name] = *u.HashedPassword
		case u.InitialPassword != nil:
			h, err := hash(*u.InitialPassword)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("hash the initial password of %s: %w", a.name, err)
			}
			hashed[a.name] = h
		default:
			hashed[a.name] = "!"
		}
	}
	sort.Slice(users, func(i, j int) bool {
		if users[i].uid != users[j].uid {
			return users[i].uid < users[j].uid
		}
		return users[i].name < users[j].name
	})
	return users, members, hashed, nil
}

// groupFile is /etc/group's text, by gid.
func groupFile(gids map[string]int, members map[string][]string) string {
	groupNames := make([]string, 0, len(gids))
	for g := range gids {
		groupNames = append(groupNames, g)
	}
	sort.Slice(groupNames, func(i, j int) bool {
		gi, gj := gids[groupNames[i]], gids[groupNames[j]]
		if gi != gj {
			return gi < gj
		}
		return groupNames[i] < groupNames[j]
	})
	var group strings.Builder
	for _, g := range groupNames {
		m := members[g]
		sort.Strings(m)
		fmt.Fprintf(&group, "%s:x:%d:%s\n", g, gids[g], strings.Join(dedup(m), ","))
	}
	return group.String()
}

// inAutoRange tells whether id is one init could have picked for a user.
func inAutoRange(id int, system bool) bool {
	if system {
		return id >= firstSystemID && id <= lastSystemID
	}
	return id >= firstNormalID && id < staticGroups["nixbld"]
}

// allocate takes the first free id: from 1000 up (normal), or from 999
// down to 400 (system users and groups).
func allocate(used map[int]bool, normal bool) (int, error) {
	if normal {
		for id := firstNormalID; id < staticGroups["nixbld"]; id++ {
			if !used[id] {
				used[id] = true
				return id, nil
			}
		}
	} else {
		for id := lastSystemID; id >= firstSystemID; id-- {
			if !used[id] {
				used[id] = true
				return id, nil
			}
		}
	}
	return 0, fmt.Errorf("no free id left")
}

// dedup removes adjacent duplicates from a sorted list.
func dedup(list []string) []string {
	var out []string
	for i, s := range list {
		if i == 0 || s != list[i-1] {
			out = append(out, s)
		}
	}
	return out
}
