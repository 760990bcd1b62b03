package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	OpenSSH struct {
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
	for name := range cfg.Users.Users {
		if !validUserName(name) {
			return nil, fmt.Errorf("users.users: %q is not a usable user name", name)
		}
	}
	return &cfg, nil
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
