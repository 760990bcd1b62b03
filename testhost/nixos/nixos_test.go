package nixos

// Inside the test host (NIXCFS_TESTHOST=1): NixOS's container@.service installed in
// /etc/systemd/system, nixcfs ($NIXCFS_BIN) using it instead of its own template, and
// the bundled guest ($NIXCFS_GUEST) created, started, updated live, stopped and
// destroyed through it, with the command line and with the mount. Elsewhere they skip.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"nixcfs/internal/guestroot"
	"nixcfs/testhost"
)

const unitPath = "/etc/systemd/system/container@.service"

// install puts the template in place for the test and takes it away after it (other
// tests in the same host expect nixcfs's own). It returns the store path of its scripts.
func install(t *testing.T, nixcfsBin string) string {
	t.Helper()
	if _, err := os.Stat(unitPath); err == nil {
		t.Fatalf("%s exists already: this test host is not fresh", unitPath)
	}
	out, err := exec.Command("./install.sh", "install", nixcfsBin).Output()
	t.Cleanup(func() {
		if out, err := exec.Command("./install.sh", "uninstall").CombinedOutput(); err != nil {
			t.Errorf("install.sh uninstall: %v\n%s", err, out)
		}
	})
	if err != nil {
		t.Fatalf("install.sh install: %v\n%s", err, stderrOf(err))
	}
	scripts := strings.TrimSpace(string(out))
	if !regexp.MustCompile(`^/nix/store/[0-9a-z]{32}-container-unit-scripts$`).MatchString(scripts) {
		t.Fatalf("install.sh printed %q, want the scripts' store path", out)
	}
	return scripts
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}

type result struct {
	stdout, stderr string
	code           int
}

// nixcfs runs the nixcfs command line, as a person on the host would.
func nixcfs(t *testing.T, args ...string) result {
	t.Helper()
	paths := testhost.Require(t)
	cmd := exec.Command(paths.Bin, args...)
	cmd.Env = append(os.Environ(), "NIXCFS_NIXOS_PATH="+paths.Guest)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{out.String(), errb.String(), 0}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("nixcfs %v: %v", args, err)
	}
	return r
}

func mustNixcfs(t *testing.T, args ...string) result {
	t.Helper()
	r := nixcfs(t, args...)
	if r.code != 0 {
		t.Fatalf("nixcfs %v: exit %d\n%s%s\n%s", args, r.code, r.stdout, r.stderr, journal(args[len(args)-1]))
	}
	return r
}

// journal is the unit's log, for failure messages.
func journal(name string) string {
	out, _ := exec.Command("journalctl", "-u", "container@"+name+".service", "--no-pager", "-n", "60").CombinedOutput()
	return string(out)
}

// systemctlStatus is `systemctl status container@NAME`, whatever its exit code.
func systemctlStatus(name string) string {
	out, _ := exec.Command("systemctl", "status", "--no-pager", "-n", "0", "container@"+name+".service").Output()
	return string(out)
}

// unitProperty is one property of the unit, from systemd.
func unitProperty(t *testing.T, name, property string) string {
	t.Helper()
	out, err := exec.Command("systemctl", "show", "-P", property, "container@"+name+".service").Output()
	if err != nil {
		t.Fatalf("systemctl show -P %s container@%s: %v", property, name, err)
	}
	return strings.TrimSpace(string(out))
}

// checkStatus checks that `systemctl status` shows the unit loaded from NixOS's
// template, in the given state.
func checkStatus(t *testing.T, name, active string) string {
	t.Helper()
	status := systemctlStatus(name)
	if !strings.Contains(status, "Loaded: loaded ("+unitPath+";") || !strings.Contains(status, "Active: "+active) {
		t.Errorf("systemctl status container@%s, want loaded from %s and %q:\n%s", name, unitPath, active, status)
	}
	return status
}

