package ops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nixcfs/internal/cgroup"
)

// Limits and stats on the real stack: the properties reach systemd's drop-in and the
// kernel's own files of the unit's cgroup, watchers hear of them, the counters are the
// unit's, and destroy takes the drop-in away. Inside the test host (cgroup v1).

func TestLimitsReachTheKernel(t *testing.T) {
	m := testManager(t)
	ctx := testCtx(t)
	mustCreate(t, m, "lim1", CreateOptions{ConfigText: helloConfig("lim1", "limited")})
	events := m.Watch(ctx, "lim1")
	if err := m.SetLimits(ctx, "lim1", map[string]string{"memory.max": "64M", "pids.max": "30"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"memory.max 67108864", "pids.max 30"} {
		select {
		case ev := <-events:
			if got := ev.Kind.String() + " " + ev.Value; got != want {
				t.Errorf("event %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event %q", want)
		}
	}
	dropIn := filepath.Join(systemControlDirs[0], UnitName("lim1")+".d")
	if data, err := os.ReadFile(filepath.Join(dropIn, "50-MemoryMax.conf")); err != nil || !strings.Contains(string(data), "MemoryMax=67108864") {
		t.Errorf("set-property's drop-in: %q %v", data, err)
	}
	if err := m.Start(ctx, "lim1"); err != nil {
		t.Fatal(err)
	}
	p, err := m.sup.conn.GetServicePropertyContext(ctx, UnitName("lim1"), "ControlGroup")
	if err != nil {
		t.Fatal(err)
	}
	group := p.Value.Value().(string)
	hs, err := cgroup.Mounted()
	if err != nil {
		t.Fatal(err)
	}
	wantGroupFile(t, hs, group, "memory", "memory.limit_in_bytes", "memory.max", "67108864")
	wantGroupFile(t, hs, group, "pids", "pids.max", "pids.max", "30")
	s, err := m.Stats(ctx, "lim1")
	if err != nil || s.Tasks == 0 || s.Tasks > 30 || s.MemoryCurrent == 0 || s.CPUUsageUsec == 0 {
		t.Errorf("stats of the running container: %+v %v", s, err)
	}
	if err := m.Stop(ctx, "lim1"); err != nil {
		t.Fatal(err)
	}
	if s, err := m.Stats(ctx, "lim1"); err != nil || s != (Stats{}) {
		t.Errorf("stats of the stopped container: %+v %v", s, err)
	}
	if err := m.Destroy(ctx, "lim1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dropIn); !os.IsNotExist(err) {
		t.Errorf("the drop-in outlived its container: %v", err)
	}
}

// wantGroupFile checks the kernel's file of a controller for the group: v1File in
// the controller's v1 hierarchy, else v2File in cgroup2.
func wantGroupFile(t *testing.T, hs cgroup.Hierarchies, group, controller, v1File, v2File, want string) {
	t.Helper()
	h, ok := hs.V1(controller)
	if !ok {
		h, _ = hs.Unified()
		v1File = v2File
	}
	dir, _ := h.Dir(group)
	if data, _ := os.ReadFile(filepath.Join(dir, v1File)); strings.TrimSpace(string(data)) != want {
		t.Errorf("%s of %s: %q, want %s", v1File, dir, data, want)
	}
}
