package fs

import (
	"context"
	"io"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"nixcfs/ops"
)

// journalFile is NAME/log: the unit's journal. Each open gets the backend's reader of
// it, which keeps its text outside memory; a reader that reaches its end, or asks for
// the size (tail -f polls fstat), gets it refreshed, since the journal only grows.
// Without an open handle (lookup, ls -l, stat of the path) the size is the true one
// too, from a count at most sizeMaxAge old, so that a burst of stats counts once.
type journalFile struct {
	gofs.Inode
	c *containerRef
}

const sizeMaxAge = time.Second

// pathSize is the journal's size for a stat without an open handle.
func (n *journalFile) pathSize(ctx context.Context) (int64, syscall.Errno) {
	n.c.logMu.Lock()
	defer n.c.logMu.Unlock()
	if time.Since(n.c.logSize.at) < sizeMaxAge {
		return n.c.logSize.size, 0
	}
	size, err := n.c.b.LogSize(ctx, n.c.name)
	if errno := journalErrno(ctx, err); errno != 0 {
		return 0, errno
	}
	n.c.logSize = sizeCache{size: size, at: time.Now()}
	return size, 0
}

// journalErrno is EINTR for a reader that gave up, EIO when the journal could not be
// read.
func journalErrno(ctx context.Context, err error) syscall.Errno {
	switch {
	case ctx.Err() != nil:
		return syscall.EINTR
	case err != nil:
		return errnoOf(err)
	}
	return 0
}

var _ = (gofs.NodeGetattrer)((*journalFile)(nil))

func (n *journalFile) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	var size int64
	var errno syscall.Errno
	if h, ok := f.(*journalHandle); ok {
		errno = journalErrno(ctx, h.r.Refresh(ctx))
		size = h.r.Size()
	} else {
		size, errno = n.pathSize(ctx)
	}
	if errno != 0 {
		return errno
	}
	setFileAttr(&out.Attr, modeSecretRO, int(size), time.Now())
	return 0
}

var _ = (gofs.NodeOpener)((*journalFile)(nil))

func (n *journalFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if writes(flags) {
		return nil, 0, syscall.EACCES
	}
	r, err := n.c.b.OpenLog(ctx, n.c.name)
	if errno := journalErrno(ctx, err); errno != 0 {
		return nil, 0, errno
	}
	return &journalHandle{r: r}, fuse.FOPEN_DIRECT_IO, 0
}

// journalHandle is one open of the log: the backend's reader of the journal.
type journalHandle struct{ r ops.LogReader }

var _ = (gofs.FileReader)((*journalHandle)(nil))

func (h *journalHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= h.r.Size() {
		if errno := journalErrno(ctx, h.r.Refresh(ctx)); errno != 0 {
			return nil, errno
		}
	}
	n, err := h.r.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, errnoOf(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

var _ = (gofs.FileReleaser)((*journalHandle)(nil))

func (h *journalHandle) Release(ctx context.Context) syscall.Errno {
	h.r.Close()
	return 0
}
