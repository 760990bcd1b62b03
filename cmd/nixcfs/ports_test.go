package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// nixos-container's --port and nixcfs's ports verb on the same HOST_PORT.
func TestCLIPorts(t *testing.T) {
	requireTestHost(t)
	t.Cleanup(func() {
		nixcfs(t, "", "destroy", "clipt")
		nixcfs(t, "", "destroy", "clipt2")
	})
	must(t, "create", "clipt", "--port", "8080:80")
	conf := func() string {
		data, _ := os.ReadFile("/etc/nixos-containers/clipt.conf")
		return string(data)
	}
	if !strings.Contains(conf(), "\nHOST_PORT=8080:80\n") {
		t.Errorf("create --port: conf\n%s", conf())
	}
	if r := must(t, "ports", "clipt"); r.stdout != "8080:80\n" {
		t.Errorf("ports: %q", r.stdout)
	}
	must(t, "ports", "clipt", "--set", "tcp:8080:80, udp:5353")
	if !strings.Contains(conf(), "\nHOST_PORT=tcp:8080:80,udp:5353\n") {
		t.Errorf("ports --set: conf\n%s", conf())
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(must(t, "ports", "clipt", "--json").stdout), &got); err != nil || len(got) != 2 ||
		got[1]["spec"] != "udp:5353" || got[1]["protocol"] != "udp" || got[1]["host_port"] != 5353.0 || got[1]["guest_port"] != 5353.0 {
		t.Errorf("ports --json: %v %v", err, got)
	}
	for _, bad := range [][]string{{"ports", "clipt", "--set", "80,80"}, {"ports", "clipt", "--set", "http"},
		{"create", "clipt2", "--port", "0"}} {
		if r := nixcfs(t, "", bad...); r.code != 1 || !strings.Contains(r.stderr, "invalid value") {
			t.Errorf("nixcfs %q: exit %d, %q", bad, r.code, r.stderr)
		}
	}
	r := nixcfs(t, "", "create", "clipt2", "--port", "tcp:8080")
	if r.code != 1 || !strings.Contains(r.stderr, "tcp port 8080 is forwarded to clipt") {
		t.Errorf("create with a forwarded port: exit %d, %q", r.code, r.stderr)
	}
	if r := must(t, "ports", "clipt"); r.stdout != "tcp:8080:80\nudp:5353\n" {
		t.Errorf("refused sets changed the forwards: %q", r.stdout)
	}
	must(t, "ports", "clipt", "--set", "")
	if r := must(t, "ports", "clipt", "--json"); strings.TrimSpace(r.stdout) != "[]" || !strings.Contains(conf(), "\nHOST_PORT=\n") {
		t.Errorf("cleared: %q\n%s", r.stdout, conf())
	}
}
