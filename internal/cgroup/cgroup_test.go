package cgroup

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Parsing of recorded file contents. The counters of real groups are read by the
// integration tests (ops, testscripts) inside the test host, which has cgroup v1; the
// v2 files are read only here.

// hybridMountinfo is the test host's, as recorded (Debian 12, systemd 252).
const hybridMountinfo = `1478 2174 0:147 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:563 - tmpfs tmpfs ro,size=4096k,nr_inodes=1024,mode=755
1485 1478 0:29 / /sys/fs/cgroup/cpu rw,nosuid,nodev,noexec,relatime shared:564 - cgroup cgroup rw,cpu
1489 1478 0:36 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:568 - cgroup cgroup rw,pids
1490 1478 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:569 - cgroup cgroup rw,memory
1491 1478 0:35 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:570 - cgroup cgroup rw,blkio
1492 1478 0:30 / /sys/fs/cgroup/cpuacct rw,nosuid,nodev,noexec,relatime shared:571 - cgroup cgroup rw,cpuacct
1493 1478 0:38 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:572 - cgroup2 cgroup rw
1494 1478 0:37 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:573 - cgroup cgroup rw,xattr,name=systemd
`

// v2Mountinfo is a NixOS host's.
const v2Mountinfo = `22 1 0:20 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw
31 21 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

func TestParseMountinfo(t *testing.T) {
	hs := ParseMountinfo(hybridMountinfo)
	if len(hs) != 7 {
		t.Fatalf("%d hierarchies, want 7: %+v", len(hs), hs)
	}
	if h, ok := hs.V1("memory"); !ok || h.Point != "/sys/fs/cgroup/memory" {
		t.Errorf("memory: %+v %v", h, ok)
	}
	if h, ok := hs.V1("name=systemd"); !ok || !slices.Equal(h.Names, []string{"name=systemd"}) {
		t.Errorf("name=systemd: %+v %v", h, ok)
	}
	if h, ok := hs.Unified(); !ok || h.Point != "/sys/fs/cgroup/unified" {
		t.Errorf("unified: %+v %v", h, ok)
	}
	hs = ParseMountinfo(v2Mountinfo)
	if _, ok := hs.V1("memory"); ok || len(hs) != 1 || !hs[0].Unified || hs[0].Point != "/sys/fs/cgroup" {
		t.Errorf("v2: %+v", hs)
	}
	co := ParseMountinfo(`40 30 0:33 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct` + "\n")
	if h, ok := co.V1("cpuacct"); !ok || h.Point != "/sys/fs/cgroup/cpu,cpuacct" || !h.Has("cpu") {
		t.Errorf("co-mounted cpu,cpuacct: %+v %v", h, ok)
	}
}

func TestDir(t *testing.T) {
	h := Hierarchy{Point: "/sys/fs/cgroup", Root: "/"}
	if d, ok := h.Dir("/system.slice/container@a.service"); !ok || d != "/sys/fs/cgroup/system.slice/container@a.service" {
		t.Errorf("whole hierarchy: %q %v", d, ok)
	}
	h.Root = "/machine.slice"
	if d, ok := h.Dir("/machine.slice/container@a.service"); !ok || d != "/sys/fs/cgroup/container@a.service" {
		t.Errorf("part of it: %q %v", d, ok)
	}
	if _, ok := h.Dir("/machine.slicex/container@a.service"); ok {
		t.Error("a group outside the mount's root was found in it")
	}
}

func TestParseProcCgroup(t *testing.T) {
	ms := ParseProcCgroup("9:name=systemd:/a/payload\n1:cpu,cpuacct:/a\n0::/a/payload\n")
	if len(ms) != 3 || ms[0].Names[0] != "name=systemd" || !slices.Equal(ms[1].Names, []string{"cpu", "cpuacct"}) ||
		!ms[2].Unified || ms[2].Path != "/a/payload" {
		t.Fatalf("%+v", ms)
	}
	hs := ParseMountinfo(hybridMountinfo)
	if h, ok := hs.of(ms[0]); !ok || h.Point != "/sys/fs/cgroup/systemd" {
		t.Errorf("name=systemd line: %+v %v", h, ok)
	}
	if _, ok := hs.of(ms[1]); ok {
		t.Error("cpu,cpuacct matched separately mounted cpu and cpuacct")
	}
}

func TestParseIO(t *testing.T) {
	r, w := ParseIOStat("259:0 rbytes=1048576 wbytes=4096 rios=12 wios=1 dbytes=0 dios=0\n8:0 rbytes=10 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n")
	if r != 1048586 || w != 4116 {
		t.Errorf("io.stat: %d %d", r, w)
	}
	r, w = ParseBlkio("8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\n253:0 Read 1\n253:0 Write 2\nTotal 12291\n")
	if r != 4097 || w != 8194 {
		t.Errorf("blkio: %d %d", r, w)
	}
}

// writeFiles makes a group directory of recorded files.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const unit = "/machine.slice/container@a.service"

func TestReadV2(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root+unit, map[string]string{
		"memory.current": "52428800\n", "memory.peak": "73400320\n", "pids.current": "9\n",
		"cpu.stat": "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\nnr_periods 0\n",
		"io.stat":  "254:0 rbytes=8192 wbytes=4096 rios=2 wios=1 dbytes=0 dios=0\n",
	})
	c := Hierarchies{{Point: root, Root: "/", Unified: true}}.Read(unit)
	want := Counters{MemoryCurrent: 52428800, MemoryPeak: 73400320, CPUUsageUsec: 1500000, Tasks: 9, IOReadBytes: 8192, IOWriteBytes: 4096}
	if c != want {
		t.Errorf("v2: %+v, want %+v", c, want)
	}
}

func TestReadV1(t *testing.T) {
	root := t.TempDir()
	hs := Hierarchies{{Point: root + "/unified", Root: "/", Unified: true}}
	for _, ctl := range []string{"memory", "pids", "cpuacct", "blkio"} {
		hs = append(hs, Hierarchy{Point: root + "/" + ctl, Root: "/", Names: []string{ctl}})
	}
	writeFiles(t, root+"/memory"+unit, map[string]string{"memory.usage_in_bytes": "3260416\n", "memory.max_usage_in_bytes": "4000000\n"})
	writeFiles(t, root+"/pids"+unit, map[string]string{"pids.current": "7\n"})
	writeFiles(t, root+"/blkio"+unit, map[string]string{"blkio.throttle.io_service_bytes_recursive": "8:0 Read 100\n8:0 Write 200\nTotal 300\n"})
	// No cpuacct group (systemd made none): the unified hierarchy's cpu.stat counts.
	writeFiles(t, root+"/unified"+unit, map[string]string{"cpu.stat": "usage_usec 71272\nuser_usec 67520\n"})
	want := Counters{MemoryCurrent: 3260416, MemoryPeak: 4000000, CPUUsageUsec: 71272, Tasks: 7, IOReadBytes: 100, IOWriteBytes: 200}
	if c := hs.Read(unit); c != want {
		t.Errorf("hybrid: %+v, want %+v", c, want)
	}
	// Without a unified hierarchy, cpuacct's nanoseconds.
	writeFiles(t, root+"/cpuacct"+unit, map[string]string{"cpuacct.usage": "2500000000\n"})
	if c := hs[1:].Read(unit); c.CPUUsageUsec != 2500000 {
		t.Errorf("cpuacct: %+v", c)
	}
	// A stopped unit's groups are gone: zeros.
	if c := hs.Read("/gone.service"); c != (Counters{}) {
		t.Errorf("missing group: %+v", c)
	}
}
