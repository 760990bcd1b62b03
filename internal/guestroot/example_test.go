package guestroot_test

import (
	"context"
	"fmt"
	"io"
	"os"

	"nixcfs/internal/guestroot"
)

// What a container's prestart does to its root tree, as NixOS's preStartScript does.
func ExampleRoot() {
	r, err := guestroot.Open("/var/lib/nixos-containers/foo")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	for _, d := range []string{"etc", "var/lib", "usr"} {
		if err := r.MkdirAll(d, 0o755); err != nil {
			fmt.Println(err)
			return
		}
	}
	for _, f := range []string{"etc/os-release", "etc/machine-id"} {
		if _, err := r.CreateIfMissing(f, nil, 0o644); err != nil {
			fmt.Println(err)
			return
		}
	}
	if resolv, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		// Replaces whatever the guest left there, a symlink included.
		if err := r.WriteFile("etc/resolv.conf", resolv, 0o644); err != nil {
			fmt.Println(err)
		}
	}
}

// What nixos-container show-host-key reads.
func ExampleRoot_ReadFile() {
	r, err := guestroot.Open("/var/lib/nixos-containers/foo")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	key, err := r.ReadFile("etc/ssh/ssh_host_ed25519_key.pub", 64<<10)
	if err != nil {
		fmt.Println(err) // e.g. read etc/ssh/ssh_host_ed25519_key.pub: a symlink or .. leads out of the container's root tree
		return
	}
	os.Stdout.Write(key)
}

// A request to the guest init's control socket of a running container whose leader
// is PID 4242.
func ExampleDialUnix() {
	conn, err := guestroot.DialUnix(context.Background(), "/proc/4242/root", "/run/nixcfs/init.sock")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	io.WriteString(conn, "status\n")
	answer, _ := io.ReadAll(conn)
	fmt.Print(string(answer))
}

// What a container's destroy does with its root tree.
func ExampleRemoveTree() {
	if err := guestroot.RemoveTree("/var/lib/nixos-containers/foo"); err != nil {
		fmt.Println(err)
	}
}
