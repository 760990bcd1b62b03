package nixos

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"nixcfs/testhost"
)

// Limits and stats under NixOS's template, with the command line: the same properties
// of the same unit (in machine.slice here), kept, applied, counted, and removed with
// the container.
func TestNixOSTemplateLimitsAndStats(t *testing.T) {
	paths := testhost.Require(t)
	const name = "nxlim"
	install(t, paths.Bin)
	t.Cleanup(func() {
		nixcfs(t, "terminate", name)
		nixcfs(t, "destroy", name)
	})
	mustNixcfs(t, "create", name, "--config", `services.hello = { enable = true; message = "limited by NixOS's template"; };`)
	if r := nixcfs(t, "limits", name, "memory.max=64M", "pids.max=nope"); r.code == 0 || !strings.Contains(r.stderr, "invalid value") {
		t.Errorf("a bad value: exit %d, %q", r.code, r.stderr)
	}
	mustNixcfs(t, "limits", name, "memory.max=64M", "pids.max=40")
	mustNixcfs(t, "start", name)
	if got := unitProperty(t, name, "MemoryMax") + " " + unitProperty(t, name, "TasksMax"); got != "67108864 40" {
		t.Errorf("systemctl show: MemoryMax TasksMax %s, want 67108864 40", got)
	}
	if r := nixcfs(t, "run", name, "--", "dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"); r.code != 137 {
		t.Errorf("a 128M allocation under memory.max 64M: exit %d, want 137 (killed)\n%s", r.code, r.stderr)
	}

	addr := strings.TrimSpace(mustNixcfs(t, "show-ip", name).stdout)
	before := stats(t, name)
	if got := testhost.Hello(t, addr); got != "limited by NixOS's template" {
		t.Errorf("hello: %q", got)
	}
	after := stats(t, name)
	if after["tasks"] == 0 || after["memory_current"] == 0 || after["tasks"] > 40 ||
		after["net_rx_bytes"] <= before["net_rx_bytes"] || after["net_tx_bytes"] <= before["net_tx_bytes"] {
		t.Errorf("stats around an HTTP request: %v, then %v", before, after)
	}

	mustNixcfs(t, "stop", name)
	if s := stats(t, name); s["tasks"] != 0 || s["uptime_s"] != 0 {
		t.Errorf("stats of the stopped container: %v", s)
	}
	mustNixcfs(t, "destroy", name)
	if _, err := os.Stat("/etc/systemd/system.control/container@" + name + ".service.d"); !os.IsNotExist(err) {
		t.Errorf("the limits' drop-in outlived the container: %v", err)
	}
}

func stats(t *testing.T, name string) map[string]uint64 {
	t.Helper()
	var s map[string]uint64
	if err := json.Unmarshal([]byte(mustNixcfs(t, "stats", name, "--json").stdout), &s); err != nil {
		t.Fatal(err)
	}
	return s
}
