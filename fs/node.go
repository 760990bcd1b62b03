package fs

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Helpers every node file uses: attributes, per-open text, written values.

const (
	modeRW = 0o644 // root writes, everyone (with --allow-other) reads
	modeRO = 0o444
	// Files that may hold secrets (a configuration's passwords and keys, and the logs
	// that echo them) are root's alone, also under --allow-other.
	modeSecretRW = 0o600
	modeSecretRO = 0o400
	modeDir      = 0o755
)

// containerRef is what the nodes of one container directory share: the backend and
// the container's name.
type containerRef struct {
	b    Backend
	name string

	inoSrc *inoSource // the mount's
	mu     sync.Mutex
	inos   map[string]uint64 // of its own files, kept across their fresh inodes

	logMu   sync.Mutex // held while the journal's size is counted
	logSize sizeCache  // of the journal, for stats without an open handle
}

// inoSource numbers the inodes that lookups make anew (freshInode): each file keeps one
// inode number, so that cp and tail, which compare a path's and an fd's st_ino, see one
// file; the generation tells the kernel's inodes apart.
type inoSource struct {
	next atomic.Uint64 // below go-fuse's automatic numbers, which start at 1<<63
	gen  atomic.Uint64
}

func newInoSource() *inoSource {
	s := &inoSource{}
	s.next.Store(1 << 62)
	return s
}

// freshAttr is the identity of a new inode for the container's file.
func (c *containerRef) freshAttr(file string, mode uint32) gofs.StableAttr {
	c.mu.Lock()
	ino, ok := c.inos[file]
	if !ok {
		ino = c.inoSrc.next.Add(1)
		c.inos[file] = ino
	}
	c.mu.Unlock()
	return gofs.StableAttr{Mode: mode, Ino: ino, Gen: c.inoSrc.gen.Add(1)}
}

// freshChild is a new inode under parent for the container's file (freshInode), which
// the kernel looks up again each time.
func (c *containerRef) freshChild(ctx context.Context, parent *gofs.Inode, file string, node gofs.InodeEmbedder, mode uint32, out *fuse.EntryOut) *gofs.Inode {
	ch := parent.NewInode(ctx, node, c.freshAttr(file, mode))
	entryOf(ctx, ch.Operations(), out)
	out.SetEntryTimeout(freshInode)
	return ch
}

// sizeCache keeps a size that is costly to learn for a short while.
type sizeCache struct {
	size int64
	at   time.Time
}

// mayWrite refuses every write to a declarative container, at open(2).
func (c *containerRef) mayWrite() syscall.Errno {
	st, err := c.b.Status(c.name)
	if err != nil {
		return errnoOf(err)
	}
	if st.Declarative {
		return syscall.EPERM
	}
	return 0
}

// refuse puts why a write of data to file was refused in the container's status, and
// returns EINVAL, the errno of a value a file does not take.
func (c *containerRef) refuse(file string, data []byte, why string) syscall.Errno {
	shown := data
	if len(shown) > 64 {
		shown = shown[:64]
	}
	c.b.NoteError(c.name, fmt.Errorf("%s: %q refused: %s", file, shown, why))
	return syscall.EINVAL
}

// notOneValue says why writtenValue refused a write.
const notOneValue = "a file takes one value per write (blanks around it and one newline after it are allowed)"

func writes(flags uint32) bool { return flags&syscall.O_ACCMODE != syscall.O_RDONLY }

// setFileAttr describes a regular file whose content is size bytes right now: the true
// size lets sendfile copies (Python's shutil) and tail -f see all of it.
func setFileAttr(out *fuse.Attr, mode uint32, size int, mtime time.Time) {
	out.Mode = syscall.S_IFREG | mode
	out.Nlink = 1
	out.Size = uint64(size)
	out.SetTimes(nil, &mtime, &mtime)
}

const (
	// entryTimeout is how long the kernel may keep a name without asking: names are
	// stable for a second, and removals from outside are notified at once.
	entryTimeout = time.Second
	// freshInode is the entry timeout of files whose every lookup makes a new inode:
	// none, so that each open looks the name up again.
	freshInode = 0
)

func setDirAttr(out *fuse.AttrOut) {
	out.Mode = syscall.S_IFDIR | modeDir
	out.Nlink = 2
	// Directories' attributes never change; names are kept current by notifications.
	out.SetTimeout(time.Second)
}

// entryOf fills a Lookup, Mkdir or Create answer with the node's attributes.
func entryOf(ctx context.Context, node gofs.InodeEmbedder, out *fuse.EntryOut) {
	if g, ok := node.(gofs.NodeGetattrer); ok {
		var a fuse.AttrOut
		if g.Getattr(ctx, nil, &a) == 0 {
			out.Attr = a.Attr
		}
	}
}

