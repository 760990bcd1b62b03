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
// -l, stat of the path) the size is 0 and journalctl does not run: reads are direct
// I/O and see everything anyway, and those that need the true size (cp, shutil.copy's
// sendfile, tail -f) ask with the file open, which go-fuse passes to Getattr.
type journalFile struct {
	gofs.Inode
	c *container
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
	var size int // 0 without an open handle: journalctl is too dear for every stat
	if h, ok := f.(*journalHandle); ok {
		if errno := h.refresh(ctx); errno != 0 {
			return errno
		}
		size = h.size()
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
