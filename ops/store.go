package ops

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"nixcfs/internal/atomicfile"
)

// Layout is where nixos-container keeps its files. Two layouts exist: NixOS 22.05 and
// later use /etc/nixos-containers and /var/lib/nixos-containers; older NixOS (and the
// NixOS manual's text) /etc/containers and /var/lib/containers.
type Layout struct {
	ConfDir    string // NAME.conf files
	StateDir   string // NAME/ root trees
	ProfileDir string // per-container profiles: PROFILEDIR/NAME/system
	GCRootDir  string // per-container gc roots
	LockFile   string // the lock nixos-container takes while picking addresses
	LogDir     string // nixcfs's own build logs, NAME.build.log
}

// NewLayout is the NixOS 22.05+ layout.
func NewLayout() Layout {
	return Layout{
		ConfDir:    "/etc/nixos-containers",
		StateDir:   "/var/lib/nixos-containers",
		ProfileDir: "/nix/var/nix/profiles/per-container",
		GCRootDir:  "/nix/var/nix/gcroots/per-container",
		LockFile:   "/run/lock/nixos-container",
		LogDir:     "/var/log/nixcfs",
	}
}

// OldLayout is the layout of NixOS before 22.05, and of the NixOS manual's text.
func OldLayout() Layout {
	l := NewLayout()
	l.ConfDir = "/etc/containers"
	l.StateDir = "/var/lib/containers"
	return l
}

// DetectLayout picks the layout the host uses: the new one when /etc/nixos-containers
// exists or nothing of the old one does. /etc/containers alone proves nothing (podman
// keeps its registries.conf there), so the old layout is chosen only when
// /var/lib/containers exists and /etc/containers holds a nixos-container conf file.
func DetectLayout() Layout {
	newL, oldL := NewLayout(), OldLayout()
	if isDir(newL.ConfDir) {
		return newL
	}
	if isDir(oldL.StateDir) {
		confs, _ := filepath.Glob(filepath.Join(oldL.ConfDir, "*.conf"))
		for _, c := range confs {
			if conf, err := ReadConf(c); err == nil && (conf.Get("LOCAL_ADDRESS") != "" || conf.Get("PRIVATE_NETWORK") != "") {
				return oldL
			}
		}
	}
	return newL
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func (l Layout) ConfPath(name string) string    { return filepath.Join(l.ConfDir, name+".conf") }
func (l Layout) RootPath(name string) string    { return filepath.Join(l.StateDir, name) }
func (l Layout) ProfilePath(name string) string { return filepath.Join(l.ProfileDir, name) }
func (l Layout) SystemLink(name string) string  { return filepath.Join(l.ProfileDir, name, "system") }
func (l Layout) GCRootPath(name string) string  { return filepath.Join(l.GCRootDir, name) }
func (l Layout) BuildLogPath(name string) string {
	return filepath.Join(l.LogDir, name+".build.log")
}

// ConfigPath is the container's configuration.nix, inside its root tree, where
// nixos-container keeps it (and where an admin inside the container edits it).
func (l Layout) ConfigPath(name string) string {
	return filepath.Join(l.RootPath(name), "etc", "nixos", "configuration.nix")
}

// MaxNameLen keeps "ve-NAME" within the kernel's 15-byte interface names.
const MaxNameLen = 11

var (
	nameRE       = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	generationRE = regexp.MustCompile(`-(\d+)-link$`)
)

// ValidateName checks a container name before anything is written.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %q", ErrNameTooLong, name)
	}
	return nil
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

// systemGeneration reads the profile's current system and generation number.
func systemGeneration(systemLink string) (system string, gen int) {
	target, err := os.Readlink(systemLink)
	if err != nil {
		return "", 0
	}
	// system -> system-N-link -> /nix/store/...
	if m := generationRE.FindStringSubmatch(target); m != nil {
		gen, _ = strconv.Atoi(m[1])
	}
	system, err = filepath.EvalSymlinks(systemLink)
	if err != nil {
		return "", gen
	}
	return system, gen
}
