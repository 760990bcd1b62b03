package testscripts

// Crash safety, by fault injection: nixcfs built with crash points (make crash-binary)
// kills itself with SIGKILL at a named point of create, config commit and build,
// start, stop, address change and destroy, run as the mount and as the command line.
// After each crash a fresh `nixcfs mount` must show no half-made container (whole, or
// gone with its files), no build left "building", no lost or half-written text, and
// the running container it never touched still running.

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nixcfs/internal/crash"
	"nixcfs/internal/guestroot"
	"nixcfs/ops"
	"nixcfs/testhost"
)

// crashHarness holds what every crash case uses.
type crashHarness struct {
	t                *testing.T
	bin, crash       string
	guest            string
	mnt              string // the mount of the moment
	l                ops.Layout
	sentinelLeader   string
	oldAddress       string // the target's LOCAL_ADDRESS before an address change
	textA, textB     string
	sentinel, target string
}

// crashCase is one point reached one way. setup runs with the normal binary; act
// runs with the crash binary and must make it reach the point; check runs on a fresh
// mount of the normal binary.
type crashCase struct {
	point string
	via   string // "mount" or "cli"
	setup func(h *crashHarness)
	act   func(a *crashAct)
	check func(h *crashHarness)
}

// crashAct is one action of the crash binary: through its mount, or its command line.
type crashAct struct {
	h   *crashHarness
	env []string
	mnt string    // the crashing mount; "" through the command line
	cli *exec.Cmd // the crashing command line, once run
}

func (a *crashAct) viaMount() bool { return a.mnt != "" }

func (a *crashAct) file(name string) string { return filepath.Join(a.mnt, a.h.target, name) }

// runCLI runs the crash binary's command line, which is to die at the point.
func (a *crashAct) runCLI(args ...string) {
	a.cli = a.h.run(a.h.crash, a.env, args...)
	a.cli.Run()
}

func TestCrashes(t *testing.T) {
	paths := testhost.Require(t)
	crashBin := os.Getenv("NIXCFS_CRASH_BIN")
	if crashBin == "" {
		t.Fatal("NIXCFS_CRASH_BIN must name the nixcfs binary built with crash points")
	}
	oneAtATime.Lock()
	defer oneAtATime.Unlock()
	h := &crashHarness{t: t, bin: paths.Bin, crash: crashBin, guest: paths.Guest, l: ops.NewLayout(),
		sentinel: "crsent", target: "crt",
		textA: ops.DefaultConfig("crt", `services.hello = { enable = true; message = "A"; };`),
		textB: ops.DefaultConfig("crt", `services.hello = { enable = true; message = "B"; };`)}
	h.cli("create", h.sentinel, "--config", `services.hello = { enable = true; message = "sentinel"; };`)
	h.cli("start", h.sentinel)
	t.Cleanup(func() { h.run(h.bin, nil, "destroy", h.sentinel).Run() })
	h.sentinelLeader = h.leader(h.sentinel)
	seen := map[string]bool{}
	for _, c := range crashCases() {
		seen[c.point] = true
		t.Run(c.point+"/"+c.via, func(t *testing.T) { h.t = t; h.runCase(c) })
	}
	for _, p := range crash.Points() {
		if !seen[p] {
			t.Errorf("crash point %s has no case", p)
		}
	}
}

// updatePoints are the points an update meets, each after its new text is written:
// queueConfig writes configuration.nix, then meets ConfigWritten, then queues the
// build, whose points follow (ops/config.go, ops/builds.go, ops/nix.go).
var updatePoints = []string{crash.ConfigWritten, crash.BuildRunning, crash.BuildProfile, crash.BuildDone}

func crashCases() []crashCase {
	var cases []crashCase
	for _, via := range []string{"mount", "cli"} {
		for _, p := range []string{crash.CreateReserved, crash.CreateFiles, crash.CreateConf, crash.BuildRunning, crash.BuildProfile, crash.BuildDone} {
			cases = append(cases, crashCase{point: p, via: via, act: actCreate, check: checkCreate})
		}
		for _, p := range updatePoints {
			cases = append(cases, crashCase{point: p, via: via, setup: setupStopped, act: actUpdate, check: checkUpdate})
		}
		cases = append(cases,
			crashCase{point: crash.StartJob, via: via, setup: setupStopped, act: actUnit("start"), check: checkSettled},
			crashCase{point: crash.StopJob, via: via, setup: setupRunning, act: actUnit("stop"), check: checkSettled})
		for _, p := range []string{crash.DestroyMarked, crash.DestroyProfile, crash.DestroyRoot, crash.DestroyConf} {
			cases = append(cases, crashCase{point: p, via: via, setup: setupStopped, act: actDestroy, check: checkGone})
		}
	}
	for _, via := range []string{"mount", "cli"} {
		cases = append(cases, crashCase{point: crash.SwitchProfile, via: via, setup: setupTwoGenerations, act: actRollback, check: checkSwitch})
	}
	// nixos-container has no verb that changes an address: the mount alone does it.
	return append(cases, crashCase{point: crash.AddressChosen, via: "mount", setup: setupStopped, act: actAddress, check: checkAddress})
}

