package testhost

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test host's systemd applies resource limits to its units (run.sh makes the
// cgroup v1 controllers writable for it): each limit is shown to bite, next to the
// same payload without it, which runs through.

// cgroupFiles is shell that sets $mem, $pids and $cpu to the directories of the
// unit's own cgroup in the memory, pids and cpu controllers, on cgroup v1 or v2.
const cgroupFiles = `
v1() { sed -n "s/^[0-9]*:\([^:]*,\)\{0,1\}$1\(,[^:]*\)\{0,1\}://p" /proc/self/cgroup; }
if [ -d /sys/fs/cgroup/memory ]; then
	mem=/sys/fs/cgroup/memory$(v1 memory) pids=/sys/fs/cgroup/pids$(v1 pids) cpu=/sys/fs/cgroup/cpu$(v1 cpu)
else
	mem=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup) pids=$mem cpu=$mem
fi
`

// runUnit runs script with sh as a transient service with properties, waits until the
// unit is gone, and returns what the script wrote on stdout.
func runUnit(t *testing.T, name string, properties []string, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"--wait", "--pipe", "--quiet", "--collect",
		fmt.Sprintf("--unit=nixcfs-limits-%s-%d", name, os.Getpid())}
	for _, p := range properties {
		args = append(args, "--property="+p)
	}
	args = append(args, "--", "sh", "-c", cgroupFiles+script)
	cmd := exec.CommandContext(ctx, "systemd-run", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("systemd-run %s: %v\nstdout:\n%sstderr:\n%s", strings.Join(properties, " "), err, stdout.String(), stderr.String())
	if ctx.Err() != nil {
		t.Fatalf("the unit did not end within 2 minutes")
	}
	return stdout.String()
}

// field returns the integer after "key " on a line of out, or -1.
func field(out, key string) int64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + ` (-?\d+)$`).FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// The exit status of `dd` is 137 (SIGKILL) once the kernel's OOM killer ends it.
const ddExitKilled = 128 + 9

func TestMemoryMaxKillsAnAllocationAboveIt(t *testing.T) {
	Require(t)
	// dd holds one 128 MiB buffer, filled from /dev/zero; the shell, small, survives
	// to report and reads its cgroup's limit and OOM-kill count while it still exists.
	const script = `
dd if=/dev/zero of=/dev/null bs=128M count=1 2>/dev/null
echo "dd $?"
if [ -f "$mem/memory.limit_in_bytes" ]; then
	echo "limit $(cat "$mem/memory.limit_in_bytes")"
	sed -n 's/^oom_kill /oom_kill /p' "$mem/memory.oom_control"
else
	echo "limit $(sed 's/^max$/-1/' "$mem/memory.max")"
	sed -n 's/^oom_kill /oom_kill /p' "$mem/memory.events"
fi
`
	out := runUnit(t, "mem", []string{"MemoryMax=64M", "MemorySwapMax=0"}, script)
	if got := field(out, "limit"); got != 64<<20 {
		t.Errorf("the unit's memory limit is %d; want %d (MemoryMax=64M)", got, 64<<20)
	}
	if got := field(out, "dd"); got != ddExitKilled {
		t.Errorf("dd of 128 MiB under MemoryMax=64M exited %d; want %d (SIGKILL)", got, ddExitKilled)
	}
	if got := field(out, "oom_kill"); got < 1 {
		t.Errorf("the unit's cgroup counts %d OOM kills; want at least 1", got)
	}

	out = runUnit(t, "nomem", nil, script)
	if got := field(out, "dd"); got != 0 {
		t.Errorf("dd of 128 MiB without MemoryMax exited %d; want 0", got)
	}
}

func TestTasksMaxStopsABurst(t *testing.T) {
	Require(t)
	// The shell is one task; each sleep is another. When a fork fails the shell
	// ends ("Cannot fork"). The sleeps are the load, not a wait: they hold their
	// tasks until the shell ends and the unit's stop kills them.
	const script = `
echo "pids.max $(sed 's/^max$/-1/' "$pids/pids.max")"
i=0
while [ $i -lt 50 ]; do
	sleep infinity &
	i=$((i + 1))
	echo "started $i"
done
echo "started all 50"
`
	out := runUnit(t, "tasks", []string{"TasksMax=20"}, script)
	if got := field(out, "pids.max"); got != 20 {
		t.Errorf("the unit's pids.max is %d; want 20 (TasksMax=20)", got)
	}
	started := int64(0)
	for _, m := range regexp.MustCompile(`(?m)^started (\d+)$`).FindAllStringSubmatch(out, -1) {
		started, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if strings.Contains(out, "started all 50") || started == 0 || started >= 20 {
		t.Errorf("under TasksMax=20 the shell started %d of 50 sleeps; want fewer than 20 (itself is a task)", started)
	}

	out = runUnit(t, "notasks", []string{"TasksMax=infinity"}, script)
	if !strings.Contains(out, "started all 50") {
		t.Errorf("without TasksMax the shell did not start 50 sleeps")
	}
}

func TestCPUQuotaReachesTheController(t *testing.T) {
	Require(t)
	const script = `
if [ -f "$cpu/cpu.cfs_quota_us" ]; then
	echo "quota $(cat "$cpu/cpu.cfs_quota_us") $(cat "$cpu/cpu.cfs_period_us")"
else
	echo "quota $(cat "$cpu/cpu.max")"
fi
`
	out := runUnit(t, "cpu", []string{"CPUQuota=50%"}, script)
	m := regexp.MustCompile(`(?m)^quota (\d+) (\d+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no quota in the unit's cpu controller")
	}
	quota, _ := strconv.Atoi(m[1])
	period, _ := strconv.Atoi(m[2])
	if period == 0 || quota*2 != period {
		t.Errorf("the unit's CPU quota is %d per %d µs; want half (CPUQuota=50%%)", quota, period)
	}
}
