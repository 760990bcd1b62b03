package ops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"nixcfs/testhost"
)

// Pure: picking addresses with all 254 pairs but one taken (254 conf files read).
func BenchmarkPickAddressFullRange(b *testing.B) {
	dir := b.TempDir()
	for n := 1; n < 254; n++ {
		c := newConf(fmt.Sprintf("10.233.%d.1", n), fmt.Sprintf("10.233.%d.2", n), "", "", false)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("c%d.conf", n)), c.Bytes(), 0o644)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		used, err := usedAddresses(dir)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := nextFreePair(used); err != nil {
			b.Fatal(err)
		}
	}
}

func benchManager(b *testing.B) *Manager {
	paths := testhost.Require(b)
	m, err := New(context.Background(), Options{Layout: NewLayout(), NixOSPath: paths.Guest,
		NixcfsBin: paths.Bin, Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// Status is answered from memory: no D-Bus round trip per call.
func BenchmarkStatus(b *testing.B) {
	m := benchManager(b)
	ctx := context.Background()
	if _, err := m.Create(ctx, "bstatus", CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Destroy(ctx, "bstatus") })
	m.WaitBuilt(ctx, "bstatus")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Status("bstatus"); err != nil {
			b.Fatal(err)
		}
	}
}

// Start (until the guest reported ready) and stop of one container.
func BenchmarkStartStop(b *testing.B) {
	m := benchManager(b)
	ctx := context.Background()
	if _, err := m.Create(ctx, "bstart", CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Terminate(ctx, "bstart"); m.Destroy(ctx, "bstart") })
	m.WaitBuilt(ctx, "bstart")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.Start(ctx, "bstart"); err != nil {
			b.Fatal(err)
		}
		if err := m.Stop(ctx, "bstart"); err != nil {
			b.Fatal(err)
		}
	}
}

// Create with the default configuration, build the guest system, destroy.
func BenchmarkCreateBuildDestroy(b *testing.B) {
	m := benchManager(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if _, err := m.Create(ctx, "bcreate", CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		if err := m.WaitBuilt(ctx, "bcreate"); err != nil {
			b.Fatal(err)
		}
		if err := m.Destroy(ctx, "bcreate"); err != nil {
			b.Fatal(err)
		}
	}
}

// Start of a running container: a no-op job for systemd, what a retried write costs.
func BenchmarkStartWhileRunning(b *testing.B) {
	m := benchManager(b)
	ctx := context.Background()
	if _, err := m.Create(ctx, "brun", CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Terminate(ctx, "brun"); m.Destroy(ctx, "brun") })
	if err := m.Start(ctx, "brun"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.Start(ctx, "brun"); err != nil {
			b.Fatal(err)
		}
	}
}
