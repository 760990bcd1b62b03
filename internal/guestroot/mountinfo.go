package guestroot

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// mountEntry is one line of mountinfo: the mount's id (the one statx reports as
// STATX_MNT_ID) and where it is mounted.
type mountEntry struct {
	id     uint64
	point  string
	fstype string
}

// MountsUnder lists the mount points at dir or below it, deepest first, in the calling
// thread's mount namespace. dir's parent
// belongs to the host and is resolved through symlinks (/var/lib/nixos-containers may be
// one), because mountinfo lists real paths; dir's own last component is taken as it is,
// and nothing inside the tree is resolved. The listed paths are those real ones.
func MountsUnder(dir string) ([]string, error) {
	realDir, err := realPath(dir)
	if err != nil {
		return nil, err
	}
	mounts, err := mountsUnder(realDir)
	if err != nil {
		return nil, err
	}
	points := make([]string, len(mounts))
	for i, m := range mounts {
		points[i] = m.point
	}
	return points, nil
}

// MountedAt tells the type of the filesystem mounted at dir (its last mount there), or
// "" when dir is no mount point; dir is resolved as MountsUnder does.
func MountedAt(dir string) (fstype string, err error) {
	realDir, err := realPath(dir)
	if err != nil {
		return "", err
	}
	all, err := readMountinfo()
	if err != nil {
		return "", err
	}
	for _, m := range all {
		if m.point == realDir {
			fstype = m.fstype
		}
	}
	return fstype, nil
}

// realPath is dir with its parent resolved through symlinks.
func realPath(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	if abs == "/" {
		return abs, nil
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	return filepath.Join(parent, filepath.Base(abs)), nil
}

// mountsUnder lists the mounts at realDir (a path without symlinks) or below it,
// deepest first and, at one place, the last mounted (the one on top) first.
func mountsUnder(realDir string) ([]mountEntry, error) {
	all, err := readMountinfo()
	if err != nil {
		return nil, err
	}
	var under []mountEntry
	for i := len(all) - 1; i >= 0; i-- {
		if p := all[i].point; p == realDir || strings.HasPrefix(p, realDir+"/") || realDir == "/" {
			under = append(under, all[i])
		}
	}
	// A stable sort keeps the reversed mountinfo order among mounts at one depth.
	slices.SortStableFunc(under, func(a, b mountEntry) int {
		return strings.Count(b.point, "/") - strings.Count(a.point, "/")
	})
	return under, nil
}

// readMountinfo parses the mount table of the calling thread's mount namespace, which
// is the one its unmounts act on (thread-self, not self: a thread may have a namespace
// of its own).
func readMountinfo() ([]mountEntry, error) {
	data, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	var out []mountEntry
	for _, line := range strings.Split(string(data), "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		id, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		e := mountEntry{id: id, point: unescapeMountinfo(fields[4])}
		if i := slices.Index(fields, "-"); i > 0 && i+1 < len(fields) {
			e.fstype = fields[i+1]
		}
		out = append(out, e)
	}
	return out, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of mountinfo paths.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
