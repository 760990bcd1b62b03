package testhost

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// run.sh retries a boot that does not come up and gives up after the third: each
// failure is named, with the nspawn log of that boot, the script exits 1 without
// running its command, and every host it booted is gone with all it made (process,
// cgroups, nspawn's directory, the files in $TMPDIR). A boot timeout of 0 seconds
// fails every boot at once, so the three take seconds, not 3x90. It boots real
// hosts, so it runs outside the test host, as root, where systemd-nspawn is.
func TestRunShGivesUpAfterThreeFailedBoots(t *testing.T) {
	if os.Getenv("NIXCFS_TESTHOST") == "1" {
		t.Skip("boots test hosts of its own: runs outside the test host (make unit-test)")
	}
	if os.Geteuid() != 0 {
		t.Skip("boots test hosts: needs root")
	}
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		t.Skip("boots test hosts: needs systemd-nspawn (apt-get install systemd-container)")
	}
	tmp := t.TempDir()
	cmd := exec.Command("./run.sh", "true")
	cmd.Env = append(os.Environ(), "TESTHOST_BOOT_TIMEOUT=0", "TMPDIR="+tmp)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Should it hang: TERM, which run.sh traps to power its host off (KILL would
	// leave the host running).
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Signal(syscall.SIGTERM) })
	err := cmd.Wait()
	timer.Stop()
	t.Logf("run.sh exited after %v: %v\nstdout:\n%s", time.Since(start).Round(time.Millisecond), err, stdout.String())
	pid := cmd.Process.Pid
	machinePrefix := fmt.Sprintf("nixcfs-test-%d-", pid)

	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("run.sh with boots that cannot succeed: %v; want exit status 1", err)
	}
	text := stderr.String()
	for attempt := 1; attempt <= 3; attempt++ {
		machine := fmt.Sprintf("%s%d", machinePrefix, attempt)
		failed := fmt.Sprintf("testhost: boot %d of 3 failed: ", attempt)
		header := "testhost: systemd-nspawn log of " + machine + ":\n  | Spawning container " + machine + " on /."
		i, j := strings.Index(text, failed), strings.Index(text, header)
		if i < 0 || j < i {
			t.Errorf("stderr lacks %q followed by the nspawn log of %s (%q)", failed, machine, header)
		}
	}
	if strings.Contains(text, "boot 4 of") || strings.Contains(text, "testhost: booted") {
		t.Errorf("run.sh tried a fourth boot, or claims a boot succeeded")
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", text)
	}

	// Nothing left behind.
	if left, err := os.ReadDir(tmp); err != nil || len(left) > 0 {
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Errorf("run.sh left in $TMPDIR: %v %v", names, err)
	}
	if procs := processesNaming(machinePrefix); len(procs) > 0 {
		t.Errorf("processes of run.sh's hosts still run: %s", strings.Join(procs, "; "))
	}
	for _, dir := range cgroupDirsNamed(t, machinePrefix) {
		t.Errorf("cgroup left behind: %s", dir)
	}
	if left, _ := filepath.Glob("/run/systemd/nspawn/propagate/" + machinePrefix + "*"); len(left) > 0 {
		t.Errorf("nspawn's directories left behind: %v", left)
	}
}

// processesNaming returns "PID: cmdline" of every process whose command line or
// cgroup names prefix.
func processesNaming(prefix string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cgroup, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if bytes.Contains(cmdline, []byte(prefix)) || bytes.Contains(cgroup, []byte("/"+prefix)) {
			found = append(found, e.Name()+": "+string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return found
}

// cgroupDirsNamed returns every cgroup directory, in any hierarchy, whose name
// starts with prefix.
func cgroupDirsNamed(t *testing.T, prefix string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir("/sys/fs/cgroup", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil // a cgroup removed while walking
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), prefix) {
			found = append(found, path)
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
