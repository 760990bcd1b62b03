package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"nixcfs/ops"
)

// configFile is config.nix, and every scratch file of the container directory: one Go
// type, because editors and sed -i turn one into the other by renaming.
//
// Reads of config.nix show the container's configuration.nix. Each open handle writes
// into its own buffer (O_TRUNC arrives as SETATTR size 0 before any data); the text is
// committed when a handle that wrote is flushed (close): written, built, switched.
// Close returns after that, EIO if the build failed, and the new text stays. A handle
// whose write failed, or whose writer was killed, commits nothing. A rename over
// config.nix commits the renamed file's text and returns before the build
// (becomeConfig). A scratch file keeps its text in memory instead.
type configFile struct {
	gofs.Inode
	c *containerRef

	mu       sync.Mutex
	isConfig bool // named config.nix
	scratch  []byte
	mode     uint32 // of a scratch file; config.nix is always modeSecretRW
	mtime    time.Time
	writers  map[*configHandle]bool
	pending  *configHandle // last writer with unflushed text: its size is the file's
}

// maxConfigSize caps a writer's buffer and a scratch file, which live in the daemon's
// memory: a configuration.nix is kilobytes, and `truncate -s 100G` or a write at a huge
// offset must fail (EFBIG) rather than make the daemon allocate that much and die.
const maxConfigSize = ops.MaxConfigSize

func newConfigFile(c *containerRef, isConfig bool, mode uint32) *configFile {
	return &configFile{c: c, isConfig: isConfig, mode: mode, mtime: time.Now(), writers: map[*configHandle]bool{}}
}

func (n *configFile) isTheConfig() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.isConfig
}

// text is the file's committed content.
func (n *configFile) text() ([]byte, error) {
	n.mu.Lock()
	if !n.isConfig {
		defer n.mu.Unlock()
		return bytes.Clone(n.scratch), nil
	}
	n.mu.Unlock()
	text, err := n.c.b.ReadConfig(n.c.name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // made from a prebuilt system: no configuration.nix yet
	}
	return text, err
}

var _ = (gofs.NodeGetattrer)((*configFile)(nil))

func (n *configFile) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.mu.Lock()
	defer n.mu.Unlock()
	size, mode, mtime := len(n.scratch), n.mode, n.mtime
	if n.isConfig {
		// The file's own mtime, so vim notices edits made inside the container and
		// does not complain about its own.
		size, mode, mtime = 0, modeSecretRW, time.Time{}
		if sz, mt, err := n.c.b.ConfigInfo(n.c.name); err == nil {
			size, mtime = int(sz), mt
		}
	}
	if n.pending != nil {
		size = len(n.pending.buf) // `>>` writes at the size the kernel knows
	}
	setFileAttr(&out.Attr, mode, size, mtime)
	return 0
}

var _ = (gofs.NodeSetattrer)((*configFile)(nil))

// Setattr truncates the writers' buffers (echo >, cp, O_TRUNC), never the committed
// config. Mode, owner and times (sed -i and vim copy them to their scratch file) are
// kept for scratch files and accepted silently for config.nix.
func (n *configFile) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	size, truncate := in.GetSize()
	if truncate && size > maxConfigSize { // checked as uint64: int(size) goes negative over MaxInt64
		n.mu.Lock()
		if h, ok := f.(*configHandle); ok {
			h.failed = syscall.EFBIG
		}
		n.noteError(fmt.Errorf("%s: a truncation to %d bytes was refused (at most %d MiB)", n.nameLocked(), size, maxConfigSize>>20))
		n.mu.Unlock()
		return syscall.EFBIG
	}
	n.mu.Lock()
	if truncate {
		if h, ok := f.(*configHandle); ok {
			h.buf = resize(h.buf, int(size))
		} else {
			for h := range n.writers {
				h.buf = resize(h.buf, int(size))
			}
		}
		if !n.isConfig {
			n.scratch = resize(n.scratch, int(size))
		}
	}
	if mode, ok := in.GetMode(); ok && !n.isConfig {
		n.mode = mode
	}
	if mtime, ok := in.GetMTime(); ok && !n.isConfig {
		n.mtime = mtime
	}
	n.mu.Unlock()
	return n.Getattr(ctx, f, out)
}

func resize(b []byte, size int) []byte {
	if size <= len(b) {
		return b[:size]
	}
	return append(b, make([]byte, size-len(b))...)
}

var _ = (gofs.NodeOpener)((*configFile)(nil))

func (n *configFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if writes(flags) {
		if errno := n.c.mayWrite(); errno != 0 {
			return nil, 0, errno
		}
	}
	text, err := n.text()
	if err != nil {
		return nil, 0, errnoOf(err)
	}
	return n.newHandle(writes(flags), text), fuse.FOPEN_DIRECT_IO, 0
}

func (n *configFile) newHandle(write bool, text []byte) *configHandle {
	h := &configHandle{n: n, buf: text}
	if write {
		n.mu.Lock()
		n.writers[h] = true
		n.mu.Unlock()
	}
	return h
}

