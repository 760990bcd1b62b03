package fs

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"nixcfs/ops"
)

// portsFile is NAME/ports: the container's port forwards, one per line, each
// [tcp:|udp:]HOSTPORT[:GUESTPORT] (HOST_PORT of its conf file).
//
// What one open writes is the new list, blank lines ignored: `echo > ports` clears it,
// `>>` adds to it. Shells write a line per write(2), so each write checks the lines so
// far, and refuses (EBUSY while the container runs, EINVAL for a malformed or repeated
// forward, EADDRINUSE for a host port another container forwards) where the writer
// sees it; the list is committed when the writer closes, and a refused line keeps the
// whole text from it. New forwards take effect at the next start.
type portsFile struct{ valueFile }

func newPortsFile(c *containerRef) *portsFile {
	n := &portsFile{valueFile{c: c, name: "ports", mode: modeRW}}
	n.value = func() (string, error) {
		specs, err := c.b.Ports(c.name)
		var b strings.Builder
		for _, s := range specs {
			b.WriteString(s + "\n")
		}
		return b.String(), err
	}
	return n
}

var _ = (gofs.NodeOpener)((*portsFile)(nil))

func (n *portsFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.valueFile.Open(ctx, flags)
	if errno != 0 || !writes(flags) {
		return fh, fuseFlags, errno
	}
	text := fh.(*textHandle)
	h := &portsHandle{textHandle: text, c: n.c}
	if text.appends {
		h.written = append([]byte(nil), text.text...)
	}
	return h, fuseFlags, 0
}

// portsHandle is one open of NAME/ports: what it read at open, and what it wrote.
type portsHandle struct {
	*textHandle
	c *containerRef

	mu      sync.Mutex
	written []byte        // the new list's text so far
	dirty   bool          // written since the last commit
	refused syscall.Errno // a write was refused: nothing of this open is committed
}

var _ = (gofs.FileWriter)((*portsHandle)(nil))

// Write adds data to the list and checks the complete lines so far. The list is
// written in order: each write where the one before ended (the first at the start of
// the file), or with O_APPEND (>>, at the size the kernel knows); one elsewhere (dd
// seek=N) is refused.
func (h *portsHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refused != 0 {
		return 0, h.refused
	}
	if !h.appends && off != int64(len(h.written)) {
		h.refused = h.c.refuse("ports", data, fmt.Sprintf("a write at offset %d: write the list in order, from the start of the file", off))
		return 0, h.refused
	}
	text := append(h.written, data...)
	complete := forwardLines(string(text[:strings.LastIndexByte(string(text), '\n')+1]))
	// A malformed or repeated forward is refused here, naming the file; a host port
	// another container forwards, or a running container, is ops's to say.
	if _, err := ops.ParsePortForwards(complete); err != nil {
		h.refused = h.c.refuse("ports", data, err.Error())
		return 0, h.refused
	}
	if errno := errnoOf(h.c.b.CheckPorts(h.c.name, complete)); errno != 0 {
		h.refused = errno
		return 0, errno
	}
	h.written, h.dirty = text, true
	return uint32(len(data)), 0
}

var _ = (gofs.FileFlusher)((*portsHandle)(nil))

// Flush (every close of the descriptor) commits what was written since the last one.
// Its error reaches cat, tee and /bin/echo; bash's builtins drop it, and the status's
// error line tells it.
func (h *portsHandle) Flush(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.dirty || h.refused != 0 {
		return 0
	}
	h.dirty = false
	if _, killed := killedCaller(ctx); killed {
		return 0 // a writer killed half-way changes nothing
	}
	specs := forwardLines(string(h.written))
	// It may wait for nixos-container's address lock, which also guards HOST_PORT.
	return errnoOf(detached(ctx, func(ctx context.Context) error { return h.c.b.SetPorts(ctx, h.c.name, specs) }))
}

var _ = (gofs.FileFsyncer)((*portsHandle)(nil))

func (h *portsHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno { return h.Flush(ctx) }

var _ = (gofs.FileReader)((*portsHandle)(nil)) // O_RDWR reads the list as it was at open

// forwardLines is the forwards of the file's text: one per line, blanks around each
// and blank lines dropped.
func forwardLines(text string) []string {
	var specs []string
	for _, line := range strings.Split(text, "\n") {
		if line = strings.Trim(line, " \t"); line != "" {
			specs = append(specs, line)
		}
	}
	return specs
}
