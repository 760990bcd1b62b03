package fs

import (
	"bytes"
	"context"
	"os/exec"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"nixcfs/ops"
)

// journalFile is NAME/log: the unit's journal. Each open runs journalctl once into a
// snapshot; a reader that reaches its end, or asks for the size (tail -f polls fstat),
// gets it run again, since the journal only grows. Without an open handle (lookup, ls
// -l, stat of the path) the size is the true one too (SPEC), from a run at most
// sizeMaxAge old, so that a burst of stats runs journalctl once.
type journalFile struct {
	gofs.Inode
	c *container

	mu       sync.Mutex
	size     int
	sizeTime time.Time
}

const sizeMaxAge = time.Second

// pathSize is the journal's size for a stat without an open handle.
func (n *journalFile) pathSize(ctx context.Context) (int, syscall.Errno) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if time.Since(n.sizeTime) < sizeMaxAge {
		return n.size, 0
	}
	text, errno := n.journal(ctx)
	if errno != 0 {
		return 0, errno
	}
	n.size, n.sizeTime = len(text), time.Now()
	return n.size, 0
}

func (n *journalFile) journal(ctx context.Context) ([]byte, syscall.Errno) {
	text, err := n.c.journal(ctx, n.c.name)
	if ctx.Err() != nil {
		return nil, syscall.EINTR
	}
	if err != nil {
		return nil, syscall.EIO
	}
	return text, 0
}

// journalctl runs the filesystem's one subprocess, never inside the mount.
func journalctl(ctx context.Context, name string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "journalctl", "-u", ops.UnitName(name), "--no-pager", "-q", "-o", "short-iso")
	cmd.Dir = "/"
	return cmd.Output()
}

var _ = (gofs.NodeGetattrer)((*journalFile)(nil))

func (n *journalFile) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	var size int
	var errno syscall.Errno
	if h, ok := f.(*journalHandle); ok {
		errno = h.refresh(ctx)
		size = h.size()
	} else {
		size, errno = n.pathSize(ctx)
	}
	if errno != 0 {
		return errno
	}
	setFileAttr(&out.Attr, modeRO, size, time.Now())
	return 0
}

var _ = (gofs.NodeOpener)((*journalFile)(nil))

func (n *journalFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if writes(flags) {
		return nil, 0, syscall.EACCES
	}
	h := &journalHandle{n: n}
	if errno := h.refresh(ctx); errno != 0 {
		return nil, 0, errno
	}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

type journalHandle struct {
	n    *journalFile
	mu   sync.Mutex
	text []byte
}

func (h *journalHandle) refresh(ctx context.Context) syscall.Errno {
	text, errno := h.n.journal(ctx)
	if errno != 0 {
		return errno
	}
	h.mu.Lock()
	h.text = text
	h.mu.Unlock()
	return 0
}

func (h *journalHandle) size() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.text)
}

var _ = (gofs.FileReader)((*journalHandle)(nil))

func (h *journalHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(h.size()) {
		if errno := h.refresh(ctx); errno != 0 {
			return nil, errno
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return fuse.ReadResultData(bytes.Clone(window(h.text, off, len(dest)))), 0
}
