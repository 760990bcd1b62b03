package fs

import (
	"context"

	"nixcfs/ops"
)

// The fake's limits and stats, held to the real ones by the contract: limits are kept
// in memory and checked by ops's own syntax; the stats of a running container are
// small constants.

// unsetLimits are a unit's limits before any is set.
var unsetLimits = ops.Limits{MemoryMax: ops.NoLimit, CPUQuota: ops.NoLimit, CPUPeriod: ops.NoLimit,
	TasksMax: ops.NoLimit, CPUWeight: ops.NoLimit, IOWeight: ops.NoLimit}

func fakeLimitsOf(c *fakeContainer) ops.Limits {
	if c.limits == (ops.Limits{}) {
		return unsetLimits
	}
	return c.limits
}

func (f *fakeBackend) Limits(ctx context.Context, name string) (ops.Limits, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return ops.Limits{}, err
	}
	return fakeLimitsOf(c), nil
}

func (f *fakeBackend) SetLimits(ctx context.Context, name string, values map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.getForChange(name)
	if err != nil {
		return err
	}
	next, err := fakeLimitsOf(c).With(values)
	if err != nil {
		c.lastErr = err.Error()
		return err
	}
	c.limits = next
	return nil
}

func (f *fakeBackend) Stats(ctx context.Context, name string) (ops.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil || !c.state.Busy() {
		return ops.Stats{}, err
	}
	return ops.Stats{MemoryCurrent: 4 << 20, MemoryPeak: 5 << 20, CPUUsageUsec: 1000, Tasks: 2}, nil
}
