package ops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want error
	}{
		{"foo", nil}, {"a_b-C9", nil}, {"elevenchars", nil},
		{"twelvechars_", ErrNameTooLong}, {"", ErrInvalidName}, {"a.b", ErrInvalidName},
		{"a b", ErrInvalidName}, {"../x", ErrInvalidName}, {"ünï", ErrInvalidName},
	} {
		if err := ValidateName(tc.name); !errors.Is(err, tc.want) {
			t.Errorf("ValidateName(%q) = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestConfRoundTrip(t *testing.T) {
	in := "# made by hand\nPRIVATE_NETWORK=1\nHOST_ADDRESS=\"10.233.4.1\"\nLOCAL_ADDRESS=10.233.4.2\nEXTRA_NSPAWN_FLAGS='--foo'\nAUTO_START=0\n"
	c := ParseConf([]byte(in))
	if got := c.Get("HOST_ADDRESS"); got != "10.233.4.1" {
		t.Errorf("quoted value: got %q", got)
	}
	if got := c.Get("EXTRA_NSPAWN_FLAGS"); got != "--foo" {
		t.Errorf("single-quoted value: got %q", got)
	}
	if got := c.Get("HOST_BRIDGE"); got != "" {
		t.Errorf("absent key: got %q", got)
	}
	c.Set("AUTO_START", "1")
	c.Set("HOST_PORT", "8080")
	want := strings.Replace(in, "AUTO_START=0", "AUTO_START=1", 1) + "HOST_PORT=8080\n"
	if got := string(c.Bytes()); got != want {
		t.Errorf("rewrite lost something:\n%s\nwant\n%s", got, want)
	}
}

func TestNewConfIsNixosContainers(t *testing.T) {
	got := string(newConf("10.233.1.1", "10.233.1.2", "", "", false).Bytes())
	want := "PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.1.1\nLOCAL_ADDRESS=10.233.1.2\nHOST_BRIDGE=\nHOST_PORT=\nAUTO_START=0\n"
	if got != want {
		t.Errorf("conf:\n%s\nwant\n%s", got, want)
	}
}

func TestDefaultConfigIsNixosContainersTemplate(t *testing.T) {
	got := DefaultConfig("foo", "")
	want := "{ config, lib, pkgs, ... }:\n\nwith lib;\n\n{ boot.isContainer = true;\n  networking.hostName = mkDefault \"foo\";\n  networking.useDHCP = false;\n  \n}\n"
	if got != want {
		t.Errorf("template:\n%q\nwant\n%q", got, want)
	}
	if got := DefaultConfig("foo", "imports = [ /x.nix ];"); !strings.Contains(got, "  imports = [ /x.nix ];\n}") {
		t.Errorf("extra config not spliced: %q", got)
	}
}

func TestAddressPicking(t *testing.T) {
	used := map[string]string{"10.233.1.1": "a", "10.233.2.2": "b", "10.233.4.1": "c"}
	h, l, err := nextFreePair(used)
	if err != nil || h != "10.233.3.1" || l != "10.233.3.2" {
		t.Errorf("nextFreePair = %s %s %v, want 10.233.3.1 10.233.3.2", h, l, err)
	}
	full := map[string]string{}
	for n := 1; n < 255; n++ {
		full["10.233."+itoa(n)+".2"] = "x"
	}
	if _, _, err := nextFreePair(full); !errors.Is(err, ErrNoAddress) {
		t.Errorf("full range: %v, want ErrNoAddress", err)
	}
	for _, bad := range []string{"", "300.1.1.1", "::1", "10.0.0.1/", "foo", "10.0.0.1/33", "10.0.0.1 "} {
		if err := ValidateAddress(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateAddress(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	for _, good := range []string{"10.0.0.1", "192.168.7.3/24"} {
		if err := ValidateAddress(good); err != nil {
			t.Errorf("ValidateAddress(%q) = %v", good, err)
		}
	}
	if err := checkAddressesFree(used, "z", "10.233.2.2/24"); !errors.Is(err, ErrAddressInUse) {
		t.Errorf("used address with prefix: %v", err)
	}
	if err := checkAddressesFree(used, "b", "10.233.2.2"); err != nil {
		t.Errorf("own address: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// The address lock is a real flock on a temp file: parallel pickers that write their
// conf under it never collide, which is what 20 parallel mkdirs rely on.
func TestAddressLockSerialisesPickers(t *testing.T) {
	dir := t.TempDir()
	lockFile := filepath.Join(dir, "lock")
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			lk, err := lockAddresses(context.Background(), lockFile)
			if err != nil {
				t.Error(err)
				return
			}
			defer lk.unlock()
			used, _ := usedAddresses(dir)
			h, l, err := nextFreePair(used)
			if err != nil {
				t.Error(err)
				return
			}
			c := newConf(h, l, "", "", false)
			if err := writeFileAtomic(filepath.Join(dir, "c"+itoa(i)+".conf"), c.Bytes(), 0o644); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	used, _ := usedAddresses(dir)
	if len(used) != 40 {
		t.Errorf("20 pickers used %d distinct addresses, want 40: %v", len(used), used)
	}
}

// A waiter for the address lock gives up when its context ends.
func TestAddressLockHonoursContext(t *testing.T) {
	lockFile := filepath.Join(t.TempDir(), "lock")
	held, err := lockAddresses(context.Background(), lockFile)
	if err != nil {
		t.Fatal(err)
	}
	defer held.unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := lockAddresses(ctx, lockFile); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting for a held lock: %v, want the context's error", err)
	}
}

func TestWriteFileAtomicLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.conf")
	for _, text := range []string{"one\n", "two\n"} {
		if err := writeFileAtomic(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); string(got) != text {
			t.Errorf("got %q want %q", got, text)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("leftovers: %v", entries)
	}
}

func TestDeclarativeConf(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "a.conf")
	os.WriteFile(plain, []byte("PRIVATE_NETWORK=1\n"), 0o644)
	link := filepath.Join(dir, "b.conf")
	os.Symlink(plain, link)
	if isDeclarative(plain) {
		t.Error("a writable conf file is imperative")
	}
	if !isDeclarative(link) {
		t.Error("a conf symlink (into /etc/static) is declarative")
	}
}

func TestBuildErrorReadsNixError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	os.WriteFile(p, []byte("$ nix-env ...\nerror: The option `foo.bar' does not exist. Definition values:\n       - In `/x': true\n"), 0o644)
	got := buildError(p, ErrBuildFailed)
	if !strings.Contains(got, "The option `foo.bar' does not exist.") {
		t.Errorf("buildError = %q", got)
	}
}

func TestUnitTemplate(t *testing.T) {
	text := unitTemplate("/usr/bin/nixcfs", NewLayout())
	for _, want := range []string{"Type=notify", "NotifyAccess=all", "KillMode=mixed",
		"EnvironmentFile=-/etc/nixos-containers/%i.conf", "ExecStart=/usr/bin/nixcfs unit start",
		"ExecReload=/usr/bin/nixcfs unit reload"} {
		if !strings.Contains(text, want) {
			t.Errorf("template lacks %q", want)
		}
	}
	if got := templateBinary(text); got != "/usr/bin/nixcfs" {
		t.Errorf("templateBinary = %q", got)
	}
	if !strings.Contains(text, "EnvironmentFile=-/etc/containers/%i.conf") || strings.Contains(text, "--conf-dir") {
		t.Errorf("one template serves both of nixos-container's layouts:\n%s", text)
	}
	custom := NewLayout()
	custom.ConfDir = "/srv/confs"
	if text := unitTemplate("/x", custom); !strings.Contains(text, "--conf-dir=/srv/confs") || !strings.Contains(text, "EnvironmentFile=-/srv/confs/%i.conf") {
		t.Errorf("custom directories are passed on:\n%s", text)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "container@.service"), []byte(text), 0o644)
	if p := hostTemplate([]string{dir}); p != "" {
		t.Errorf("our own template taken for the host's: %s", p)
	}
	os.WriteFile(filepath.Join(dir, "container@.service"), []byte("[Unit]\n"), 0o644)
	if p := hostTemplate([]string{dir}); p == "" {
		t.Error("host template not found")
	}
}

func TestAddressBounds(t *testing.T) {
	for _, bad := range []string{"0.0.0.0", "255.255.255.255", "127.0.0.1", "127.1.2.3/8", "224.0.0.1",
		"239.255.255.250", "169.254.1.1", "10.0.0.1/7", "1.2.3.4/0", "10.0.0.255/24", "10.233.1.3/31x"} {
		if err := ValidateAddress(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateAddress(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	for _, good := range []string{"10.0.0.1/8", "10.0.0.254/24", "192.168.1.1/31", "192.168.1.1/32", "100.64.0.1"} {
		if err := ValidateAddress(good); err != nil {
			t.Errorf("ValidateAddress(%q) = %v", good, err)
		}
	}
	if err := ValidateName("events"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("the name of the mount's events file: %v", err)
	}
}
