package unitstep

import (
	"errors"
	"testing"

	"github.com/google/nftables"

	"nixcfs/ops"
	"nixcfs/testhost"
)

// tableRules counts the rules of each chain of the container's table; nil if it has none.
func tableRules(t *testing.T, name string) map[string]int {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	table, err := ownTable(c, name)
	if err != nil || table == nil {
		if err != nil {
			t.Fatal(err)
		}
		return nil
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]int{}
	for _, ch := range chains {
		if ch.Table.Name == table.Name {
			rs, err := c.GetRules(table, ch)
			if err != nil {
				t.Fatal(err)
			}
			rules[ch.Name] = len(rs)
		}
	}
	return rules
}

// The forwards in the test host's kernel: one table per container, made whole, made
// again over a crash's leftover, and gone when the forwards or the container are.
func TestForwardsTable(t *testing.T) {
	testhost.Require(t)
	const name = "fwtest"
	t.Cleanup(func() { removeForwards(name) })
	conf := ops.ParseConf([]byte("PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.77.1\nLOCAL_ADDRESS=10.233.77.2/24\nHOST_PORT=tcp:8080:80,udp:5353\n"))
	if err := setupForwards(name, conf); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"prerouting": 2, "output": 2}
	if got := tableRules(t, name); len(got) != 2 || got["prerouting"] != 2 || got["output"] != 2 {
		t.Errorf("rules %v, want %v", got, want)
	}
	// A prestart after a crash finds the table of the last run, and replaces it.
	conf.Set("HOST_PORT", "9000")
	if err := setupForwards(name, conf); err != nil {
		t.Fatal(err)
	}
	if got := tableRules(t, name); got["prerouting"] != 1 || got["output"] != 1 {
		t.Errorf("rules after a second prestart: %v", got)
	}
	conf.Set("HOST_PORT", "")
	if err := setupForwards(name, conf); err != nil {
		t.Fatal(err)
	}
	if got := tableRules(t, name); got != nil {
		t.Errorf("forwards cleared, yet rules: %v", got)
	}
	conf.Set("HOST_PORT", "8080")
	setupForwards(name, conf)
	if err := Poststop(name); err != nil {
		t.Fatal(err)
	}
	if got := tableRules(t, name); got != nil {
		t.Errorf("after poststop: %v", got)
	}
	if err := Poststop(name); err != nil {
		t.Errorf("poststop with nothing to remove: %v", err)
	}
}

// What nspawn refuses, prestart refuses, before it installs anything.
func TestForwardsRefused(t *testing.T) {
	testhost.Require(t)
	for _, text := range []string{
		"PRIVATE_NETWORK=1\nLOCAL_ADDRESS=10.233.77.2\nHOST_PORT=80,80\n",
		"PRIVATE_NETWORK=1\nLOCAL_ADDRESS=10.233.77.2\nHOST_PORT=http\n",
		"LOCAL_ADDRESS=10.233.77.2\nHOST_PORT=80\n",
		"PRIVATE_NETWORK=1\nHOST_BRIDGE=br0\nHOST_PORT=80\n",
	} {
		if err := setupForwards("fwbad", ops.ParseConf([]byte(text))); !errors.Is(err, ops.ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", text, err)
		}
		if got := tableRules(t, "fwbad"); got != nil {
			t.Errorf("%q: refused, yet rules %v", text, got)
		}
	}
}