func (h *crashHarness) runCase(c crashCase) {
	t := h.t
	if c.setup != nil {
		c.setup(h)
	}
	t.Cleanup(h.removeTarget)
	a := &crashAct{h: h, env: []string{crash.Env + "=" + c.point}}
	victim := a.cli
	if c.via == "mount" {
		d := h.mount(h.crash, a.env)
		a.mnt = d.mnt
		c.act(a)
		victim = d.waitKilled(t)
	} else {
		c.act(a)
		victim = a.cli
	}
	if ws, ok := victim.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the crash point %s was not reached: %s", c.point, victim.ProcessState)
	}
	d := h.mount(h.bin, nil)
	defer d.stop(t)
	c.check(h)
	if got := h.leader(h.sentinel); got != h.sentinelLeader {
		t.Errorf("the running container was touched: leader %s, was %s", got, h.sentinelLeader)
	}
}

// --- the actions, each with the crash binary ---

func actCreate(a *crashAct) {
	if a.viaMount() {
		os.Mkdir(filepath.Join(a.mnt, a.h.target), 0o755)
		return
	}
	a.runCLI("create", a.h.target)
}

func actUpdate(a *crashAct) {
	if a.viaMount() {
		os.WriteFile(a.file("config.nix"), []byte(a.h.textB), 0)
		return
	}
	a.runCLI("update", a.h.target, "--config", `services.hello = { enable = true; message = "B"; };`)
}

func actUnit(verb string) func(a *crashAct) {
	return func(a *crashAct) {
		if a.viaMount() {
			os.WriteFile(a.file("state"), []byte(verb+"\n"), 0)
			return
		}
		a.runCLI(verb, a.h.target)
	}
}

func actDestroy(a *crashAct) {
	if a.viaMount() {
		os.Remove(filepath.Join(a.mnt, a.h.target))
		return
	}
	a.runCLI("destroy", a.h.target)
}

func actAddress(a *crashAct) {
	conf, _ := ops.ReadConf(a.h.l.ConfPath(a.h.target))
	a.h.oldAddress = conf.Get("LOCAL_ADDRESS")
	os.WriteFile(a.file("address"), []byte("10.233.77.2\n"), 0)
}

func actRollback(a *crashAct) {
	if a.viaMount() {
		os.WriteFile(a.file("generation"), []byte("1\n"), 0)
		return
	}
	a.runCLI("rollback", a.h.target)
}

// --- the set-ups, with the normal binary ---

func setupStopped(h *crashHarness) {
	h.cli("create", h.target, "--config", `services.hello = { enable = true; message = "A"; };`)
}

// setupTwoGenerations: generation 1 built from text A, 2 from text B, current.
func setupTwoGenerations(h *crashHarness) {
	setupStopped(h)
	h.cli("update", h.target, "--config", `services.hello = { enable = true; message = "B"; };`)
}

func setupRunning(h *crashHarness) {
	setupStopped(h)
	h.cli("start", h.target)
}

// --- the checks, on a fresh mount ---

// checkCreate: the container is gone with every file, or whole with a build that is
// over (built, or failed with a reason) and no out-link of the dead build, and rmdir
// clears it.
func checkCreate(h *crashHarness) {
	if !h.exists() {
		h.noFilesLeft()
		return
	}
	h.buildOver()
	h.noDeadOutLinks()
	if err := os.Remove(filepath.Join(h.mnt, h.target)); err != nil {
		h.t.Errorf("rmdir of the container a crash left: %v", err)
	}
	h.noFilesLeft()
}

// checkUpdate: every point of an update comes after its new text was written
// (updatePoints), so configuration.nix is that text, B, whole; the build is over: B's
// system is the profile's next generation, or the status says its build failed, and
// why; and no out-link of the dead build holds a system nothing records.
func checkUpdate(h *crashHarness) {
	text, err := os.ReadFile(filepath.Join(h.mnt, h.target, "config.nix"))
	if err != nil {
		h.t.Fatalf("config.nix: %v", err)
	}
	if string(text) != h.textB {
		h.t.Errorf("config.nix is not the text written before the crash:\n%s", text)
	}
	h.buildOver()
	status, _ := os.ReadFile(filepath.Join(h.mnt, h.target, "status"))
	if bytes.Contains(status, []byte("\ngeneration 1\n")) && !bytes.Contains(status, []byte("\nconfig failed\n")) {
		h.t.Errorf("the new text was never built, yet the status does not say so:\n%s", status)
	}
	h.noDeadOutLinks()
}

