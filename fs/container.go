package fs

import (
	"context"
	"sort"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

const configName = "config.nix"

// containerDir is /NAME: the container's files, plus scratch files that editors and
// in-place tools make next to config.nix (vim's swap and backup files, sed -i's temp
// file). Scratch files live in memory; renaming one over config.nix commits its text.
type containerDir struct {
	gofs.Inode
	c *containerRef
}

// files are the container's own files, in the order ls shows them. They are made on
// lookup, so that one renamed or removed away is there again at once; all but
// config.nix anew at every lookup (freshInode).
var files = []ownFile{
	{name: "state", node: func(c *containerRef) gofs.InodeEmbedder { return newStateFile(c) }},
	{name: configName, node: func(c *containerRef) gofs.InodeEmbedder { return newConfigFile(c, true, modeSecretRW) }},
	{name: "status", node: func(c *containerRef) gofs.InodeEmbedder { return newStatusFile(c) }},
	{name: "address", node: func(c *containerRef) gofs.InodeEmbedder { return newAddressFile(c, false) }},
	{name: "host-address", node: func(c *containerRef) gofs.InodeEmbedder { return newAddressFile(c, true) }},
	{name: "autostart", node: func(c *containerRef) gofs.InodeEmbedder { return newAutostartFile(c) }},
	{name: "ports", node: func(c *containerRef) gofs.InodeEmbedder { return newPortsFile(c) }},
	{name: "build.log", node: func(c *containerRef) gofs.InodeEmbedder { return &buildLogFile{c: c} }},
	{name: "log", node: func(c *containerRef) gofs.InodeEmbedder { return &journalFile{c: c} }},
	{name: eventsName, node: func(c *containerRef) gofs.InodeEmbedder { return &eventsFile{b: c.b, name: c.name} }},
	{name: "generation", node: func(c *containerRef) gofs.InodeEmbedder { return newGenerationFile(c) }},
	{name: "generations", node: func(c *containerRef) gofs.InodeEmbedder { return &generationsLink{} }, mode: syscall.S_IFLNK},
	{name: "memory.max", node: limitNode("memory.max")},
	{name: "cpu.max", node: limitNode("cpu.max")},
	{name: "pids.max", node: limitNode("pids.max")},
	{name: "cpu.weight", node: limitNode("cpu.weight")},
	{name: "io.weight", node: limitNode("io.weight")},
	{name: "stats", node: func(c *containerRef) gofs.InodeEmbedder { return newStatsFile(c) }},
}

type ownFile struct {
	name string
	node func(c *containerRef) gofs.InodeEmbedder
	mode uint32 // its type bits, when not a regular file
}

// ownFileNamed is the entry of files for name, if there is one.
func ownFileNamed(name string) (ownFile, bool) {
	for _, f := range files {
		if f.name == name {
			return f, true
		}
	}
	return ownFile{}, false
}

// fileMode is the type bits of one of the container's own files.
func fileMode(mode uint32) uint32 {
	if mode == 0 {
		return syscall.S_IFREG
	}
	return mode
}

// FileNames are the names of a container directory's own entries, in the order ls
// shows them (config.nix.rejected only exists after a switch of generation kept one).
func FileNames() []string {
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, f.name)
	}
	return names
}

func isOwnFile(name string) bool {
	_, own := ownFileNamed(name)
	return own || name == rejectedName || name == generationsDirName
}

var _ = (gofs.NodeGetattrer)((*containerDir)(nil))

func (d *containerDir) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	setDirAttr(out)
	return 0
}

var _ = (gofs.NodeLookuper)((*containerDir)(nil))

// Lookup gives each of the container's own files but config.nix a new inode at every
// lookup, never cached (freshInode): the kernel serialises writers per inode, and a
// `echo stop > state` must not wait in the kernel, where Ctrl-C cannot free it, behind
// an `echo start > state` that waits for a boot. config.nix and scratch files keep
// theirs, since editors rename them into each other.
func (d *containerDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	own, isOwn := ownFileNamed(name)
	if isOwn && name != configName {
		return d.c.freshChild(ctx, &d.Inode, name, own.node(d.c), fileMode(own.mode), out), 0
	}
	if name == generationsDirName {
		return d.c.freshChild(ctx, &d.Inode, name, &generationsDir{c: d.c}, syscall.S_IFDIR, out), 0
	}
	if name == rejectedName && d.c.hasRejected() {
		return d.c.freshChild(ctx, &d.Inode, name, newRejectedFile(d.c), syscall.S_IFREG, out), 0
	}
	ch := d.GetChild(name)
	if ch == nil && isOwn { // config.nix
		ch = d.NewInode(ctx, own.node(d.c), gofs.StableAttr{Mode: syscall.S_IFREG})
	}
	if ch == nil {
		return nil, syscall.ENOENT
	}
	entryOf(ctx, ch.Operations(), out)
	out.SetEntryTimeout(entryTimeout)
	return ch, 0
}

