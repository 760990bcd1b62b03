package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
)

// limitFile is one of NAME/memory.max, cpu.max, pids.max, cpu.weight and io.weight: a
// resource limit of the container's unit, in cgroup v2's syntax. It reads what systemd
// holds now (bytes or "max"; "QUOTA PERIOD" or "max PERIOD" for cpu.max; a weight's
// default, 100, when none is set). A written value is kept by systemd across restarts
// and reboots and applies at once to a running container; a bad one is EINVAL and
// changes nothing, and the status's error line names the file and the value: here
// what is no one value, ops what is out of the limit's syntax.
type limitFile struct {
	valueFile // its name is the limit's key
}

// systemdTimeout bounds a read of the limits: a stat or open cannot wait on the
// request's own context through valueFile.
const systemdTimeout = 10 * time.Second

func limitNode(key string) func(c *containerRef) gofs.InodeEmbedder {
	return func(c *containerRef) gofs.InodeEmbedder {
		n := &limitFile{valueFile{c: c, name: key, mode: modeRW}}
		n.value = func() (string, error) {
			ctx, cancel := context.WithTimeout(context.Background(), systemdTimeout)
			defer cancel()
			l, err := c.b.Limits(ctx, c.name)
			return l.Text(key) + "\n", err
		}
		return n
	}
}

var _ = (gofs.NodeWriter)((*limitFile)(nil))

// Write sets the limit.
func (n *limitFile) Write(ctx context.Context, f gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := n.writableAt(f, data, off); errno != 0 {
		return 0, errno
	}
	v, ok := writtenValue(data)
	if !ok {
		return 0, n.c.refuse(n.name, data, notOneValue)
	}
	err := detached(ctx, func(ctx context.Context) error {
		return n.c.b.SetLimits(ctx, n.c.name, map[string]string{n.name: v})
	})
	if err != nil {
		return 0, errnoOf(err)
	}
	return n.wrote(f, off, len(data))
}
