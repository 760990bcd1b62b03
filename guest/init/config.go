package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Config is the part of a system's config.json (the evaluated NixOS-style
// configuration, as guest/modules.nix writes it) that init acts on. Other
// options are in the file too and ignored here.
type Config struct {
	Networking struct {
		HostName string `json:"hostName"`
		UseDHCP  bool   `json:"useDHCP"`
	} `json:"networking"`
	Services struct {
		Hello   HelloConfig `json:"hello"`
		OpenSSH struct {
			Enable bool `json:"enable"`
		} `json:"openssh"`
	} `json:"services"`
	Users struct {
		Users map[string]UserConfig `json:"users"`
	} `json:"users"`
	System struct {
		StateVersion string `json:"stateVersion"`
	} `json:"system"`
}

// HelloConfig is services.hello: an HTTP service answering Message to any GET.
type HelloConfig struct {
	Enable  bool   `json:"enable"`
	Port    int    `json:"port"`
	Message string `json:"message"`
}

// UserConfig is users.users.<name>, as far as init needs it.
type UserConfig struct {
	Name            string   `json:"name"` // the account name; empty means the attribute name
	Description     string   `json:"description"`
	IsNormalUser    bool     `json:"isNormalUser"`
	IsSystemUser    bool     `json:"isSystemUser"`
	UID             *int     `json:"uid"` // nil: init picks one
	Group           string   `json:"group"`
	ExtraGroups     []string `json:"extraGroups"`
	Home            string   `json:"home"`
	CreateHome      bool     `json:"createHome"`
	InitialPassword *string  `json:"initialPassword"`
	HashedPassword  *string  `json:"hashedPassword"`
	OpenSSH         struct {
		AuthorizedKeys struct {
			Keys []string `json:"keys"`
		} `json:"authorizedKeys"`
	} `json:"openssh"`
}

// parseConfig decodes and checks config.json. The Nix types already checked
// the values; this guards against a file that was not made by modules.nix.
func parseConfig(data []byte) (*Config, error) {
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, err
	}
	if h := cfg.Services.Hello; h.Enable && (h.Port < 0 || h.Port > 65535) {
		return nil, fmt.Errorf("services.hello.port %d is not a TCP port", h.Port)
	}
	uids := map[int]string{}
	accounts := map[string]string{}
	for _, name := range cfg.userNames() {
		if !validUserName(name) {
			return nil, fmt.Errorf("users.users: %q is not a usable user name", name)
		}
		user := cfg.Users.Users[name]
		account := user.accountName(name)
		if !validAccountName(account) {
			return nil, fmt.Errorf("users.users.%s.name: %q is not a usable user name", name, account)
		}
		if other, dup := accounts[account]; dup {
			return nil, fmt.Errorf("users.users.%s and users.users.%s are both the account %s", other, name, account)
		}
		accounts[account] = name
		fields := map[string]string{"description": user.Description, "home": user.Home}
		if user.HashedPassword != nil {
			fields["hashedPassword"] = *user.HashedPassword
		}
		for i, g := range append([]string{user.Group}, user.ExtraGroups...) {
			if g != "" && !validAccountName(g) {
				field := "group"
				if i > 0 {
					field = fmt.Sprintf("extraGroups[%d]", i-1)
				}
				return nil, fmt.Errorf("users.users.%s.%s: %q is not a usable group name", name, field, g)
			}
		}
		for field, value := range fields {
			if !passwdField(value) {
				return nil, fmt.Errorf("users.users.%s.%s: %q contains a colon or a newline", name, field, value)
			}
		}
		if user.UID != nil {
			if *user.UID < 0 || *user.UID > maxID {
				return nil, fmt.Errorf("users.users.%s.uid: %d is out of range", name, *user.UID)
			}
			if other, dup := uids[*user.UID]; dup {
				return nil, fmt.Errorf("users.users.%s and users.users.%s have the same uid %d", other, name, *user.UID)
			}
			uids[*user.UID] = name
		}
	}
	return &cfg, nil
}

// accountName is the user's name in /etc/passwd: its name option, which
// defaults to the attribute name.
func (u UserConfig) accountName(attr string) string {
	if u.Name != "" {
		return u.Name
	}
	return attr
}

// accountNamePattern is what useradd accepts by default (a trailing $ for
// machine accounts): nothing that would break /etc/group's member lists.
var accountNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}\$?$`)

func validAccountName(name string) bool {
	return accountNamePattern.MatchString(name)
}

// passwdField accepts values that can stand in a field of /etc/passwd,
// /etc/group or /etc/shadow (NixOS's types.passwdEntry).
func passwdField(s string) bool {
	return !strings.ContainsAny(s, ":\n\r")
}

// loadConfig reads the config.json of the system at systemPath.
func loadConfig(systemPath string) (*Config, error) {
	file := filepath.Join(systemPath, "config.json")
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load configuration: %w", err)
	}
	cfg, err := parseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("load configuration %s: %w", file, err)
	}
	return cfg, nil
}

// authorizedKeys returns, per user with at least one key, the content of
// that user's authorized_keys file.
func (c *Config) authorizedKeys() map[string]string {
	files := map[string]string{}
	for name, user := range c.Users.Users {
		keys := user.OpenSSH.AuthorizedKeys.Keys
		if len(keys) == 0 {
			continue
		}
		var b strings.Builder
		for _, key := range keys {
			b.WriteString(strings.TrimRight(key, "\n"))
			b.WriteByte('\n')
		}
		files[name] = b.String()
	}
	return files
}

// userNames lists the configured users, sorted (for logs).
func (c *Config) userNames() []string {
	names := make([]string, 0, len(c.Users.Users))
	for name := range c.Users.Users {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// validUserName accepts names that are safe as a file name in
// /etc/ssh/authorized_keys.d.
func validUserName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00\n")
}

// systemPathOf resolves the system a program of it was started from:
// levels 1 for SYSTEM/init, 2 for SYSTEM/bin/switch-to-configuration.
// program may be a profile path (/nix/var/nix/profiles/system/init); the
// result is the store path the symlinks lead to.
func systemPathOf(program string, levels int) (string, error) {
	if !strings.Contains(program, "/") {
		found, err := exec.LookPath(program)
		if err != nil {
			return "", err
		}
		program = found
	}
	dir := program
	for range levels {
		dir = filepath.Dir(dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}
