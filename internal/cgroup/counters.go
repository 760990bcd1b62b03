package cgroup

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Counters are a group's usage, its subgroups included.
type Counters struct {
	MemoryCurrent uint64 // bytes
	MemoryPeak    uint64 // bytes; 0 where the kernel keeps no peak (v2 before Linux 5.19)
	CPUUsageUsec  uint64
	Tasks         uint64
	IOReadBytes   uint64
	IOWriteBytes  uint64
}

// Read reads the counters of the group at path (systemd's ControlGroup) from the files
// of whichever hierarchy carries each controller. A counter whose file is missing (its
// controller not enabled for the group) reads 0.
func (hs Hierarchies) Read(path string) Counters {
	var c Counters
	v2 := hs.unifiedDir(path)
	if dir, ok := hs.v1Dir("memory", path); ok {
		c.MemoryCurrent = readUint(dir, "memory.usage_in_bytes")
		c.MemoryPeak = readUint(dir, "memory.max_usage_in_bytes")
	} else {
		c.MemoryCurrent = readUint(v2, "memory.current")
		c.MemoryPeak = readUint(v2, "memory.peak")
	}
	// cgroup2 counts the CPU time of every group, controllers or not, also on hybrid
	// hosts, where v1's cpuacct often has no group for the unit.
	if usec, ok := keyed(readText(v2, "cpu.stat"), "usage_usec"); ok {
		c.CPUUsageUsec = usec
	} else if dir, ok := hs.v1Dir("cpuacct", path); ok {
		c.CPUUsageUsec = readUint(dir, "cpuacct.usage") / 1000 // ns
	}
	if dir, ok := hs.v1Dir("pids", path); ok {
		c.Tasks = readUint(dir, "pids.current")
	} else {
		c.Tasks = readUint(v2, "pids.current")
	}
	if dir, ok := hs.v1Dir("blkio", path); ok {
		text := readText(dir, "blkio.throttle.io_service_bytes_recursive")
		if text == "" {
			text = readText(dir, "blkio.throttle.io_service_bytes")
		}
		c.IOReadBytes, c.IOWriteBytes = ParseBlkio(text)
	} else {
		c.IOReadBytes, c.IOWriteBytes = ParseIOStat(readText(v2, "io.stat"))
	}
	return c
}

// v1Dir is the group's directory in the v1 hierarchy of the controller.
func (hs Hierarchies) v1Dir(controller, path string) (string, bool) {
	h, ok := hs.V1(controller)
	if !ok {
		return "", false
	}
	return h.Dir(path)
}

// unifiedDir is the group's directory in the cgroup2 hierarchy, "" without one.
func (hs Hierarchies) unifiedDir(path string) string {
	h, ok := hs.Unified()
	if !ok {
		return ""
	}
	dir, _ := h.Dir(path)
	return dir
}

func readText(dir, name string) string {
	if dir == "" {
		return ""
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return string(data)
}

// readUint reads a file holding one number; 0 when it is missing or says "max".
func readUint(dir, name string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSpace(readText(dir, name)), 10, 64)
	return n
}

// keyed finds KEY's number in flat keyed text ("KEY VALUE" lines: cpu.stat,
// memory.stat).
func keyed(text, key string) (uint64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// ParseIOStat sums bytes read and written over the devices of a v2 io.stat
// ("MAJ:MIN rbytes=N wbytes=N rios=N ..." lines).
func ParseIOStat(text string) (read, written uint64) {
	for _, line := range strings.Split(text, "\n") {
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			n, err := strconv.ParseUint(v, 10, 64)
			switch {
			case err != nil:
			case k == "rbytes":
				read += n
			case k == "wbytes":
				written += n
			}
		}
	}
	return read, written
}

// ParseBlkio sums bytes read and written over the devices of a v1
// blkio.throttle.io_service_bytes ("MAJ:MIN Read N" lines, then "Total N").
func ParseBlkio(text string) (read, written uint64) {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, err := strconv.ParseUint(f[2], 10, 64)
		switch {
		case err != nil:
		case f[1] == "Read":
			read += n
		case f[1] == "Write":
			written += n
		}
	}
	return read, written
}
