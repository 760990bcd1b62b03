package ops

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// A container's resource limits in cgroup v2's words and syntax: what its limit files
// hold and what `nixcfs limits` takes, converted to and from the properties systemd
// keeps for its unit.

// NoLimit is systemd's "infinity": cgroup's "max", or a weight left unset.
const NoLimit = math.MaxUint64

// LimitKeys are the limits, by the name of their cgroup v2 file, in a stable order.
var LimitKeys = []string{"memory.max", "cpu.max", "pids.max", "cpu.weight", "io.weight"}

// Limits are the resource limits systemd holds for a container's unit.
type Limits struct {
	MemoryMax uint64 // MemoryMax: bytes, or NoLimit
	CPUQuota  uint64 // CPUQuotaPerSecUSec: µs of CPU time per second, or NoLimit
	CPUPeriod uint64 // CPUQuotaPeriodUSec: µs; NoLimit (or 0) for the default, 100 ms
	TasksMax  uint64 // TasksMax, or NoLimit
	CPUWeight uint64 // CPUWeight 1..10000, NoLimit when unset (the kernel's 100)
	IOWeight  uint64 // IOWeight likewise
}

const usecPerSec = 1_000_000

const (
	defaultCPUPeriod = 100_000 // µs, the kernel's and systemd's
	defaultWeight    = 100
	minCPUPeriod     = 1_000 // µs, cgroup v2's bounds for cpu.max
	maxCPUPeriod     = 1_000_000
	quotaStep        = usecPerSec / 100 // 1% of a CPU, in µs per second
	maxWeight        = 10_000
)

// Text is the limit's value in cgroup v2's syntax, as its file reads: bytes or "max";
// "QUOTA PERIOD" or "max PERIOD" for cpu.max; a weight's default when it is unset.
func (l Limits) Text(key string) string {
	switch key {
	case "memory.max":
		return maxOr(l.MemoryMax)
	case "cpu.max":
		period := l.period()
		if l.CPUQuota == NoLimit {
			return fmt.Sprintf("max %d", period)
		}
		// The quota per period, rounded up: what was written comes back.
		hi, lo := bits.Mul64(l.CPUQuota, period)
		if hi >= usecPerSec {
			return fmt.Sprintf("max %d", period)
		}
		q, rem := bits.Div64(hi, lo, usecPerSec)
		if rem > 0 {
			q++
		}
		return fmt.Sprintf("%d %d", q, period)
	case "pids.max":
		return maxOr(l.TasksMax)
	case "cpu.weight":
		return weightText(l.CPUWeight)
	case "io.weight":
		return weightText(l.IOWeight)
	}
	return ""
}

// MarshalJSON gives the limits as their files read, by key.
func (l Limits) MarshalJSON() ([]byte, error) {
	out := map[string]string{}
	for _, k := range LimitKeys {
		out[k] = l.Text(k)
	}
	return json.Marshal(out)
}

func (l Limits) period() uint64 {
	if l.CPUPeriod == NoLimit || l.CPUPeriod == 0 {
		return defaultCPUPeriod
	}
	return l.CPUPeriod
}

func maxOr(v uint64) string {
	if v == NoLimit {
		return "max"
	}
	return strconv.FormatUint(v, 10)
}

func weightText(v uint64) string {
	if v == NoLimit || v == 0 {
		return strconv.Itoa(defaultWeight)
	}
	return strconv.FormatUint(v, 10)
}

// With is l with the values (by key, in cgroup v2's syntax) written; ErrInvalid for an
// unknown key or a bad value, and then none is.
func (l Limits) With(values map[string]string) (Limits, error) {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first bad one, the same each time
	next := l
	for _, k := range keys {
		var err error
		text := strings.TrimSpace(values[k])
		switch k {
		case "memory.max":
			next.MemoryMax, err = parseMax(text, parseSize)
		case "cpu.max":
			next.CPUQuota, next.CPUPeriod, err = parseCPUMax(text, l.CPUPeriod)
		case "pids.max":
			next.TasksMax, err = parseMax(text, parseCount)
		case "cpu.weight":
			next.CPUWeight, err = parseWeight(text)
		case "io.weight":
			next.IOWeight, err = parseWeight(strings.TrimPrefix(text, "default "))
		default:
			return l, fmt.Errorf("%w: no limit %q (the limits: %s)", ErrInvalid, k, strings.Join(LimitKeys, ", "))
		}
		if err != nil {
			return l, fmt.Errorf("%w: %s %q: %v", ErrInvalid, k, values[k], err)
		}
	}
	return next, nil
}

func parseMax(text string, parse func(string) (uint64, error)) (uint64, error) {
	if text == "max" {
		return NoLimit, nil
	}
	return parse(text)
}

// parseSize reads bytes, with an optional K, M, G or T suffix (powers of 1024).
func parseSize(text string) (uint64, error) {
	shift := 0
	if n := len(text); n > 0 {
		if i := strings.IndexByte("KMGT", text[n-1]&^0x20); i >= 0 {
			shift, text = 10*(i+1), text[:n-1]
		}
	}
	v, err := parseCount(text)
	if err != nil || v > NoLimit>>shift {
		return 0, fmt.Errorf("not max or a size (bytes, or a number with K, M, G or T)")
	}
	return v << shift, nil
}

// parseCount reads a positive decimal number.
func parseCount(text string) (uint64, error) {
	v, err := strconv.ParseUint(text, 10, 64)
	if err != nil || v == 0 || v == NoLimit {
		return 0, fmt.Errorf("not max or a positive number")
	}
	return v, nil
}

// parseCPUMax reads "QUOTA [PERIOD]" (µs; QUOTA may be "max"): the quota per second
// systemd keeps, and the period. Without a period the current one stays, as in cgroup.
func parseCPUMax(text string, period uint64) (quota, newPeriod uint64, err error) {
	f := strings.Fields(text)
	if len(f) == 0 || len(f) > 2 {
		return 0, 0, fmt.Errorf("not QUOTA PERIOD, QUOTA or max")
	}
	effective := Limits{CPUPeriod: period}.period() // the one the quota is a share of
	if len(f) == 2 {
		period, err = strconv.ParseUint(f[1], 10, 64)
		if err != nil || period < minCPUPeriod || period > maxCPUPeriod {
			return 0, 0, fmt.Errorf("period not between %d and %d µs", minCPUPeriod, maxCPUPeriod)
		}
		effective = period
	}
	if f[0] == "max" {
		return NoLimit, period, nil
	}
	q, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil || q > NoLimit/usecPerSec {
		return 0, 0, fmt.Errorf("quota not max or a number of µs")
	}
	// systemd keeps a quota in its drop-in as whole percents of a CPU, so that is what
	// survives a reload: the rest is dropped now, not at the next boot.
	perSec := q * usecPerSec / effective / quotaStep * quotaStep
	if perSec == 0 {
		return 0, 0, fmt.Errorf("quota less than 1%% of the period, the least systemd keeps")
	}
	return perSec, period, nil
}

func parseWeight(text string) (uint64, error) {
	v, err := strconv.ParseUint(text, 10, 64)
	if err != nil || v < 1 || v > maxWeight {
		return 0, fmt.Errorf("not a weight between 1 and %d", maxWeight)
	}
	return v, nil
}
