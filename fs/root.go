package fs

import (
	"context"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/rs/zerolog"

	"nixcfs/ops"
)

// Root is the mount's top directory: one directory per container on the host, and
// the `events` file. mkdir creates a container, rmdir destroys one.
type Root struct {
	gofs.Inode
	b    Backend
	log  zerolog.Logger
	inos *inoSource

	mu     sync.Mutex
	mkdirs map[string]int // containers created by our Mkdir, until Follow sees them
}

// New is the root of a filesystem over b. Mount it with Mount, or mount it yourself
// and run Follow once the mount is up.
func New(b Backend, o Options) *Root {
	return &Root{b: b, log: o.Log, inos: newInoSource(), mkdirs: map[string]int{}}
}

var _ = (gofs.NodeOnAdder)((*Root)(nil)) // events is always there

func (r *Root) OnAdd(ctx context.Context) {
	events := r.NewPersistentInode(ctx, &eventsFile{b: r.b}, gofs.StableAttr{Mode: syscall.S_IFREG})
	r.AddChild(eventsName, events, false)
}

var _ = (gofs.NodeGetattrer)((*Root)(nil))

func (r *Root) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	setDirAttr(out)
	return 0
}

var _ = (gofs.NodeLookuper)((*Root)(nil))

func (r *Root) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if name != eventsName && !r.b.Exists(name) {
		return nil, syscall.ENOENT
	}
	ch := r.GetChild(name)
	if ch == nil {
		ch = r.newContainerDir(ctx, name)
	}
	entryOf(ctx, ch.Operations(), out)
	out.SetEntryTimeout(entryTimeout)
	return ch, 0
}

func (r *Root) newContainerDir(ctx context.Context, name string) *gofs.Inode {
	d := &containerDir{c: &containerRef{b: r.b, name: name, inoSrc: r.inos, inos: map[string]uint64{}}}
	return r.NewInode(ctx, d, gofs.StableAttr{Mode: syscall.S_IFDIR})
}

var _ = (gofs.NodeReaddirer)((*Root)(nil))

func (r *Root) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	entries := []fuse.DirEntry{{Name: eventsName, Mode: syscall.S_IFREG}}
	for _, name := range r.b.List() {
		entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR})
	}
	return gofs.NewListDirStream(entries), 0
}

var _ = (gofs.NodeMkdirer)((*Root)(nil))

// Mkdir creates the container and returns at once; its first build runs in the
// background (state reads "creating"), because mkdir holds the root's lock.
func (r *Root) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	r.mu.Lock()
	r.mkdirs[name]++
	r.mu.Unlock()
	if _, err := r.b.Create(ctx, name, ops.CreateOptions{}); err != nil {
		r.ownCreation(name)
		return nil, errnoOf(err)
	}
	ch := r.newContainerDir(ctx, name)
	entryOf(ctx, ch.Operations(), out)
	out.SetEntryTimeout(entryTimeout)
	return ch, 0
}

var _ = (gofs.NodeRmdirer)((*Root)(nil))

// Rmdir destroys the container: EBUSY while it runs, EPERM if declarative.
func (r *Root) Rmdir(ctx context.Context, name string) syscall.Errno {
	return errnoOf(detached(ctx, func(ctx context.Context) error {
		return r.b.Destroy(ctx, name)
	}))
}

var _ = (gofs.NodeUnlinker)((*Root)(nil)) // without it, rm events would "succeed"

func (r *Root) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EPERM }

var _ = (gofs.NodeCreater)((*Root)(nil)) // only containers live here (the default says EROFS)

func (r *Root) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EPERM
}

// ownCreation tells (once) whether a creation was our own Mkdir's.
func (r *Root) ownCreation(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mkdirs[name] == 0 {
		return false
	}
	if r.mkdirs[name]--; r.mkdirs[name] == 0 {
		delete(r.mkdirs, name)
	}
	return true
}

// Follow keeps the kernel's view of the root current while containers are created and
// removed outside the mount (nixos-container, a NixOS rebuild), until ctx ends. The
// kernel is told from here, never from inside a FUSE handler: that would deadlock.
func (r *Root) Follow(ctx context.Context) {
	for ev := range r.b.Watch(ctx, "") {
		if ev.Kind != ops.EventContainer {
			continue
		}
		switch {
		case ev.Value == ops.ContainerCreated && !r.ownCreation(ev.Name):
			// Drop a negative entry the kernel may hold. Not after our own mkdir: the
			// notification would wait for mkdir's lock and then hit the new entry.
			r.NotifyEntry(ev.Name)
		case ev.Value == ops.ContainerRemoved && !r.b.Exists(ev.Name):
			ch := r.GetChild(ev.Name)
			if ch == nil {
				r.NotifyEntry(ev.Name)
				break
			}
			r.RmChild(ev.Name)
			// NotifyDelete refuses a directory whose entries the kernel still holds.
			if errno := r.NotifyDelete(ev.Name, ch); errno != 0 {
				r.NotifyEntry(ev.Name)
			}
		default:
			continue
		}
		r.log.Debug().Str("container", ev.Name).Str("change", ev.Value).Msg("kernel told")
	}
}
