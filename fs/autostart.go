package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
)

// autostartFile is NAME/autostart: 1 if the container starts at boot (AUTO_START), 0
// if not.
type autostartFile struct{ valueFile }

func newAutostartFile(c *containerRef) *autostartFile {
	n := &autostartFile{valueFile{c: c, name: "autostart", mode: modeRW}}
	n.value = func() (string, error) {
		st, err := c.b.Status(c.name)
		if st.Autostart {
			return "1\n", err
		}
		return "0\n", err
	}
	return n
}

var _ = (gofs.NodeWriter)((*autostartFile)(nil))

func (n *autostartFile) Write(ctx context.Context, f gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := n.writableAt(f, data, off); errno != 0 {
		return 0, errno
	}
	v, ok := writtenValue(data)
	if !ok || v != "0" && v != "1" {
		return 0, n.c.refuse(n.name, data, "autostart is 0 or 1")
	}
	err := detached(ctx, func(ctx context.Context) error { return n.c.b.SetAutostart(ctx, n.c.name, v == "1") })
	if err != nil {
		return 0, errnoOf(err)
	}
	return n.wrote(f, off, len(data))
}
