// Package cgroup finds a unit's control groups in the hierarchies this process sees and
// reads their usage counters, on cgroup v2 (one unified hierarchy, as on NixOS) and on
// cgroup v1 (a hierarchy per controller, with systemd's own tracking in a cgroup2
// "unified" mount beside them, as on hybrid hosts). Which files hold what is chosen by
// what is mounted. It also moves a process into another process's groups (Join).
package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Hierarchy is one mounted cgroup hierarchy.
type Hierarchy struct {
	Point   string // where it is mounted
	Root    string // the group the mount shows, "/" for the whole hierarchy
	Unified bool   // cgroup2
	// Names are a v1 hierarchy's controllers and its name= option ("memory",
	// "cpu", "cpuacct", "name=systemd"), from the mount's super options.
	Names []string
}

// Has tells whether a v1 hierarchy carries the controller (or name=N).
func (h Hierarchy) Has(name string) bool { return slices.Contains(h.Names, name) }

// Dir is the directory of the group path (as systemd's ControlGroup or
// /proc/PID/cgroup gives it) in this hierarchy; false when the mount shows only another
// part of the hierarchy.
func (h Hierarchy) Dir(path string) (string, bool) {
	rel := path
	if h.Root != "/" {
		var ok bool
		if rel, ok = strings.CutPrefix(path, h.Root); !ok || rel != "" && rel[0] != '/' {
			return "", false
		}
	}
	return filepath.Join(h.Point, rel), true
}

// Hierarchies are the mounted hierarchies, in mount order.
type Hierarchies []Hierarchy

// Mounted lists the hierarchies mounted in this process's mount namespace.
func Mounted() (Hierarchies, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("list cgroup mounts: %w", err)
	}
	return ParseMountinfo(string(data)), nil
}

// ParseMountinfo picks the cgroup and cgroup2 mounts out of mountinfo text.
func ParseMountinfo(text string) Hierarchies {
	var out Hierarchies
	for _, line := range strings.Split(text, "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		fields := strings.Fields(line)
		sep := slices.Index(fields, "-")
		if sep < 5 || sep+3 >= len(fields) {
			continue
		}
		h := Hierarchy{Root: unescape(fields[3]), Point: unescape(fields[4])}
		switch fields[sep+1] {
		case "cgroup2":
			h.Unified = true
		case "cgroup":
			for _, opt := range strings.Split(fields[sep+3], ",") {
				if !slices.Contains(notControllers, opt) && (!strings.Contains(opt, "=") || strings.HasPrefix(opt, "name=")) {
					h.Names = append(h.Names, opt)
				}
			}
		default:
			continue
		}
		out = append(out, h)
	}
	return out
}

// notControllers are the v1 super options that name no controller.
var notControllers = []string{"rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode", "favordynmods"}

// V1 is the v1 hierarchy carrying the controller (or name=N).
func (hs Hierarchies) V1(controller string) (Hierarchy, bool) {
	for _, h := range hs {
		if !h.Unified && h.Has(controller) {
			return h, true
		}
	}
	return Hierarchy{}, false
}

// Unified is the cgroup2 hierarchy: all of it on a v2 host, systemd's tracking only on
// a hybrid one.
func (hs Hierarchies) Unified() (Hierarchy, bool) {
	for _, h := range hs {
		if h.Unified {
			return h, true
		}
	}
	return Hierarchy{}, false
}

// Membership is one line of /proc/PID/cgroup: a hierarchy and the process's group in it.
type Membership struct {
	Unified bool     // the "0::" line
	Names   []string // a v1 hierarchy's controllers and name=N
	Path    string
}

// ParseProcCgroup parses /proc/PID/cgroup ("ID:CONTROLLERS:PATH" lines).
func ParseProcCgroup(text string) []Membership {
	var out []Membership
	for _, line := range strings.Split(text, "\n") {
		id, rest, ok := strings.Cut(line, ":")
		names, path, ok2 := strings.Cut(rest, ":")
		if !ok || !ok2 || path == "" {
			continue
		}
		m := Membership{Path: path}
		if id == "0" && names == "" {
			m.Unified = true
		} else {
			m.Names = strings.Split(names, ",")
		}
		out = append(out, m)
	}
	return out
}

// Join moves the calling process into the groups of pid, in every mounted hierarchy,
// so that what it runs (and its children) counts against pid's limits and usage.
// Hierarchies that are not mounted here are left alone.
func Join(pid int) error {
	hs, err := Mounted()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return fmt.Errorf("cgroups of %d: %w", pid, err)
	}
	self := strconv.Itoa(os.Getpid())
	for _, m := range ParseProcCgroup(string(data)) {
		h, ok := hs.of(m)
		if !ok {
			continue
		}
		dir, ok := h.Dir(m.Path)
		if !ok {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(self), 0); err != nil {
			return fmt.Errorf("join cgroup %s: %w", dir, err)
		}
	}
	return nil
}

// of is the mounted hierarchy a /proc/PID/cgroup line is about.
func (hs Hierarchies) of(m Membership) (Hierarchy, bool) {
	if m.Unified {
		return hs.Unified()
	}
	for _, h := range hs {
		if !h.Unified && len(m.Names) > 0 && !slices.ContainsFunc(m.Names, func(n string) bool { return !h.Has(n) }) {
			return h, true
		}
	}
	return Hierarchy{}, false
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
