package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"nixcfs/ops"
)

// addressFile is NAME/address (the container's IPv4 address) or NAME/host-address
// (the host side of the veth pair). A new address is taken while the container is
// stopped: EBUSY while it runs, EINVAL for no IPv4 address, EADDRINUSE when another
// container has it.
type addressFile struct {
	valueFile
	host bool
}

func newAddressFile(c *containerRef, host bool) *addressFile {
	file := "address"
	if host {
		file = "host-address"
	}
	n := &addressFile{valueFile: valueFile{c: c, name: file, mode: modeRW}, host: host}
	n.value = func() (string, error) {
		st, err := c.b.Status(c.name)
		if host {
			return st.HostAddress + "\n", err
		}
		return st.LocalAddress + "\n", err
	}
	return n
}

var _ = (gofs.NodeWriter)((*addressFile)(nil))

func (n *addressFile) Write(ctx context.Context, f gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := n.writableAt(f, data, off); errno != 0 {
		return 0, errno
	}
	addr, ok := writtenValue(data)
	if !ok {
		return 0, n.c.refuse(n.name, data, notOneValue)
	}
	// What no container may have is refused here, where the file is known; what
	// depends on the others (in use, running) is ops's to say.
	if err := ops.ValidateAddress(addr); err != nil {
		return 0, n.c.refuse(n.name, data, err.Error())
	}
	hostAddr, localAddr := "", addr
	if n.host {
		hostAddr, localAddr = addr, ""
	}
	// It may wait for nixos-container's address lock.
	err := detached(ctx, func(ctx context.Context) error {
		return n.c.b.SetAddresses(ctx, n.c.name, hostAddr, localAddr)
	})
	if err != nil {
		return 0, errnoOf(err)
	}
	return n.wrote(f, off, len(data))
}
