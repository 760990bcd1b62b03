package fs

// Benchmarks of the real mount (nixcfs mount over systemd, nix, nspawn), inside the
// test host (make bench): what a shell pays per stat, read and control write.

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"nixcfs/testhost"
)

// realMount runs `nixcfs mount` (a process of its own, as in use: a FUSE client and
// server in one Go process slow each other down) with one running container, "bench".
func realMount(b *testing.B) string {
	paths := testhost.Require(b)
	mnt := b.TempDir()
	cmd := exec.Command(paths.Bin, "mount", "--nixos-path="+paths.Guest, mnt)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		os.WriteFile(filepath.Join(mnt, "bench", "state"), []byte("terminate\n"), 0)
		os.Remove(filepath.Join(mnt, "bench"))
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(mnt, "events")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("nixcfs mount did not come up")
		}
	}
	if err := os.Mkdir(filepath.Join(mnt, "bench"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "bench", "state"), []byte("start\n"), 0); err != nil {
		b.Fatal(err)
	}
	return mnt
}

func BenchmarkRealStatStatus(b *testing.B) {
	p := filepath.Join(realMount(b), "bench", "status")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := os.Stat(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRealReadStatus(b *testing.B) {
	p := filepath.Join(realMount(b), "bench", "status")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// "echo start > state" on a running container: open, truncate, write, close.
func BenchmarkRealWriteStartWhileRunning(b *testing.B) {
	p := filepath.Join(realMount(b), "bench", "state")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := os.WriteFile(p, []byte("start\n"), 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRealListRoot(b *testing.B) {
	mnt := realMount(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := os.ReadDir(mnt); err != nil {
			b.Fatal(err)
		}
	}
}
