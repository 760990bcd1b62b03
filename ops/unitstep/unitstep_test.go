package unitstep

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nixcfs/ops"
)

func TestNspawnArgsFollowNixOS(t *testing.T) {
	dir := t.TempDir()
	l := ops.NewLayout()
	l.ProfileDir = filepath.Join(dir, "profiles")
	sys := filepath.Join(dir, "store", "sys")
	os.MkdirAll(sys, 0o755)
	os.WriteFile(filepath.Join(sys, "init"), nil, 0o755)
	os.MkdirAll(l.ProfilePath("foo"), 0o755)
	os.Symlink(sys, l.SystemLink("foo"))
	conf := ops.ParseConf([]byte("PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.1.1\nLOCAL_ADDRESS=10.233.1.2\nHOST_PORT=8080:80,tcp:2222:22\n"))
	args, err := NspawnArgs(l, "foo", conf)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	for _, want := range []string{"--keep-unit", "-M foo", "--notify-ready=yes", "--kill-signal=SIGRTMIN+3",
		"--bind-ro=/nix/store", "--network-namespace-path=/run/netns/nixcfs-foo",
		"--setenv=HOST_PORT=8080:80,tcp:2222:22", "--setenv=LOCAL_ADDRESS=10.233.1.2",
		"--bind=" + l.ProfilePath("foo") + ":/nix/var/nix/profiles"} {
		if !strings.Contains(joined, want) {
			t.Errorf("nspawn args lack %q: %s", want, joined)
		}
	}
	if strings.Contains(joined, "--port") {
		t.Errorf("nspawn refuses --port with --network-namespace-path: %s", joined)
	}
	if last := args[len(args)-1]; last != filepath.Join(sys, "init") {
		t.Errorf("init = %s, want the resolved store path", last)
	}
	if _, err := NspawnArgs(l, "bar", conf); !errors.Is(err, ops.ErrNotBuilt) {
		t.Errorf("unbuilt container: %v", err)
	}
}
