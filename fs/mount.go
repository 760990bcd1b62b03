package fs

import (
	"context"
	"os"
	"path/filepath"
	"strconv"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Options configure the filesystem.
type Options struct {
	AllowOther bool // other users may read (never write: files are root's, 0644)
	Debug      bool // log every FUSE request
	Log        zerolog.Logger
}

// Mount serves the containers of b at mountpoint until it is unmounted
// (server.Unmount, or umount from outside).
func Mount(mountpoint string, b Backend, o Options) (*fuse.Server, error) {
	return mountRoot(mountpoint, New(b, o), o)
}

func mountRoot(mountpoint string, root *Root, o Options) (*fuse.Server, error) {
	server, err := gofs.Mount(mountpoint, root, &gofs.Options{
		// Each Lookup sets its name's entry timeout (entryTimeout, or freshInode); a
		// global one would override the nodes' zeros. Attributes are not cached (nil
		// AttrTimeout): dynamic files need a live size.
		MountOptions: fuse.MountOptions{
			FsName:        "nixcfs",
			Name:          "nixcfs",
			DirectMount:   true, // as root, without fusermount (NixOS units may lack it)
			AllowOther:    o.AllowOther,
			Options:       []string{"default_permissions"}, // the kernel checks modes
			DisableXAttrs: true,                            // no getxattr before each write
			Debug:         o.Debug,
		},
	})
	if err != nil {
		return nil, err
	}
	closeFuseOnExec()
	ctx, stop := context.WithCancel(context.Background())
	go root.Follow(ctx)
	go func() {
		server.Wait()
		stop()
	}()
	return server, nil
}

// closeFuseOnExec keeps /dev/fuse (opened by go-fuse without O_CLOEXEC) out of
// journalctl: a child holding it would keep a dead mount alive.
func closeFuseOnExec() {
	fds, _ := filepath.Glob("/proc/self/fd/*")
	for _, p := range fds {
		if target, err := os.Readlink(p); err == nil && target == "/dev/fuse" {
			if fd, err := strconv.Atoi(filepath.Base(p)); err == nil {
				unix.CloseOnExec(fd)
			}
		}
	}
}