var _ = (gofs.NodeFsyncer)((*configFile)(nil)) // vim fsyncs; ENOTSUP makes it roll back

func (n *configFile) Fsync(ctx context.Context, f gofs.FileHandle, flags uint32) syscall.Errno {
	return 0
}

// becomeConfig commits a scratch file's text as the container's config, because it is
// being renamed over config.nix (sed -i, perl -pi). It returns once the text is
// written and its build queued, not built: the kernel holds the container directory's
// lock for the whole rename, and `ls` of it must not wait minutes for a build. So sed
// -i exits 0 even when the build fails; status, events and build.log say so.
func (n *configFile) becomeConfig(ctx context.Context) syscall.Errno {
	n.mu.Lock()
	text := bytes.Clone(n.scratch)
	n.mu.Unlock()
	err := detached(ctx, func(ctx context.Context) error { return n.c.b.WriteConfig(ctx, n.c.name, text) })
	if err != nil {
		return errnoOf(err)
	}
	n.mu.Lock()
	n.isConfig, n.scratch = true, nil
	n.mu.Unlock()
	return 0
}

// becomeScratch keeps a copy of the config in a node renamed away from config.nix
// (vim's backup config.nix~).
func (n *configFile) becomeScratch() syscall.Errno {
	text, err := n.text()
	if err != nil {
		return errnoOf(err)
	}
	n.mu.Lock()
	n.isConfig, n.scratch, n.mode, n.mtime = false, text, modeSecretRW, time.Now()
	n.mu.Unlock()
	return 0
}

// replaced detaches a node that a rename overwrites: later writes through its open
// handles go nowhere, as on any filesystem.
func (n *configFile) replaced() {
	n.mu.Lock()
	n.isConfig = false
	n.mu.Unlock()
}

// nameLocked is the file's name as a reader of status knows it.
func (n *configFile) nameLocked() string {
	if n.isConfig {
		return configName
	}
	return "a scratch file beside " + configName
}

// noteError puts a refusal of this file's in the container's status.
func (n *configFile) noteError(err error) { n.c.b.NoteError(n.c.name, err) }

func (n *configFile) commit(ctx context.Context, text []byte) error {
	return detached(ctx, func(ctx context.Context) error {
		return n.c.b.SetConfig(ctx, n.c.name, text)
	})
}

// configHandle is one open of a configFile: the text as it was at open(2), then as
// this handle writes it.
type configHandle struct {
	n     *configFile
	buf   []byte // guarded by n.mu, as are the fields below
	wrote bool   // since open or the last flush
	// failed is the error of a write or truncation through this handle that failed:
	// its text is incomplete, and it commits nothing, ever.
	failed syscall.Errno
}

var _ = (gofs.FileReader)((*configHandle)(nil))

func (h *configHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	return fuse.ReadResultData(bytes.Clone(window(h.buf, off, len(dest)))), 0
}

var _ = (gofs.FileWriter)((*configHandle)(nil))

func (h *configHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	if off < 0 || off > maxConfigSize-int64(len(data)) {
		h.failed = syscall.EFBIG
		h.n.noteError(fmt.Errorf("%s: a write past %d MiB was refused; nothing of that writer's text is kept", h.n.nameLocked(), maxConfigSize>>20))
		return 0, syscall.EFBIG
	}
	if end := int(off) + len(data); end > len(h.buf) {
		h.buf = resize(h.buf, end)
	}
	copy(h.buf[off:], data)
	h.wrote = true
	h.n.pending = h
	return uint32(len(data)), 0
}

var _ = (gofs.FileFlusher)((*configHandle)(nil))

// Flush commits what this handle wrote. echo sends a FLUSH before its data: nothing is
// committed then, and a handle that only read never fails. A handle whose write
// failed, or whose writer is being killed, commits nothing: the previous text stays.
func (h *configHandle) Flush(ctx context.Context) syscall.Errno {
	n := h.n
	n.mu.Lock()
	if !h.wrote {
		n.mu.Unlock()
		return 0
	}
	h.wrote = false
	if n.pending == h {
		n.pending = nil
	}
	if h.failed != 0 {
		n.mu.Unlock()
		return h.failed
	}
	if pid, killed := killedCaller(ctx); killed {
		n.noteError(fmt.Errorf("%s: its writer (pid %d) was killed before closing it; its text was discarded", n.nameLocked(), pid))
		n.mu.Unlock()
		return 0
	}
	text := bytes.Clone(h.buf)
	if !n.isConfig {
		n.scratch, n.mtime = text, time.Now()
		n.mu.Unlock()
		return 0
	}
	n.mu.Unlock()
	return errnoOf(n.commit(ctx, text))
}

var _ = (gofs.FileReleaser)((*configHandle)(nil))

func (h *configHandle) Release(ctx context.Context) syscall.Errno {
	h.Flush(ctx) // no FLUSH came (rare); the kernel drops the result
	h.n.mu.Lock()
	delete(h.n.writers, h)
	h.n.mu.Unlock()
	return 0
}
