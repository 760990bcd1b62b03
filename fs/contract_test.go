package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"nixcfs/ops"
	"nixcfs/testhost"
)

// The behaviour of a Backend that the filesystem relies on, asserted of the fake here
// and of the real ops.Manager in the test host: the fake cannot drift from the real
// thing unnoticed.

// contractBackend is a Backend whose first builds can be waited for.
type contractBackend interface {
	Backend
	WaitBuilt(ctx context.Context, name string) error
}

// contractFixtures make what the contract needs and a Backend cannot make itself.
type contractFixtures struct {
	// declarative makes a container managed by the host's configuration, and returns
	// a function that removes it.
	declarative func(t *testing.T, name string) (remove func())
}

func goodConfig(name string) []byte {
	return []byte(ops.DefaultConfig(name, `services.hello = { enable = true; message = "contract"; };`))
}

// brokenConfig does not evaluate (a missing semicolon); the fake fails on the marker.
func brokenConfig(name string) []byte {
	return []byte(ops.DefaultConfig(name, "# "+brokenMarker+"\n  services.hello = { enable = true; message = \"x\" };"))
}

func TestContractFake(t *testing.T) {
	f := newFakeBackend(t)
	runContract(t, f, contractFixtures{
		declarative: func(t *testing.T, name string) func() {
			f.add(name, &fakeContainer{declarative: true}, true)
			return func() { f.removeOutside(name) }
		},
	})
}

func TestContractManager(t *testing.T) {
	paths := testhost.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := ops.New(ctx, ops.Options{Layout: ops.NewLayout(), NixOSPath: paths.Guest, NixcfsBin: paths.Bin,
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	runContract(t, m, contractFixtures{
		// As a NixOS rebuild makes one: its conf file a link to a file nixcfs may not
		// write.
		declarative: func(t *testing.T, name string) func() {
			conf := filepath.Join(t.TempDir(), name+".conf")
			os.WriteFile(conf, []byte("PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.251.1\nLOCAL_ADDRESS=10.233.251.2\n"), 0o644)
			link := m.Layout().ConfPath(name)
			if err := os.Symlink(conf, link); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, name+" appears", func() bool { return m.Exists(name) })
			return func() {
				os.Remove(link)
				eventually(t, 10*time.Second, name+" vanishes", func() bool { return !m.Exists(name) })
			}
		},
	})
}

func runContract(t *testing.T, b contractBackend, fx contractFixtures) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	one, all := b.Watch(ctx, "ct1"), b.Watch(ctx, "")
	for _, name := range []string{"ct1", "ct2", "ct3"} {
		t.Cleanup(func() {
			if b.Exists(name) {
				b.Terminate(context.Background(), name)
				b.Destroy(context.Background(), name)
			}
		})
	}
	t.Run("create", func(t *testing.T) { contractCreate(t, ctx, b, one, all) })
	t.Run("config", func(t *testing.T) { contractConfig(t, ctx, b) })
	t.Run("generations", func(t *testing.T) { contractGenerations(t, ctx, b) })
	t.Run("addresses", func(t *testing.T) { contractAddresses(t, ctx, b) })
	t.Run("ports", func(t *testing.T) { contractPorts(t, ctx, b, one) })
	t.Run("limits", func(t *testing.T) { contractLimits(t, ctx, b) })
	t.Run("units", func(t *testing.T) { contractUnits(t, ctx, b) })
	t.Run("declarative", func(t *testing.T) {
		remove := fx.declarative(t, "ctd")
		defer remove()
		contractDeclarative(t, ctx, b, "ctd")
	})
	t.Run("destroy", func(t *testing.T) { contractDestroy(t, ctx, b, one) })
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// nextEvents reads events until each of want (KIND VALUE) was seen, in this order.
func nextEvents(t *testing.T, events <-chan ops.Event, name string, want ...string) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for len(want) > 0 {
		select {
		case ev := <-events:
			if ev.Name == name && fmt.Sprintf("%s %s", ev.Kind, ev.Value) == want[0] {
				want = want[1:]
			}
		case <-deadline:
			t.Fatalf("%s: events %q not seen", name, want)
		}
	}
}

