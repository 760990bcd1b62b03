package fs

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"nixcfs/ops"
)

const eventsName = "events"

// eventsFile is /events, and NAME/events: a blocking stream of `TIME NAME KEY VALUE`
// lines, one per change (states, builds, creation, removal) of every container, or of
// the one named. Each open starts at "now".
type eventsFile struct {
	gofs.Inode
	b    Backend
	name string // "" for every container

	reading atomic.Int32 // reads in progress: tests wait for blocked readers with it
}

var _ = (gofs.NodeGetattrer)((*eventsFile)(nil))

func (n *eventsFile) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	setFileAttr(&out.Attr, modeRO, 0, time.Now())
	return 0
}

var _ = (gofs.NodeOpener)((*eventsFile)(nil))

func (n *eventsFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if writes(flags) {
		return nil, 0, syscall.EACCES
	}
	watch, stop := context.WithCancel(context.Background())
	h := &eventsHandle{n: n, events: n.b.Watch(watch, n.name), stop: stop, lock: make(chan struct{}, 1)}
	return h, fuse.FOPEN_DIRECT_IO, 0
}

// eventsHandle is one reader's stream.
type eventsHandle struct {
	n      *eventsFile
	events <-chan ops.Event
	stop   context.CancelFunc

	// lock is held (a token in it) by the one Read at a time that may block on events.
	// A channel, not a mutex, so that a second reader of the same fd waiting for it
	// can be interrupted too, instead of hanging in D state until the next event.
	lock    chan struct{}
	pending []byte // lines read from events, not yet returned; guarded by lock
}

var _ = (gofs.FileReader)((*eventsHandle)(nil))

// Read blocks until there is an event, or the reader is interrupted (EINTR), also
// while another read of the same fd blocks.
func (h *eventsHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.n.reading.Add(1)
	defer h.n.reading.Add(-1)
	select {
	case h.lock <- struct{}{}:
		defer func() { <-h.lock }()
	case <-ctx.Done():
		return nil, syscall.EINTR
	}
	if len(h.pending) == 0 {
		select {
		case ev, ok := <-h.events:
			if !ok {
				return fuse.ReadResultData(nil), 0 // the daemon is shutting down
			}
			h.pending = append(h.pending, eventLine(ev)...)
		case <-ctx.Done():
			return nil, syscall.EINTR
		}
	more:
		for len(h.pending) < len(dest) {
			select {
			case ev, ok := <-h.events:
				if !ok {
					break more
				}
				h.pending = append(h.pending, eventLine(ev)...)
			default:
				break more
			}
		}
	}
	n := copy(dest, h.pending)
	h.pending = h.pending[n:]
	return fuse.ReadResultData(dest[:n]), 0
}

var _ = (gofs.FileReleaser)((*eventsHandle)(nil))

func (h *eventsHandle) Release(ctx context.Context) syscall.Errno {
	h.stop()
	return 0
}

// eventLine is one line of the stream: TIME NAME KEY VALUE, "-" for an empty value
// (as in status).
func eventLine(ev ops.Event) string {
	value := ev.Value
	if value == "" {
		value = "-"
	}
	return fmt.Sprintf("%s %s %s %s\n", ev.Time.Format(time.RFC3339), ev.Name, ev.Kind, value)
}
