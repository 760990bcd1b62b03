package ops

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"nixcfs/internal/atomicfile"
)

// Conf is a container's NAME.conf: shell-style KEY=VALUE lines read by systemd as an
// EnvironmentFile. Order, comments and unknown keys survive a rewrite.
type Conf struct {
	lines []string
}

// ParseConf reads the KEY=VALUE text of a conf file.
func ParseConf(data []byte) Conf {
	var c Conf
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		c.lines = append(c.lines, sc.Text())
	}
	return c
}

// ReadConf reads and parses a conf file.
func ReadConf(path string) (Conf, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Conf{}, err
	}
	return ParseConf(data), nil
}

func splitConfLine(line string) (key, value string, ok bool) {
	t := strings.TrimSpace(line)
	if t == "" || strings.HasPrefix(t, "#") {
		return "", "", false
	}
	t = strings.TrimPrefix(t, "export ")
	key, value, ok = strings.Cut(t, "=")
	if !ok {
		return "", "", false
	}
	value = strings.TrimSpace(value)
	if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
		value = value[1 : len(value)-1]
	}
	return strings.TrimSpace(key), value, true
}

// Get returns the value of key, "" when absent (as the shell would).
func (c Conf) Get(key string) string {
	v := ""
	for _, l := range c.lines {
		if k, val, ok := splitConfLine(l); ok && k == key {
			v = val
		}
	}
	return v
}

// Set replaces key's value, or appends it.
func (c *Conf) Set(key, value string) {
	for i, l := range c.lines {
		if k, _, ok := splitConfLine(l); ok && k == key {
			c.lines[i] = key + "=" + value
			return
		}
	}
	c.lines = append(c.lines, key+"="+value)
}

// Bytes is the file text.
func (c Conf) Bytes() []byte {
	var b bytes.Buffer
	for _, l := range c.lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// clone is a copy that a later Set does not share.
func (c Conf) clone() Conf { return Conf{lines: append([]string(nil), c.lines...)} }

// newConf is the conf file nixos-container writes on create.
func newConf(hostAddr, localAddr, bridge, port string, autoStart bool) Conf {
	var c Conf
	c.Set("PRIVATE_NETWORK", "1")
	c.Set("HOST_ADDRESS", hostAddr)
	c.Set("LOCAL_ADDRESS", localAddr)
	c.Set("HOST_BRIDGE", bridge)
	c.Set("HOST_PORT", port)
	c.Set("AUTO_START", boolDigit(autoStart))
	return c
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// writeFileAtomic replaces path with data; readers see the old or the new file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return atomicfile.Write(path, data, perm)
}

// listConfNames returns the names of the containers that have a conf file.
func listConfNames(confDir string) ([]string, error) {
	entries, err := os.ReadDir(confDir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		n, ok := strings.CutSuffix(e.Name(), ".conf")
		if ok && nameRE.MatchString(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// isDeclarative tells a container that NixOS manages from the host's configuration:
// its conf file is not writable (a read-only store path, as nixos-container checks with
// access(2)), or a symlink into the store (/etc/static), which root could otherwise
// write through on a writable store.
func isDeclarative(confPath string) bool {
	if fi, err := os.Lstat(confPath); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return true
	}
	return unix.Access(confPath, unix.W_OK) != nil
}

// DefaultConfig is the configuration.nix nixos-container writes on create; extra is
// spliced in as nixos-container does with --config (or "imports = [ FILE ];").
func DefaultConfig(name, extra string) string {
	return fmt.Sprintf(`{ config, lib, pkgs, ... }:

with lib;

{ boot.isContainer = true;
  networking.hostName = mkDefault %q;
  networking.useDHCP = false;
  %s
}
`, name, extra)
}

// ConfigText is the configuration.nix nixos-container writes for --config TEXT or
// --config-file FILE (imported by its absolute path): its template with that added.
func ConfigText(name, config, configFile string) (string, error) {
	if config != "" && configFile != "" {
		return "", fmt.Errorf("%w: --config and --config-file are mutually incompatible", ErrInvalid)
	}
	if configFile != "" {
		abs, err := filepath.Abs(configFile)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			return "", fmt.Errorf("%w: config file: %v", ErrInvalid, err)
		}
		config = "imports = [ " + abs + " ];"
	}
	return DefaultConfig(name, config), nil
}