func contractCreate(t *testing.T, ctx context.Context, b contractBackend, one, all <-chan ops.Event) {
	name, err := b.Create(ctx, "ct1", ops.CreateOptions{})
	must(t, "create", err)
	if name != "ct1" || !b.Exists("ct1") {
		t.Fatalf("create returned %q; exists: %v", name, b.Exists("ct1"))
	}
	_, err = b.Create(ctx, "ct1", ops.CreateOptions{})
	wantErr(t, "create of a taken name", err, ops.ErrExists)
	_, err = b.Create(ctx, "bad.name", ops.CreateOptions{})
	wantErr(t, "create of a bad name", err, ops.ErrInvalidName)
	_, err = b.Create(ctx, "waytoolongname", ops.CreateOptions{})
	wantErr(t, "create of a long name", err, ops.ErrNameTooLong)
	must(t, "first build", b.WaitBuilt(ctx, "ct1"))
	// Creating while its first build runs, then built and stopped, in that order.
	for _, events := range []<-chan ops.Event{one, all} {
		nextEvents(t, events, "ct1", "container created", "state creating", "config built", "state stopped")
	}
	st, err := b.Status("ct1")
	must(t, "status", err)
	if st.State != ops.StateStopped || st.Config != ops.BuildBuilt || st.LocalAddress == "" || st.HostAddress == "" {
		t.Errorf("status after the first build: %+v", st)
	}
	if _, err := b.State("nope"); !errors.Is(err, ops.ErrNotFound) {
		t.Errorf("state of an unknown container: %v", err)
	}
}

func contractConfig(t *testing.T, ctx context.Context, b contractBackend) {
	good, broken := goodConfig("ct1"), brokenConfig("ct1")
	must(t, "good config", b.SetConfig(ctx, "ct1", good))
	if text, _ := b.ReadConfig("ct1"); string(text) != string(good) {
		t.Errorf("config after a good write:\n%s", text)
	}
	if size, _, err := b.ConfigInfo("ct1"); err != nil || size != int64(len(good)) {
		t.Errorf("config info: %d %v, want %d", size, err, len(good))
	}
	wantErr(t, "broken config", b.SetConfig(ctx, "ct1", broken), ops.ErrBuildFailed)
	if text, _ := b.ReadConfig("ct1"); string(text) != string(broken) {
		t.Errorf("the text of a failed build was not kept:\n%s", text)
	}
	if st, _ := b.Status("ct1"); st.Config != ops.BuildFailed || st.Error == "" {
		t.Errorf("status after a failed build: %+v", st)
	}
	must(t, "fixed config", b.SetConfig(ctx, "ct1", good))
	if st, _ := b.Status("ct1"); st.Config != ops.BuildBuilt || st.Error != "" {
		t.Errorf("status after a fixed build: %+v", st)
	}
}

func contractAddresses(t *testing.T, ctx context.Context, b contractBackend) {
	_, err := b.Create(ctx, "ct2", ops.CreateOptions{})
	must(t, "create ct2", err)
	must(t, "build ct2", b.WaitBuilt(ctx, "ct2"))
	other, _ := b.Status("ct2")
	wantErr(t, "an invalid address", b.SetAddresses(ctx, "ct1", "", "300.1.1.1"), ops.ErrInvalid)
	wantErr(t, "another container's address", b.SetAddresses(ctx, "ct1", "", other.LocalAddress), ops.ErrAddressInUse)
	must(t, "a free address", b.SetAddresses(ctx, "ct1", "", "10.233.250.2"))
	if st, _ := b.Status("ct1"); st.LocalAddress != "10.233.250.2" {
		t.Errorf("address after the change: %s", st.LocalAddress)
	}
	must(t, "autostart", b.SetAutostart(ctx, "ct1", true))
	if st, _ := b.Status("ct1"); !st.Autostart {
		t.Error("autostart not set")
	}
	must(t, "destroy ct2", b.Destroy(ctx, "ct2"))
}