// leaderOf is the container's init, from nixcfs.
func leaderOf(t *testing.T, name string) int {
	t.Helper()
	var st struct {
		Leader int    `json:"leader"`
		State  string `json:"state"`
	}
	if err := json.Unmarshal([]byte(mustNixcfs(t, "status", name, "--json").stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.State != "running" || st.Leader == 0 {
		t.Fatalf("%s is %s with leader %d", name, st.State, st.Leader)
	}
	return st.Leader
}

// mainCmdline is the command line of the container's unit's main process, as the
// kernel keeps it (each argument ends in a NUL).
func mainCmdline(t *testing.T, name string) string {
	t.Helper()
	cmdline, err := os.ReadFile("/proc/" + unitProperty(t, name, "MainPID") + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	return string(cmdline)
}

// checkStartedThroughTemplate checks that the running container came up the way NixOS's
// template starts it: nspawn's command is container-init on the system's init, which
// became the guest's PID 1 and put eth0 up with the container's address.
func checkStartedThroughTemplate(t *testing.T, name, scripts, addr string) {
	t.Helper()
	args := strings.Split(strings.TrimSuffix(mainCmdline(t, name), "\x00"), "\x00")
	if len(args) < 3 || filepath.Base(args[0]) != "systemd-nspawn" ||
		args[len(args)-2] != scripts+"/container-init" || args[len(args)-1] != "/nix/var/nix/profiles/system/init" {
		t.Errorf("the unit's main process is %q, want systemd-nspawn ... %s/container-init /nix/var/nix/profiles/system/init", args, scripts)
	}
	system := strings.TrimSpace(mustNixcfs(t, "run", name, "--", "readlink", "-f", "/nix/var/nix/profiles/system").stdout)
	pid1 := mustNixcfs(t, "run", name, "--", "cat", "/proc/1/cmdline").stdout
	if pid1 != system+"/nixcfs-init\x00" {
		t.Errorf("PID 1 in the container is %q, want %s/nixcfs-init", pid1, system)
	}
	if eth0 := mustNixcfs(t, "run", name, "--", "ip", "-4", "addr", "show", "dev", "eth0").stdout; !strings.Contains(eth0, "inet "+addr+"/32 ") {
		t.Errorf("eth0 in the container, want %s on it:\n%s", addr, eth0)
	}
}

// The command line, as on a NixOS host: create, start, update live (the template's
// reload), stop, destroy, with systemd agreeing at each step.
func TestNixOSTemplateCommandLine(t *testing.T) {
	paths := testhost.Require(t)
	const name = "nxcli"
	scripts := install(t, paths.Bin)
	t.Cleanup(func() {
		nixcfs(t, "terminate", name)
		nixcfs(t, "destroy", name)
	})

	// nixcfs uses the host's template and installs none of its own.
	r := mustNixcfs(t, "list", "--log-level=debug")
	if !strings.Contains(r.stderr, `"template":"`+unitPath+`"`) {
		t.Errorf("nixcfs did not pick %s:\n%s", unitPath, r.stderr)
	}

	r = mustNixcfs(t, "create", name, "--config", `services.hello = { enable = true; message = "hello through NixOS's template"; };`)
	// The addresses first; nix's lines follow (no terminal).
	m := regexp.MustCompile(`^host IP is .*, container IP is (10\.233\.\d+\.2)\n`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("create's stderr: %q", r.stderr)
	}
	addr := m[1]
	if got := unitProperty(t, name, "FragmentPath"); got != unitPath {
		t.Errorf("container@%s is loaded from %s, want %s", name, got, unitPath)
	}

	mustNixcfs(t, "start", name)
	checkStatus(t, name, "active (running)")
	if r := mustNixcfs(t, "status", name); r.stdout != "up\n" {
		t.Errorf("status after start: %q", r.stdout)
	}
	// start returns once the guest is ready and the host's end of the veth is set up.
	if got := testhost.Hello(t, addr); got != "hello through NixOS's template" {
		t.Errorf("hello: %q", got)
	}
	checkStartedThroughTemplate(t, name, scripts, addr)

	// update builds the new system and reloads the unit: the template's ExecReload runs
	// switch-to-configuration test inside, in the same container.
	leader := leaderOf(t, name)
	r = mustNixcfs(t, "update", name, "--config", `services.hello = { enable = true; message = "changed live"; };`)
	if !strings.Contains(r.stderr, "reloading container...") {
		t.Errorf("update's stderr: %q", r.stderr)
	}
	if got := testhost.Hello(t, addr); got != "changed live" {
		t.Errorf("hello after update: %q", got)
	}
	if after := leaderOf(t, name); after != leader {
		t.Errorf("update restarted the container: leader %d, then %d", leader, after)
	}
	status := checkStatus(t, name, "active (running)")
	if !strings.Contains(status, "ExecReload="+scripts+"/reload (code=exited, status=0/SUCCESS)") {
		t.Errorf("systemctl status shows no successful reload by the template's script:\n%s", status)
	}

	mustNixcfs(t, "stop", name)
	checkStatus(t, name, "inactive (dead)")
	if r := mustNixcfs(t, "status", name); r.stdout != "down\n" {
		t.Errorf("status after stop: %q", r.stdout)
	}
	if err := exec.Command("ip", "link", "show", "dev", "ve-"+name).Run(); err == nil {
		t.Errorf("ve-%s is still there after stop", name)
	}

	mustNixcfs(t, "destroy", name)
	checkStatus(t, name, "inactive (dead)")
	if r := nixcfs(t, "status", name); r.stdout != "gone\n" || r.code == 0 {
		t.Errorf("status after destroy: %q, exit %d", r.stdout, r.code)
	}
	for _, p := range []string{"/etc/nixos-containers/" + name + ".conf", "/var/lib/nixos-containers/" + name} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there after destroy", p)
		}
	}
}

// mountDaemon runs `nixcfs mount` on a fresh directory until the test ends.
func mountDaemon(t *testing.T, paths testhost.Paths) string {
	t.Helper()
	mnt := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "nixcfs.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(paths.Bin, "mount", "--nixos-path="+paths.Guest, "--log-level=debug", mnt)
	cmd.Stdout, cmd.Stderr, cmd.Dir = logFile, logFile, "/"
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			t.Errorf("nixcfs mount ignored SIGTERM for 20s; killing it")
			cmd.Process.Kill()
			<-exited
		}
		if fstype, _ := guestroot.MountedAt(mnt); fstype != "" {
			t.Errorf("%s is still mounted after the daemon ended", mnt)
			exec.Command("umount", "-l", mnt).Run()
		}
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("nixcfs mount's log:\n%s", out)
		}
	})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(mnt, "events")); err == nil {
			break
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			t.Fatalf("nixcfs mount exited: %s\n%s", cmd.ProcessState, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("nixcfs mount did not mount within 60s")
		}
	}
	log, _ := os.ReadFile(logPath)
	if !strings.Contains(string(log), `"template":"`+unitPath+`"`) {
		t.Errorf("nixcfs mount did not pick %s:\n%s", unitPath, log)
	}
	return mnt
}

