package fs

import (
	"context"
	"strings"
	"testing"

	"nixcfs/ops"
)

// The contract's part on limits and stats (see contract_test.go).

func contractLimits(t *testing.T, ctx context.Context, b contractBackend) {
	l, err := b.Limits(ctx, "ct1")
	must(t, "limits", err)
	if l.Text("memory.max") != "max" || l.Text("cpu.max") != "max 100000" {
		t.Errorf("limits of a new container: %s", l.Text("memory.max")+", "+l.Text("cpu.max"))
	}
	set := map[string]string{"memory.max": "64M", "cpu.max": "50000 100000", "pids.max": "50", "cpu.weight": "200", "io.weight": "300"}
	must(t, "set limits", b.SetLimits(ctx, "ct1", set))
	want := map[string]string{"memory.max": "67108864", "cpu.max": "50000 100000", "pids.max": "50", "cpu.weight": "200", "io.weight": "300"}
	l, err = b.Limits(ctx, "ct1")
	must(t, "limits after a change", err)
	for k, w := range want {
		if got := l.Text(k); got != w {
			t.Errorf("%s after writing %q: %q, want %q", k, set[k], got, w)
		}
	}
	// One bad value among good ones: none is written, and status says why.
	wantErr(t, "a bad value", b.SetLimits(ctx, "ct1", map[string]string{"memory.max": "1G", "pids.max": "none"}), ops.ErrInvalid)
	wantErr(t, "an unknown limit", b.SetLimits(ctx, "ct1", map[string]string{"swap.max": "1G"}), ops.ErrInvalid)
	if after, _ := b.Limits(ctx, "ct1"); after != l {
		t.Errorf("limits changed by bad values: %+v, were %+v", after, l)
	}
	if st, _ := b.Status("ct1"); !strings.Contains(st.Error, "pids.max") && !strings.Contains(st.Error, "swap.max") {
		t.Errorf("status error after a bad limit: %q", st.Error)
	}
	wantErr(t, "limits of an unknown container", b.SetLimits(ctx, "nope", map[string]string{"memory.max": "1G"}), ops.ErrNotFound)
	// ct1 keeps these limits for its start (contractUnits).

	s, err := b.Stats(ctx, "ct1")
	must(t, "stats", err)
	if s != (ops.Stats{}) {
		t.Errorf("stats of a stopped container: %+v", s)
	}
	_, err = b.Stats(ctx, "nope")
	wantErr(t, "stats of an unknown container", err, ops.ErrNotFound)
}

// contractRunningStats: a running container uses memory and CPU and has tasks, within
// the limits contractLimits set.
func contractRunningStats(t *testing.T, ctx context.Context, b contractBackend) {
	s, err := b.Stats(ctx, "ct1")
	must(t, "stats of a running container", err)
	if s.Tasks == 0 || s.MemoryCurrent == 0 || s.CPUUsageUsec == 0 || s.Tasks > 50 || s.MemoryCurrent > 64<<20 {
		t.Errorf("stats of a running container: %+v", s)
	}
}