// contractPorts leaves ct1 forwarding tcp:8080:80, so that the units' start makes the
// forwards (the real Manager's template does, in the test host).
func contractPorts(t *testing.T, ctx context.Context, b contractBackend, one <-chan ops.Event) {
	want := []string{"tcp:8080:80", "udp:5353", "2222:22"}
	must(t, "set ports", b.SetPorts(ctx, "ct1", want))
	nextEvents(t, one, "ct1", "ports tcp:8080:80,udp:5353,2222:22")
	if got, err := b.Ports("ct1"); err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ports after a write: %q %v, want %q", got, err, want)
	}
	for _, bad := range [][]string{{"0"}, {"65536"}, {"sctp:80"}, {"tcp:"}, {"80:"}, {"-1"}, {"8080:80:1"},
		{"TCP:80"}, {"80,81"}, {" 80"}, {"tcp:80", "80:81"}} {
		err := b.SetPorts(ctx, "ct1", bad)
		wantErr(t, fmt.Sprintf("forwards %q", bad), err, ops.ErrInvalid)
		if st, _ := b.Status("ct1"); st.Error == "" {
			t.Errorf("forwards %q refused, but status has no error", bad)
		}
	}
	if got, _ := b.Ports("ct1"); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ports after refused writes: %q, want %q", got, want)
	}
	_, err := b.Create(ctx, "ct3", ops.CreateOptions{})
	must(t, "create ct3", err)
	must(t, "build ct3", b.WaitBuilt(ctx, "ct3"))
	wantErr(t, "a host port ct1 forwards", b.SetPorts(ctx, "ct3", []string{"9000", "8080:8080"}), ops.ErrAddressInUse)
	wantErr(t, "checked, a host port ct1 forwards", b.CheckPorts("ct3", []string{"8080"}), ops.ErrAddressInUse)
	wantErr(t, "checked, malformed", b.CheckPorts("ct3", []string{"x"}), ops.ErrInvalid)
	must(t, "checked, the same port for udp", b.CheckPorts("ct3", []string{"udp:8080"}))
	if got, _ := b.Ports("ct3"); len(got) != 0 {
		t.Errorf("a check wrote the forwards: %q", got)
	}
	must(t, "the same port for udp", b.SetPorts(ctx, "ct3", []string{"udp:8080"}))
	must(t, "clear", b.SetPorts(ctx, "ct3", nil))
	if got, _ := b.Ports("ct3"); len(got) != 0 {
		t.Errorf("ports after clearing: %q", got)
	}
	must(t, "one forward for the start", b.SetPorts(ctx, "ct1", []string{"tcp:8080:80"}))
	must(t, "destroy ct3", b.Destroy(ctx, "ct3"))
}

func contractUnits(t *testing.T, ctx context.Context, b contractBackend) {
	wantErr(t, "reload of a stopped container", b.Reload(ctx, "ct1"), ops.ErrInvalid)
	must(t, "start", b.Start(ctx, "ct1"))
	if st, _ := b.State("ct1"); !st.Running() {
		t.Errorf("state after start: %s", st)
	}
	must(t, "start of a running container", b.Start(ctx, "ct1"))
	contractRunningStats(t, ctx, b)
	wantErr(t, "destroy while running", b.Destroy(ctx, "ct1"), ops.ErrBusy)
	wantErr(t, "address change while running", b.SetAddresses(ctx, "ct1", "", "10.233.249.2"), ops.ErrBusy)
	wantErr(t, "port change while running", b.SetPorts(ctx, "ct1", nil), ops.ErrBusy)
	wantErr(t, "port check while running", b.CheckPorts("ct1", nil), ops.ErrBusy)
	must(t, "reload", b.Reload(ctx, "ct1"))
	must(t, "stop", b.Stop(ctx, "ct1"))
	if st, _ := b.State("ct1"); st != ops.StateStopped {
		t.Errorf("state after stop: %s", st)
	}
}