// checkSwitch: a switch back to generation 1 wrote its text, A; the profile is at 1
// and the status says built, or it is still at 2 and the status says the switch
// failed, and why.
func checkSwitch(h *crashHarness) {
	text, _ := os.ReadFile(filepath.Join(h.mnt, h.target, "config.nix"))
	status, _ := os.ReadFile(filepath.Join(h.mnt, h.target, "status"))
	if string(text) != h.textA {
		h.t.Errorf("config.nix is not generation 1's text:\n%s", text)
	}
	switched := bytes.Contains(status, []byte("\ngeneration 1\n")) && bytes.Contains(status, []byte("\nconfig built\n"))
	reported := bytes.Contains(status, []byte("\ngeneration 2\n")) && bytes.Contains(status, []byte("\nconfig failed\n"))
	if !switched && !reported {
		h.t.Errorf("the switch is neither done nor said to have failed:\n%s", status)
	}
}

// checkSettled: the unit's job went on without nixcfs: the container runs or is
// stopped, as systemd says, and stops.
func checkSettled(h *crashHarness) {
	state := h.waitStateIn(ops.StateRunning.String(), ops.StateStopped.String())
	out, _ := exec.Command("systemctl", "is-active", ops.UnitName(h.target)).Output()
	active := strings.TrimSpace(string(out)) == "active"
	if active != (state == ops.StateRunning.String()) {
		h.t.Errorf("state %s, systemd says %s", state, out)
	}
}

// checkGone: a destroy that a crash cut off is finished by the next start, down to
// the root tree it had moved aside.
func checkGone(h *crashHarness) {
	if h.exists() {
		h.t.Errorf("a destroy cut off left %s listed", h.target)
	}
	h.noFilesLeft()
	h.waitNoTrash()
}

// checkAddress: the conf file holds the old address or the new one, whole.
func checkAddress(h *crashHarness) {
	conf, err := ops.ReadConf(h.l.ConfPath(h.target))
	if err != nil {
		h.t.Fatal(err)
	}
	if a := conf.Get("LOCAL_ADDRESS"); a != "10.233.77.2" && a != h.oldAddress {
		h.t.Errorf("LOCAL_ADDRESS %q, neither the old %s nor the new one", a, h.oldAddress)
	}
	if conf.Get("HOST_ADDRESS") == "" || conf.Get("PRIVATE_NETWORK") != "1" {
		h.t.Errorf("conf file:\n%s", conf.Bytes())
	}
}

func (h *crashHarness) exists() bool {
	_, err := os.Stat(filepath.Join(h.mnt, h.target))
	return err == nil
}

func (h *crashHarness) noFilesLeft() {
	for _, p := range []string{h.l.ConfPath(h.target), h.l.RootPath(h.target), h.l.ProfilePath(h.target),
		h.l.GCRootPath(h.target), h.l.DataPath(h.target)} {
		if _, err := os.Lstat(p); err == nil {
			h.t.Errorf("left behind: %s", p)
		}
	}
}

// Names nixcfs gives what it leaves beside a container's files for a while: a root
// tree moved aside to be deleted in the background, in the state directory; a build's
// out-link, named after the builder's PID, in the container's gc roots.
const (
	trashPrefix   = ".nixcfs-trash-"
	outLinkPrefix = ".nixcfs-build-"
)

// waitNoTrash waits until no root tree moved aside is left in the state directory: a
// mount deletes those an earlier run left (EmptyTrash), in the background.
func (h *crashHarness) waitNoTrash() {
	var left []string
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if left, _ = filepath.Glob(filepath.Join(h.l.StateDir, trashPrefix+"*")); len(left) == 0 {
			return
		}
	}
	h.t.Errorf("root trees moved aside, still not deleted after 60s (EmptyTrash): %v", left)
}

// noDeadOutLinks: the target's gc roots hold no out-link of a build whose process is
// gone (a start sweeps them): each would keep a system in the store that no profile
// records.
func (h *crashHarness) noDeadOutLinks() {
	links, _ := filepath.Glob(filepath.Join(h.l.GCRootPath(h.target), outLinkPrefix+"*"))
	for _, link := range links {
		// The PID ends the name; nix-build's temporary link adds .tmp-PID-RANDOM.
		pid, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(link), outLinkPrefix), ".")
		if _, err := os.Stat("/proc/" + pid); err != nil {
			h.t.Errorf("the out-link of a build whose process (%s) is gone is left: %s", pid, link)
		}
	}
}

