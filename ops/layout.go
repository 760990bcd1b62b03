package ops

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
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
	DataDir    string // what nixcfs keeps of each container outside its root tree, NAME/
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
		DataDir:    "/var/lib/nixcfs",
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

// LayoutOf is the layout in which NAME.conf exists: NixOS 22.05's, else the older one,
// else (a container not made yet) NixOS 22.05's. The unit template's steps use it, so
// that one template serves both layouts.
func LayoutOf(name string) Layout {
	if _, err := os.Stat(OldLayout().ConfPath(name)); err == nil {
		if _, err := os.Stat(NewLayout().ConfPath(name)); err != nil {
			return OldLayout()
		}
	}
	return NewLayout()
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

// DataPath is what nixcfs keeps of the container on the host, outside its root tree:
// the texts it built, and the markers of operations in progress.
func (l Layout) DataPath(name string) string { return filepath.Join(l.DataDir, name) }

// BuildInputPath is the host-owned copy of the configuration a build evaluates: never
// the file in the root tree, which the guest could swap for a link to a host file
// between nixcfs's check and nix's read.
func (l Layout) BuildInputPath(name string) string {
	return filepath.Join(l.DataPath(name), "configuration.nix")
}

// ConfigPath is the container's configuration.nix, inside its root tree, where
// nixos-container keeps it (and where an admin inside the container edits it).
func (l Layout) ConfigPath(name string) string {
	return filepath.Join(l.RootPath(name), configInRoot)
}

// configInRoot is where configuration.nix is, inside a root tree.
const configInRoot = "etc/nixos/configuration.nix"

// SystemOf is the container's system: $SYSTEM_PATH when its conf sets one (NixOS
// declarative containers may), else its profile.
func (l Layout) SystemOf(name string, conf Conf) string {
	if sys := conf.Get("SYSTEM_PATH"); sys != "" {
		return sys
	}
	return l.SystemLink(name)
}

// UnitName is the systemd unit of a container, as on NixOS.
func UnitName(name string) string { return "container@" + name + ".service" }

// containerOfUnit is NAME for "container@NAME.service".
func containerOfUnit(unit string) (string, bool) {
	rest, ok := strings.CutPrefix(unit, "container@")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, ".service")
}

// HostInterface is the host side of the container's veth pair.
func HostInterface(name string) string { return "ve-" + name }

// NetnsName is the name of the container's network namespace under /run/netns.
func NetnsName(name string) string { return "nixcfs-" + name }

// NetnsPath is where the container's network namespace is bound.
func NetnsPath(name string) string { return filepath.Join("/run/netns", NetnsName(name)) }

// MaxNameLen keeps "ve-NAME" within the kernel's 15-byte interface names.
const MaxNameLen = 11

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// reservedNames are names nixcfs's mount uses for files of its own, beside the
// containers' directories: a container of that name would be hidden.
var reservedNames = []string{"events"}

// ValidateName checks a container name before anything is written.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	if slices.Contains(reservedNames, name) {
		return fmt.Errorf("%w: %q is reserved for the mount's own file of that name", ErrInvalidName, name)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %q", ErrNameTooLong, name)
	}
	return nil
}