func contractDeclarative(t *testing.T, ctx context.Context, b contractBackend, name string) {
	if st, err := b.Status(name); err != nil || !st.Declarative {
		t.Fatalf("declarative container: %+v %v", st, err)
	}
	wantErr(t, "config", b.SetConfig(ctx, name, goodConfig(name)), ops.ErrDeclarative)
	wantErr(t, "address", b.SetAddresses(ctx, name, "", "10.233.248.2"), ops.ErrDeclarative)
	wantErr(t, "autostart", b.SetAutostart(ctx, name, true), ops.ErrDeclarative)
	wantErr(t, "ports", b.SetPorts(ctx, name, []string{"8080"}), ops.ErrDeclarative)
	wantErr(t, "limits", b.SetLimits(ctx, name, map[string]string{"memory.max": "1G"}), ops.ErrDeclarative)
	wantErr(t, "destroy", b.Destroy(ctx, name), ops.ErrDeclarative)
}

func contractDestroy(t *testing.T, ctx context.Context, b contractBackend, one <-chan ops.Event) {
	must(t, "destroy", b.Destroy(ctx, "ct1"))
	nextEvents(t, one, "ct1", "container removed")
	if b.Exists("ct1") {
		t.Error("destroyed, yet listed")
	}
	if _, err := b.State("ct1"); !errors.Is(err, ops.ErrNotFound) {
		t.Errorf("state of a destroyed container: %v", err)
	}
	wantErr(t, "destroy again", b.Destroy(ctx, "ct1"), ops.ErrNotFound)
}

// After create (its template), the good text, the broken one (no generation) and the
// good one again (the same system: nix makes no new generation), ct1 has two
// generations, the last current.
func contractGenerations(t *testing.T, ctx context.Context, b contractBackend) {
	gens, err := b.Generations("ct1")
	must(t, "generations", err)
	if len(gens) != 2 || !gens[1].Current || !gens[1].HasConfig || !gens[0].HasConfig {
		t.Fatalf("generations: %+v", gens)
	}
	first, last := gens[0].Number, gens[1].Number
	if text, _ := b.GenerationConfig("ct1", last); string(text) != string(goodConfig("ct1")) {
		t.Errorf("text of the current generation:\n%s", text)
	}
	must(t, "switch to the first generation", b.SwitchGeneration(ctx, "ct1", first))
	if text, _ := b.ReadConfig("ct1"); string(text) != ops.DefaultConfig("ct1", "") {
		t.Errorf("config.nix after the switch:\n%s", text)
	}
	if st, _ := b.Status("ct1"); st.Generation != first {
		t.Errorf("generation after the switch: %d", st.Generation)
	}
	wantErr(t, "broken config", b.SetConfig(ctx, "ct1", brokenConfig("ct1")), ops.ErrBuildFailed)
	must(t, "switch back to the last generation", b.SwitchGeneration(ctx, "ct1", last))
	if text, _ := b.RejectedConfig("ct1"); string(text) != string(brokenConfig("ct1")) {
		t.Errorf("the text the switch replaced was not kept:\n%s", text)
	}
	if st, _ := b.Status("ct1"); st.Notice == "" {
		t.Error("the status does not say where the replaced text is")
	}
	wantErr(t, "switch to a generation that is not", b.SwitchGeneration(ctx, "ct1", 999), ops.ErrInvalid)
	wantErr(t, "delete the current generation", b.DeleteGeneration(ctx, "ct1", last), ops.ErrBusy)
	must(t, "delete the first generation", b.DeleteGeneration(ctx, "ct1", first))
	if gens, _ := b.Generations("ct1"); len(gens) != 1 || gens[0].Number != last {
		t.Errorf("generations after a delete: %+v", gens)
	}
}
