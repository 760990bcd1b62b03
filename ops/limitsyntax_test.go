package ops

import (
	"errors"
	"testing"
)

// unset is a unit without limits, as systemd reports one (TasksMax aside).
var unset = Limits{MemoryMax: NoLimit, CPUQuota: NoLimit, CPUPeriod: NoLimit, TasksMax: NoLimit, CPUWeight: NoLimit, IOWeight: NoLimit}

func TestLimitText(t *testing.T) {
	want := map[string]string{"memory.max": "max", "cpu.max": "max 100000", "pids.max": "max", "cpu.weight": "100", "io.weight": "100"}
	for k, w := range want {
		if got := unset.Text(k); got != w {
			t.Errorf("unset %s: %q, want %q", k, got, w)
		}
	}
}

func TestLimitWrites(t *testing.T) {
	for _, c := range []struct{ key, text, reads string }{
		{"memory.max", "64M", "67108864"},
		{"memory.max", "64m\n", "67108864"},
		{"memory.max", "1G", "1073741824"},
		{"memory.max", "12345", "12345"},
		{"memory.max", "max", "max"},
		{"pids.max", "20", "20"},
		{"pids.max", "max", "max"},
		{"cpu.max", "50000 100000", "50000 100000"},
		{"cpu.max", "50000", "50000 100000"},
		{"cpu.max", "200000 100000", "200000 100000"}, // two CPUs
		{"cpu.max", "1001 3333", "1000 3333"},         // whole percents, as systemd keeps them
		{"cpu.max", "33333 100000", "33000 100000"},
		{"cpu.max", "max 250000", "max 250000"},
		{"cpu.max", "max", "max 100000"},
		{"cpu.weight", "1", "1"},
		{"cpu.weight", "10000", "10000"},
		{"io.weight", "default 300", "300"},
		{"io.weight", "300", "300"},
	} {
		l, err := unset.With(map[string]string{c.key: c.text})
		if err != nil {
			t.Errorf("%s %q: %v", c.key, c.text, err)
			continue
		}
		if got := l.Text(c.key); got != c.reads {
			t.Errorf("%s %q reads %q, want %q", c.key, c.text, got, c.reads)
		}
	}
}

func TestCPUMaxKeepsPeriod(t *testing.T) {
	l, err := unset.With(map[string]string{"cpu.max": "max 200000"})
	if err != nil {
		t.Fatal(err)
	}
	if l, err = l.With(map[string]string{"cpu.max": "50000"}); err != nil || l.Text("cpu.max") != "50000 200000" {
		t.Errorf("quota alone after a period: %q %v", l.Text("cpu.max"), err)
	}
	if l.CPUQuota != 250000 {
		t.Errorf("quota per second: %d, want 250000", l.CPUQuota)
	}
}

func TestLimitBadValues(t *testing.T) {
	for _, c := range []struct{ key, text string }{
		{"memory.max", ""}, {"memory.max", "0"}, {"memory.max", "64Q"}, {"memory.max", "-1"},
		{"memory.max", "16777216T"}, {"memory.max", "max max"}, {"memory.max", "1.5G"},
		{"pids.max", "0"}, {"pids.max", "many"},
		{"cpu.max", ""}, {"cpu.max", "1 2 3"}, {"cpu.max", "50000 999"}, {"cpu.max", "50000 1000001"},
		{"cpu.max", "500 100000"}, {"cpu.max", "fast"}, {"cpu.max", "max x"},
		{"cpu.weight", "0"}, {"cpu.weight", "10001"}, {"io.weight", "default"},
		{"swap.max", "1G"},
	} {
		l, err := unset.With(map[string]string{c.key: c.text})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s %q: %v, want ErrInvalid", c.key, c.text, err)
		}
		if l != unset {
			t.Errorf("%s %q changed the limits: %+v", c.key, c.text, l)
		}
	}
	// One bad value among good ones: none is written.
	l, err := unset.With(map[string]string{"memory.max": "64M", "pids.max": "zero"})
	if !errors.Is(err, ErrInvalid) || l != unset {
		t.Errorf("a bad value among good ones: %+v %v", l, err)
	}
}
