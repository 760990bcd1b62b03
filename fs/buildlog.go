package fs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// buildLogFile is NAME/build.log: nix's output of the last build, growing while it
// runs. Each open reads the log file itself, so tail -f follows a build.
type buildLogFile struct {
	gofs.Inode
	c *containerRef
}

var _ = (gofs.NodeGetattrer)((*buildLogFile)(nil))

func (n *buildLogFile) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	var fi os.FileInfo
	var err error
	if h, ok := f.(*buildLogHandle); ok && h.f != nil {
		fi, err = h.f.Stat()
	} else if lf, oerr := n.c.b.OpenBuildLog(n.c.name); oerr == nil {
		fi, err = lf.Stat()
		lf.Close()
	} else {
		err = oerr
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		setFileAttr(&out.Attr, modeSecretRO, 0, time.Time{}) // no build yet
	case err != nil:
		return errnoOf(err)
	default:
		setFileAttr(&out.Attr, modeSecretRO, int(fi.Size()), fi.ModTime())
	}
	return 0
}

var _ = (gofs.NodeOpener)((*buildLogFile)(nil))

func (n *buildLogFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if writes(flags) {
		return nil, 0, syscall.EACCES
	}
	f, err := n.c.b.OpenBuildLog(n.c.name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, 0, errnoOf(err)
	}
	return &buildLogHandle{f: f}, fuse.FOPEN_DIRECT_IO, 0
}

// buildLogHandle reads the log file as it grows; f is nil when there was none yet.
type buildLogHandle struct{ f *os.File }

var _ = (gofs.FileReader)((*buildLogHandle)(nil))

func (h *buildLogHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h.f == nil {
		return fuse.ReadResultData(nil), 0
	}
	n, err := h.f.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, errnoOf(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

var _ = (gofs.FileReleaser)((*buildLogHandle)(nil))

func (h *buildLogHandle) Release(ctx context.Context) syscall.Errno {
	if h.f != nil {
		h.f.Close()
	}
	return 0
}