var _ = (gofs.NodeReaddirer)((*containerDir)(nil))

func (d *containerDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	var entries []fuse.DirEntry
	for _, f := range files {
		entries = append(entries, fuse.DirEntry{Name: f.name, Mode: fileMode(f.mode)})
	}
	if d.c.hasRejected() {
		entries = append(entries, fuse.DirEntry{Name: rejectedName, Mode: syscall.S_IFREG})
	}
	var scratch []string
	for name := range d.Children() {
		if !isOwnFile(name) {
			scratch = append(scratch, name)
		}
	}
	sort.Strings(scratch)
	for _, name := range scratch {
		entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG})
	}
	return gofs.NewListDirStream(entries), 0
}

var _ = (gofs.NodeCreater)((*containerDir)(nil)) // editors' and sed -i's scratch files

func (d *containerDir) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	if errno := d.c.mayWrite(); errno != 0 {
		return nil, nil, 0, errno
	}
	if d.GetChild(name) != nil || isOwnFile(name) && name != configName {
		return nil, nil, 0, syscall.EEXIST
	}
	node := newConfigFile(d.c, name == configName, mode&0o7777)
	ch := d.NewPersistentInode(ctx, node, gofs.StableAttr{Mode: syscall.S_IFREG})
	fh := node.newHandle(writes(flags), nil) // a new file is empty
	entryOf(ctx, node, out)
	return ch, fh, fuse.FOPEN_DIRECT_IO, 0
}

var _ = (gofs.NodeUnlinker)((*containerDir)(nil))

// Unlink removes a scratch file. The container's own files go with the container
// (rmdir): removing one does nothing, and it is there again at the next lookup, so
// that `rm -rf NAME` destroys a stopped container and fails with EBUSY on a live one.
func (d *containerDir) Unlink(ctx context.Context, name string) syscall.Errno {
	if errno := d.c.mayWrite(); errno != 0 {
		return errno
	}
	ch := d.GetChild(name)
	switch {
	case isOwnFile(name):
		return 0
	case ch == nil:
		return syscall.ENOENT
	}
	ch.ForgetPersistent()
	return 0
}

var _ = (gofs.NodeRenamer)((*containerDir)(nil)) // sed -i, perl -pi and vim save by renaming

// Rename of a scratch file over config.nix commits its text (build, switch), as closing
// a written config.nix does; renaming config.nix away leaves a scratch copy of it.
// Afterwards the bridge moves the node itself.
func (d *containerDir) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if newParent.EmbeddedInode() != d.EmbeddedInode() {
		return syscall.EXDEV
	}
	if flags&^uint32(unix.RENAME_NOREPLACE) != 0 {
		return syscall.EINVAL
	}
	if errno := d.c.mayWrite(); errno != 0 {
		return errno
	}
	srcInode := d.GetChild(name)
	if srcInode == nil {
		return syscall.ENOENT
	}
	src, ok := srcInode.Operations().(*configFile)
	if !ok || isOwnFile(newName) && newName != configName {
		return syscall.EPERM
	}
	var dst *configFile
	dstInode := d.GetChild(newName)
	if dstInode != nil {
		if flags&unix.RENAME_NOREPLACE != 0 {
			return syscall.EEXIST
		}
		dst, _ = dstInode.Operations().(*configFile) // own files were refused above
	}
	if dst == src {
		return 0
	}
	switch {
	case newName == configName:
		if errno := src.becomeConfig(ctx); errno != 0 {
			return errno
		}
	case src.isTheConfig():
		if errno := src.becomeScratch(); errno != 0 {
			return errno
		}
	}
	if dst != nil {
		dst.replaced()
		dstInode.ForgetPersistent()
	}
	return 0
}
