package nixos

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"nixcfs/testhost"
)

// Port forwards under NixOS's template, where systemd-nspawn's --port forwards (its
// start script passes HOST_PORT's forwards): once started, a host address that is not
// the container's reaches the guest's service on the host port, and once stopped,
// nothing does.
func TestNixOSTemplatePorts(t *testing.T) {
	paths := testhost.Require(t)
	const name, hostAddr = "nxpf", "192.0.2.7"
	install(t, paths.Bin)
	t.Cleanup(func() {
		nixcfs(t, "terminate", name)
		nixcfs(t, "destroy", name)
	})
	if out, err := exec.Command("ip", "addr", "add", hostAddr+"/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add %s dev lo: %v\n%s", hostAddr, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "addr", "del", hostAddr+"/32", "dev", "lo").Run() })

	mustNixcfs(t, "create", name, "--port", "tcp:8082:80",
		"--config", `services.hello = { enable = true; message = "forwarded by nspawn"; };`)
	if got := strings.TrimSpace(mustNixcfs(t, "ports", name).stdout); got != "tcp:8082:80" {
		t.Errorf("nixcfs ports %s: %q", name, got)
	}
	mustNixcfs(t, "start", name)
	checkStatus(t, name, "active (running)")
	if args := mainArgs(t, name); !strings.Contains(args, "\x00--port=tcp:8082:80\x00") {
		t.Errorf("nspawn was not given the forward: %q", args)
	}

	// nspawn adds its rules once it sees the container's address, which container-init
	// sets just before the guest starts: the first answer may come a moment after start.
	var st struct {
		HostAddress string `json:"host_address"`
	}
	if err := json.Unmarshal([]byte(mustNixcfs(t, "status", name, "--json").stdout), &st); err != nil || st.HostAddress == "" {
		t.Fatalf("nixcfs status %s --json: host_address %q, %v", name, st.HostAddress, err)
	}
	for _, addr := range []string{hostAddr, st.HostAddress} {
		if got, err := getWithin(addr+":8082", 10*time.Second); err != nil || got != "forwarded by nspawn" {
			t.Errorf("GET %s:8082: %q, %v; want the guest's answer through the forward\n%s", addr, got, err, nftRules())
		}
	}

	mustNixcfs(t, "stop", name)
	if got, err := get(hostAddr + ":8082"); err == nil {
		t.Errorf("GET %s:8082 after stop: %q, want no answer\n%s", hostAddr, got, nftRules())
	}
}

// get is one GET of http://addr/, its body trimmed.
func get(addr string) (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(body)), err
}

// getWithin retries get until it answers or timeout has passed.
func getWithin(addr string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		got, err := get(addr)
		if err == nil || time.Now().After(deadline) {
			return got, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mainArgs is the unit's main process's command line, NUL-separated.
func mainArgs(t *testing.T, name string) string {
	t.Helper()
	return "\x00" + mainCmdline(t, name)
}

// nftRules is the host's nftables ruleset, for failure messages.
func nftRules() string {
	out, _ := exec.Command("nft", "list", "ruleset").CombinedOutput()
	return string(out)
}