// textHandle is one open of a small dynamic file: its text as it was at open(2), so
// that reads at rising offsets (cp, shutil.copy) see one consistent value. A writer's
// handle also knows where its next value may be written (valueFile.writableAt).
type textHandle struct {
	text    []byte
	appends bool // opened with O_APPEND: >> writes at the size the kernel knows

	mu  sync.Mutex
	end int64 // where the last value written through it ended
}

var _ = (gofs.FileReader)((*textHandle)(nil))

func (h *textHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return fuse.ReadResultData(window(h.text, off, len(dest))), 0
}

var _ = (gofs.FileFsyncer)((*textHandle)(nil)) // without it, fsync is ENOTSUP and editors roll back

func (h *textHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return 0 }

// window is b[off:off+n], clipped to b.
func window(b []byte, off int64, n int) []byte {
	if off >= int64(len(b)) {
		return nil
	}
	end := off + int64(n)
	if end > int64(len(b)) {
		end = int64(len(b))
	}
	return b[off:end]
}

// writtenValue is the value of one write(2) to a control file: surrounding blanks
// trimmed, one trailing newline allowed, nothing else.
func writtenValue(data []byte) (string, bool) {
	s := strings.Trim(strings.TrimSuffix(string(data), "\n"), " \t")
	if s == "" || strings.Contains(s, "\n") {
		return "", false
	}
	return s, true
}

// valueFile is what the small value files share (state, address, host-address,
// autostart, status): the value is read fresh at every stat and open, with its true
// size, and each open keeps its own copy. Writing is each file's own.
type valueFile struct {
	gofs.Inode
	c     *containerRef
	name  string // in the container's directory
	mode  uint32
	value func() (string, error)
}

var _ = (gofs.NodeGetattrer)((*valueFile)(nil))

func (n *valueFile) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	text, err := n.value()
	if err != nil {
		return errnoOf(err)
	}
	setFileAttr(&out.Attr, n.mode, len(text), time.Now())
	return 0
}

var _ = (gofs.NodeOpener)((*valueFile)(nil))

func (n *valueFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if writes(flags) {
		if n.mode&0o222 == 0 {
			return nil, 0, syscall.EACCES
		}
		if errno := n.c.mayWrite(); errno != 0 {
			return nil, 0, errno
		}
	}
	text, err := n.value()
	if err != nil {
		return nil, 0, errnoOf(err)
	}
	return &textHandle{text: []byte(text), appends: flags&syscall.O_APPEND != 0}, fuse.FOPEN_DIRECT_IO, 0
}

// writableAt refuses (EINVAL, the reason in status) a write of data at off through f
// that is no whole value: a value is written from the start of the file, after the
// value the same open wrote before (the offset where that one ended: exec 3>state;
// echo start >&3; echo stop >&3), or with O_APPEND (>>, at the size the kernel knows).
// Anything else (dd seek=N, a pwrite at the value's middle) would take a piece of a
// value for the whole of it.
func (n *valueFile) writableAt(f gofs.FileHandle, data []byte, off int64) syscall.Errno {
	h, ok := f.(*textHandle)
	if !ok || off == 0 || h.appends {
		return 0
	}
	h.mu.Lock()
	end := h.end
	h.mu.Unlock()
	if off == end {
		return 0
	}
	return n.c.refuse(n.name, data, fmt.Sprintf("a write at offset %d: write a whole value, from the start of the file", off))
}

// wrote notes that a value was taken from a write of size bytes at off through f: the
// writer's next value comes at the end of it.
func (n *valueFile) wrote(f gofs.FileHandle, off int64, size int) (uint32, syscall.Errno) {
	if h, ok := f.(*textHandle); ok {
		h.mu.Lock()
		h.end = off + int64(size)
		h.mu.Unlock()
	}
	return uint32(size), 0
}

var _ = (gofs.NodeSetattrer)((*valueFile)(nil)) // echo's O_TRUNC comes as SETATTR size 0

// Setattr lets `echo v > file` truncate first and refuses what makes no sense for a
// value: a mode or owner, and a truncation to anything but empty.
func (n *valueFile) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	_, mode := in.GetMode()
	_, uid := in.GetUID()
	_, gid := in.GetGID()
	if mode || uid || gid || n.mode&0o222 == 0 {
		return syscall.EPERM
	}
	if size, ok := in.GetSize(); ok && size > 0 {
		return n.c.refuse(n.name, nil, fmt.Sprintf("truncation to %d bytes: write a whole value instead", size))
	}
	return n.Getattr(ctx, f, out)
}