// buildOver: the status says built, or failed with a reason; never building.
func (h *crashHarness) buildOver() {
	status, err := os.ReadFile(filepath.Join(h.mnt, h.target, "status"))
	if err != nil {
		h.t.Fatalf("status: %v", err)
	}
	built := bytes.Contains(status, []byte("\nconfig built\n"))
	failed := bytes.Contains(status, []byte("\nconfig failed\n")) && !bytes.Contains(status, []byte("\nerror -\n"))
	if !built && !failed {
		h.t.Errorf("the build is not over, or failed without a reason:\n%s", status)
	}
}

func (h *crashHarness) waitStateIn(words ...string) string {
	var state string
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(h.mnt, h.target, "state"))
		state = strings.TrimSpace(string(b))
		for _, w := range words {
			if state == w {
				return state
			}
		}
	}
	h.t.Fatalf("state %q, want one of %v within 30s (a unit job settles)", state, words)
	return ""
}

// removeTarget stops and destroys the target with the normal command line, and then
// removes whatever a crash left of it, so that each case starts clean.
func (h *crashHarness) removeTarget() {
	h.run(h.bin, nil, "destroy", h.target).Run()
	os.Remove(h.l.ConfPath(h.target))
	guestroot.RemoveTree(h.l.RootPath(h.target))
	for _, p := range []string{h.l.ProfilePath(h.target), h.l.GCRootPath(h.target), h.l.DataPath(h.target)} {
		os.RemoveAll(p)
	}
}

// leader is the running container's leader PID, from its status.
func (h *crashHarness) leader(name string) string {
	out, err := h.run(h.bin, nil, "status", name, "--json").Output()
	if err != nil {
		h.t.Fatalf("status %s: %v", name, err)
	}
	i := bytes.Index(out, []byte(`"leader": `))
	if i < 0 {
		h.t.Fatalf("status %s: %s", name, out)
	}
	leader, _, _ := strings.Cut(string(out[i+len(`"leader": `):]), ",")
	return leader
}

// run is the command line (bin) with env.
func (h *crashHarness) run(bin string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "NIXCFS_NIXOS_PATH="+h.guest), env...)
	cmd.Dir = "/"
	return cmd
}

// cli runs a verb of the normal command line that must succeed.
func (h *crashHarness) cli(args ...string) {
	h.t.Helper()
	if out, err := h.run(h.bin, nil, args...).CombinedOutput(); err != nil {
		h.t.Fatalf("nixcfs %v: %v\n%s", args, err, out)
	}
}

// crashDaemon is one `nixcfs mount` of a crash case.
type crashDaemon struct {
	cmd    *exec.Cmd
	mnt    string
	exited chan struct{}
	out    bytes.Buffer
}

// mount starts bin as a mount daemon with env, at a fresh mount point, and waits for
// its READY=1 (systemd's protocol): sent once the mount is served, and after go-fuse
// has looked at its own mount once, which a daemon killed before that would deadlock.
func (h *crashHarness) mount(bin string, env []string) *crashDaemon {
	t := h.t
	mnt := t.TempDir()
	notify := filepath.Join(t.TempDir(), "notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	d := &crashDaemon{mnt: mnt, exited: make(chan struct{})}
	d.cmd = h.run(bin, append(env, "NOTIFY_SOCKET="+notify), "mount", "--nixos-path="+h.guest, "--log-level=info", mnt)
	d.cmd.Stdout, d.cmd.Stderr = &d.out, &d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	ready := make(chan bool, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				ready <- false
				return
			}
			if bytes.Contains(buf[:n], []byte("READY=1")) {
				ready <- true
				return
			}
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the notify socket failed")
		}
	case <-d.exited:
		t.Fatalf("nixcfs mount exited: %s\n%s", d.cmd.ProcessState, d.out.String())
	case <-time.After(30 * time.Second):
		t.Fatal("nixcfs mount sent no READY=1 within 30s")
	}
	h.mnt = mnt
	return d
}

// waitKilled waits for a crashing daemon to die, and unmounts what it left.
func (d *crashDaemon) waitKilled(t *testing.T) *exec.Cmd {
	select {
	case <-d.exited:
	case <-time.After(60 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		t.Errorf("the daemon did not crash within 60s:\n%s", d.out.String())
	}
	exec.Command("umount", "-l", d.mnt).Run()
	return d.cmd
}

// stop ends a normal daemon as systemd would.
func (d *crashDaemon) stop(t *testing.T) {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		t.Errorf("nixcfs mount ignored SIGTERM for 20s")
	}
	if t.Failed() {
		t.Logf("nixcfs mount log:\n%s", d.out.String())
	}
}
