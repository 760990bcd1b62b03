package main

// The command line against the real stack, inside the test host (NIXCFS_TESTHOST=1):
// the nixcfs binary ($NIXCFS_BIN) builds the guest system ($NIXCFS_GUEST), starts it
// under systemd and enters it. Elsewhere these tests skip.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"nixcfs/testhost"
)

type cliResult struct {
	stdout, stderr string
	code           int
}

func nixcfs(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(os.Getenv("NIXCFS_BIN"), args...)
	cmd.Env = append(os.Environ(), "NIXCFS_NIXOS_PATH="+os.Getenv("NIXCFS_GUEST"))
	cmd.Stdin = strings.NewReader(stdin)
	return gather(t, cmd)
}

// must runs a verb that has to succeed.
func must(t *testing.T, args ...string) cliResult {
	t.Helper()
	r := nixcfs(t, "", args...)
	if r.code != 0 {
		t.Fatalf("nixcfs %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

func requireTestHost(t *testing.T) { testhost.Require(t) }

func TestCLIVerbs(t *testing.T) {
	requireTestHost(t)
	t.Cleanup(func() { nixcfs(t, "", "destroy", "cli1") })
	r := must(t, "create", "cli1", "--config", `services.hello = { enable = true; message = "from the cli"; };`)
	// The addresses first; nix's lines follow (no terminal).
	m := regexp.MustCompile(`^host IP is (10\.233\.\d+\.1), container IP is (10\.233\.\d+\.2)\n`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("create's stderr: %q", r.stderr)
	}
	addr := m[2]
	if r := must(t, "list"); !strings.Contains(r.stdout, "cli1\n") {
		t.Errorf("list: %q", r.stdout)
	}
	if r := must(t, "status", "cli1"); r.stdout != "down\n" {
		t.Errorf("status before start: %q", r.stdout)
	}
	if r := must(t, "show-ip", "cli1"); r.stdout != addr+"\n" {
		t.Errorf("show-ip: %q, want %s", r.stdout, addr)
	}
	must(t, "start", "cli1")
	if r := must(t, "status", "cli1"); r.stdout != "up\n" {
		t.Errorf("status after start: %q", r.stdout)
	}
	if got := testhost.Hello(t, addr); got != "from the cli" {
		t.Errorf("hello: %q", got)
	}

	// run: exit status, stdout, stdin, arguments with spaces and quotes.
	if r := nixcfs(t, "", "run", "cli1", "--", "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("run exit 7: got %d (%s)", r.code, r.stderr)
	}
	if r := must(t, "run", "cli1", "--", "hostname"); strings.TrimSpace(r.stdout) != "cli1" {
		t.Errorf("run hostname: %q", r.stdout)
	}
	if r := nixcfs(t, "piped in\n", "run", "cli1", "--", "cat"); r.stdout != "piped in\n" {
		t.Errorf("run cat with stdin: %q %s", r.stdout, r.stderr)
	}
	if r := must(t, "run", "cli1", "--", "echo", "it's", "two words"); r.stdout != "it's two words\n" {
		t.Errorf("run quoting: %q", r.stdout)
	}
	if r := nixcfs(t, "", "run", "cli1", "--", "sh", "-c", "echo oops >&2; exit 3"); r.code != 3 || r.stderr != "oops\n" {
		t.Errorf("run stderr: %d %q", r.code, r.stderr)
	}

	// update: new config applied without restart.
	var before, after struct{ Leader int }
	json.Unmarshal([]byte(must(t, "status", "cli1", "--json").stdout), &before)
	r = must(t, "update", "cli1", "--config", `services.hello = { enable = true; message = "updated"; };`)
	if !strings.Contains(r.stderr, "reloading container...") {
		t.Errorf("update's stderr: %q", r.stderr)
	}
	if got := testhost.Hello(t, addr); got != "updated" {
		t.Errorf("hello after update: %q", got)
	}
	json.Unmarshal([]byte(must(t, "status", "cli1", "--json").stdout), &after)
	if before.Leader == 0 || before.Leader != after.Leader {
		t.Errorf("update restarted the container: leader %d -> %d", before.Leader, after.Leader)
	}

	var list []struct {
		Name         string `json:"name"`
		State        string `json:"state"`
		LocalAddress string `json:"local_address"`
	}
	if err := json.Unmarshal([]byte(must(t, "list", "--json").stdout), &list); err != nil ||
		len(list) != 1 || list[0].Name != "cli1" || list[0].State != "running" || list[0].LocalAddress != addr {
		t.Errorf("list --json: %v %+v", err, list)
	}

	if r := nixcfs(t, "", "show-host-key", "cli1"); r.code != 1 {
		t.Errorf("show-host-key without a key: exit %d", r.code)
	}
	must(t, "restart", "cli1")
	if got := testhost.Hello(t, addr); got != "updated" {
		t.Errorf("hello after restart: %q", got)
	}
	must(t, "terminate", "cli1")
	if r := must(t, "status", "cli1"); r.stdout != "down\n" {
		t.Errorf("status after terminate: %q", r.stdout)
	}
	must(t, "start", "cli1")
	must(t, "stop", "cli1")
	must(t, "destroy", "cli1")
	if r := nixcfs(t, "", "status", "cli1"); r.stdout != "gone\n" || r.code == 0 {
		t.Errorf("status after destroy: %q exit %d", r.stdout, r.code)
	}
}

func TestCLIErrors(t *testing.T) {
	requireTestHost(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "waytoolongname"}, "nixcfs: container name ‘waytoolongname’ is too long\n"},
		{[]string{"create", "bad.name"}, "nixcfs: invalid container name\n"},
		{[]string{"start", "nosuch"}, "nixcfs: container ‘nosuch’ does not exist\n"},
		{[]string{"run", "nosuch", "--", "true"}, "nixcfs: container ‘nosuch’ does not exist\n"},
		{[]string{"frobnicate"}, "nixcfs: unknown action ‘frobnicate’\n"},
		{[]string{"create", "x", "--config", "a", "--config-file", "/etc/hostname"}, "mutually incompatible"},
	} {
		r := nixcfs(t, "", tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("nixcfs %v: exit %d, stderr %q, want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if r := nixcfs(t, "", "start", "--help"); r.code != 0 || !strings.Contains(r.stderr, "Usage: nixcfs start NAME") {
		t.Errorf("start --help: %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat("/etc/nixos-containers/x.conf"); err == nil {
		t.Error("a refused create left x.conf")
	}
}

// root-login on a real terminal: tmux gives it a pty; the shell runs hostname, the
// screen shows the answer, and `exit` ends the session.
func TestRootLoginThroughTmux(t *testing.T) {
	requireTestHost(t)
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is needed (make deps installs it)")
	}
	t.Cleanup(func() { nixcfs(t, "", "destroy", "cli2") })
	must(t, "create", "cli2")
	must(t, "start", "cli2")
	session := fmt.Sprintf("nixcfs-test-%d", os.Getpid())
	bin := os.Getenv("NIXCFS_BIN")
	// The test's own tmux server (-L): another test's never ends it.
	sock := session
	tmux := func(args ...string) string {
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30",
		"sh -c '"+bin+" root-login cli2; echo root-login exited $?; sleep 60'")
	t.Cleanup(func() { exec.Command("tmux", "-L", sock, "kill-server").Run() })
	screenHas := func(want string) string {
		deadline := time.Now().Add(10 * time.Second)
		var screen string
		for time.Now().Before(deadline) {
			screen = tmux("capture-pane", "-p", "-t", session)
			if strings.Contains(screen, want) {
				return screen
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("screen never showed %q:\n%s", want, screen)
		return ""
	}
	// foreground waits until the program the terminal runs in the foreground is want:
	// keys typed before would reach the wrong program.
	foreground := func(want string) {
		deadline := time.Now().Add(10 * time.Second)
		var got string
		for time.Now().Before(deadline) {
			if got = strings.TrimSpace(tmux("display-message", "-p", "-t", session, "#{pane_current_command}")); got == want {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("the terminal's foreground program is %q, not %q, after 10s", got, want)
	}
	screenHas("root@cli2") // the shell's prompt: it reads what is typed from now on
	// Only the shell's output, not the typed line, holds "marker-42" and "host=cli2".
	tmux("send-keys", "-t", session, "echo marker-$((6*7)) host=$(hostname) uid=$(id -u)", "Enter")
	screenHas("marker-42 host=cli2 uid=0")
	// The terminal is the caller's: its window size, and Ctrl-C reaches the shell's job.
	tmux("send-keys", "-t", session, "echo size=$(stty size)", "Enter")
	screenHas("size=30 100")
	tmux("send-keys", "-t", session, "sleep 100", "Enter")
	foreground("sleep")
	tmux("send-keys", "-t", session, "C-c", "")
	tmux("send-keys", "-t", session, "echo interrupted=$?", "Enter")
	screenHas("interrupted=130")
	// Job control: Ctrl-Z stops the job, the shell lists it, and it can be killed.
	tmux("send-keys", "-t", session, "sleep 101", "Enter")
	foreground("sleep")
	tmux("send-keys", "-t", session, "C-z", "")
	tmux("send-keys", "-t", session, "jobs -l | sed 's/^/job: /'; kill -9 %1", "Enter")
	screenHas("job: [1]")
	tmux("send-keys", "-t", session, "echo reaped", "Enter")
	screenHas("Killed")
	tmux("send-keys", "-t", session, "exit 5", "Enter")
	screenHas("root-login exited 5")

	// login shows the container's login prompt. Its session starts before the first one
	// ends: a tmux server whose last session ended exits, and a new-session that reaches
	// it meanwhile fails ("server exited unexpectedly").
	first := session
	session += "-login"
	tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", bin+" login cli2")
	tmux("kill-session", "-t", first)
	screenHas("cli2 login:")
}

// --flake builds nixosConfigurations.NAME of a flake with the nix command; the flake
// here wraps the guest system, copied into it because flakes evaluate purely.
func TestCLIFlake(t *testing.T) {
	requireTestHost(t)
	dir := t.TempDir()
	guest := os.Getenv("NIXCFS_GUEST")
	for _, c := range [][]string{{"cp", "-r", guest, dir + "/guest"}, {"cp", "/bin/busybox", dir + "/busybox"}, {"cp", "/bin/bash-static", dir + "/bash"}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	os.WriteFile(dir+"/configuration.nix", []byte(`{ lib, ... }: { boot.isContainer = true; networking.hostName = "flaky";
  services.hello = { enable = true; message = "from a flake"; }; }`), 0o644)
	os.WriteFile(dir+"/flake.nix", []byte(`{ outputs = { self }: {
  nixosConfigurations.fl = import ./guest { configuration = ./configuration.nix; busybox = ./busybox; bash = ./bash; system = "x86_64-linux"; };
}; }`), 0o644)
	t.Cleanup(func() { nixcfs(t, "", "destroy", "fl") })
	r := nixcfs(t, "", "create", "fl", "--flake", dir)
	if r.code != 0 {
		t.Fatalf("create --flake: %d\n%s", r.code, r.stderr)
	}
	conf, _ := os.ReadFile("/etc/nixos-containers/fl.conf")
	if !strings.Contains(string(conf), "FLAKE="+dir+"#fl\n") {
		t.Errorf("conf lacks FLAKE:\n%s", conf)
	}
	must(t, "start", "fl")
	if got := testhost.Hello(t, strings.TrimSpace(must(t, "show-ip", "fl").stdout)); got != "from a flake" {
		t.Errorf("hello: %q", got)
	}
	must(t, "stop", "fl")
	if r := nixcfs(t, "", "create", "fl2", "--flake", dir+"#"); r.code == 0 || !strings.Contains(r.stderr, "want FLAKE#ATTR") {
		t.Errorf("bad flake reference: %d %q", r.code, r.stderr)
	}
}

// The NixOS manual's text uses the older layout, /etc/containers and
// /var/lib/containers; --layout=old drives containers there.
func TestCLIOldLayout(t *testing.T) {
	requireTestHost(t)
	old := func(args ...string) []string { return append(args, "--layout=old") }
	t.Cleanup(func() { nixcfs(t, "", old("destroy", "oldfoo")...) })
	r := must(t, old("create", "oldfoo", "--host-address", "10.235.1.1", "--local-address", "10.235.1.2",
		"--config", `services.hello = { enable = true; message = "old layout"; };`)...)
	if !strings.HasPrefix(r.stderr, "host IP is 10.235.1.1, container IP is 10.235.1.2\n") {
		t.Errorf("create: %q", r.stderr)
	}
	for _, p := range []string{"/etc/containers/oldfoo.conf", "/var/lib/containers/oldfoo/etc/nixos/configuration.nix",
		"/nix/var/nix/profiles/per-container/oldfoo/system"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("old layout: %v", err)
		}
	}
	must(t, old("start", "oldfoo")...)
	if got := testhost.Hello(t, "10.235.1.2"); got != "old layout" {
		t.Errorf("hello: %q", got)
	}
	// The manual: edit /var/lib/containers/NAME/etc/nixos/configuration.nix, update.
	cfg := "/var/lib/containers/oldfoo/etc/nixos/configuration.nix"
	text, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(text, []byte("old layout"), []byte("edited in place"), 1), 0o644)
	must(t, old("update", "oldfoo")...)
	if got := testhost.Hello(t, "10.235.1.2"); got != "edited in place" {
		t.Errorf("hello after update: %q", got)
	}
	must(t, old("destroy", "oldfoo")...)
	if _, err := os.Stat("/var/lib/containers/oldfoo"); err == nil {
		t.Error("destroy left the root tree")
	}
}

// AUTO_START=1 containers come up when nixcfs mount starts (at boot, as a unit).
func TestMountStartsAutostartContainers(t *testing.T) {
	requireTestHost(t)
	t.Cleanup(func() { nixcfs(t, "", "destroy", "auto1") })
	must(t, "create", "auto1", "--auto-start")
	mnt := t.TempDir()
	cmd := exec.Command(os.Getenv("NIXCFS_BIN"), "mount", "--nixos-path="+os.Getenv("NIXCFS_GUEST"), mnt)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	// The mount starts autostart containers in the background once it is up: polled,
	// with a deadline.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, err := os.ReadFile(mnt + "/auto1/state"); err == nil && string(st) == "running\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("auto1 not running 30s after the mount started\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	must(t, "stop", "auto1")
}