// sh runs a shell command line against the mount, as a person would.
func sh(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("bash", "-c", script).Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderrOf(err))
	}
	return string(out)
}

// statusField is one "key value" line of NAME/status.
func statusField(t *testing.T, dir, key string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			return v
		}
	}
	t.Fatalf("no %s in status:\n%s", key, data)
	return ""
}

// The mount, as on a NixOS host: mkdir, config.nix, start, a live edit of config.nix,
// stop, rmdir, through NixOS's template.
func TestNixOSTemplateMount(t *testing.T) {
	paths := testhost.Require(t)
	const name = "nxmnt"
	scripts := install(t, paths.Bin)
	mnt := mountDaemon(t, paths)
	dir := filepath.Join(mnt, name)
	t.Cleanup(func() {
		os.WriteFile(filepath.Join(dir, "state"), []byte("terminate\n"), 0)
		os.Remove(dir)
	})

	sh(t, "mkdir "+dir)
	config := func(message string) string {
		return fmt.Sprintf(`{ lib, ... }: { boot.isContainer = true; networking.hostName = lib.mkDefault %q; `+
			`networking.useDHCP = false; services.hello = { enable = true; message = %q; }; }`+"\n", name, message)
	}
	sh(t, fmt.Sprintf("printf '%%s' %s > %s/config.nix", shellQuote(config("first")), dir))
	if got := statusField(t, dir, "config"); got != "built" {
		t.Fatalf("config %s after writing config.nix; build.log:\n%s", got, sh(t, "cat "+dir+"/build.log"))
	}

	sh(t, "echo start > "+dir+"/state")
	if got := sh(t, "cat "+dir+"/state"); got != "running\n" {
		t.Errorf("state after start: %q", got)
	}
	checkStatus(t, name, "active (running)")
	addr := strings.TrimSpace(sh(t, "cat "+dir+"/address"))
	if got := testhost.Hello(t, addr); got != "first" {
		t.Errorf("hello: %q", got)
	}
	checkStartedThroughTemplate(t, name, scripts, addr)
	if got := statusField(t, dir, "unit"); got != "container@"+name+".service" {
		t.Errorf("status unit %s", got)
	}

	// sed -i returns once the text is written and its build queued (a rename holds the
	// directory's lock); the build then switches the running container through the
	// template's reload, without a restart.
	leader := statusField(t, dir, "leader")
	sh(t, "sed -i 's/\"first\"/\"second\"/' "+dir+"/config.nix")
	for end := time.Now().Add(time.Minute); testhost.Hello(t, addr) != "second"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("hello after the edit: %q, not switched within a minute; build.log:\n%s", testhost.Hello(t, addr), sh(t, "cat "+dir+"/build.log"))
		}
	}
	if got := statusField(t, dir, "leader"); got != leader {
		t.Errorf("the edit restarted the container: leader %s, then %s", leader, got)
	}
	if status := checkStatus(t, name, "active (running)"); !strings.Contains(status, "ExecReload="+scripts+"/reload (code=exited, status=0/SUCCESS)") {
		t.Errorf("systemctl status shows no successful reload by the template's script:\n%s", status)
	}

	sh(t, "echo stop > "+dir+"/state")
	if got := sh(t, "cat "+dir+"/state"); got != "stopped\n" {
		t.Errorf("state after stop: %q", got)
	}
	checkStatus(t, name, "inactive (dead)")

	sh(t, "rmdir "+dir)
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s is still there after rmdir", dir)
	}
	checkStatus(t, name, "inactive (dead)")
	if r := nixcfs(t, "status", name); r.stdout != "gone\n" {
		t.Errorf("nixcfs status after rmdir: %q", r.stdout)
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
