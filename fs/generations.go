package fs

import (
	"context"
	"strconv"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"nixcfs/ops"
)

// generationFile is NAME/generation: the number of the container's current generation.
// Writing a number switches to that generation (nixcfs rollback) and returns when the
// switch is done: EINVAL for a generation the container does not have.
type generationFile struct{ valueFile }

func newGenerationFile(c *containerRef) *generationFile {
	n := &generationFile{valueFile{c: c, name: "generation", mode: modeRW}}
	n.value = func() (string, error) {
		st, err := c.b.Status(c.name)
		return strconv.Itoa(st.Generation) + "\n", err
	}
	return n
}

var _ = (gofs.NodeWriter)((*generationFile)(nil))

func (n *generationFile) Write(ctx context.Context, f gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := n.writableAt(f, data, off); errno != 0 {
		return 0, errno
	}
	v, ok := writtenValue(data)
	number, err := strconv.Atoi(v)
	if !ok || err != nil || number < 1 {
		return 0, n.c.refuse(n.name, data, "a generation is a number, one of those in generations/")
	}
	err = detached(ctx, func(ctx context.Context) error { return n.c.b.SwitchGeneration(ctx, n.c.name, number) })
	if err != nil {
		return 0, errnoOf(err)
	}
	return n.wrote(f, off, len(data))
}

// generationsDirName is the directory of the generations, which NAME/generations links
// to. It is not listed, so that `rm -rf NAME`, which removes a symlink rather than
// follow it, never descends into it and deletes a container's history on its way to
// rmdir NAME.
const generationsDirName = ".generations"

// generationsLink is NAME/generations, a symlink to the generations' directory.
type generationsLink struct{ gofs.Inode }

var _ = (gofs.NodeReadlinker)((*generationsLink)(nil))

func (*generationsLink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(generationsDirName), 0
}

var _ = (gofs.NodeGetattrer)((*generationsLink)(nil))

func (*generationsLink) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFLNK | 0o777
	out.Nlink = 1
	out.Size = uint64(len(generationsDirName))
	return 0
}

// generationsDir is NAME/generations/: one directory per generation of the container's
// profile, by number. rmdir N deletes one; the current one is EBUSY.
type generationsDir struct {
	gofs.Inode
	c *containerRef
}

var _ = (gofs.NodeGetattrer)((*generationsDir)(nil))

func (d *generationsDir) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	setDirAttr(out)
	out.SetTimeout(0) // generations come and go with builds
	return 0
}

var _ = (gofs.NodeReaddirer)((*generationsDir)(nil))

func (d *generationsDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	gens, err := d.c.b.Generations(d.c.name)
	if err != nil {
		return nil, errnoOf(err)
	}
	entries := make([]fuse.DirEntry, 0, len(gens))
	for _, g := range gens {
		entries = append(entries, fuse.DirEntry{Name: strconv.Itoa(g.Number), Mode: syscall.S_IFDIR})
	}
	return gofs.NewListDirStream(entries), 0
}

// generation finds generation name (a number) of the container.
func (d *generationsDir) generation(name string) (ops.Generation, syscall.Errno) {
	number, err := strconv.Atoi(name)
	if err != nil || strconv.Itoa(number) != name {
		return ops.Generation{}, syscall.ENOENT
	}
	gens, err := d.c.b.Generations(d.c.name)
	if err != nil {
		return ops.Generation{}, errnoOf(err)
	}
	for _, g := range gens {
		if g.Number == number {
			return g, 0
		}
	}
	return ops.Generation{}, syscall.ENOENT
}

var _ = (gofs.NodeLookuper)((*generationsDir)(nil))

func (d *generationsDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	g, errno := d.generation(name)
	if errno != 0 {
		return nil, errno
	}
	// Each lookup is a new inode with the generation's own number, as the container's
	// files are (freshAttr): find and cp -r compare a path's and an fd's st_ino.
	node := &generationDir{c: d.c, g: g}
	return d.c.freshChild(ctx, &d.Inode, "generations/"+name, node, syscall.S_IFDIR, out), 0
}

var _ = (gofs.NodeRmdirer)((*generationsDir)(nil))

func (d *generationsDir) Rmdir(ctx context.Context, name string) syscall.Errno {
	g, errno := d.generation(name)
	if errno != 0 {
		return errno
	}
	return errnoOf(detached(ctx, func(ctx context.Context) error {
		return d.c.b.DeleteGeneration(ctx, d.c.name, g.Number)
	}))
}

// generationDir is NAME/generations/N/: read-only `system` (its store path), `built`
// (when, ISO 8601) and, when nixcfs built it, `config.nix` (the text that did).
type generationDir struct {
	gofs.Inode
	c *containerRef
	g ops.Generation
}

var _ = (gofs.NodeGetattrer)((*generationDir)(nil))

func (d *generationDir) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	setDirAttr(out)
	return 0
}

// files are the generation's files and their texts.
func (d *generationDir) files() map[string]func() (string, error) {
	files := map[string]func() (string, error){
		"system": func() (string, error) { return d.g.System + "\n", nil },
		"built":  func() (string, error) { return d.g.Built.UTC().Format(time.RFC3339) + "\n", nil },
	}
	if d.g.HasConfig {
		files[configName] = func() (string, error) {
			text, err := d.c.b.GenerationConfig(d.c.name, d.g.Number)
			return string(text), err
		}
	}
	return files
}

var _ = (gofs.NodeReaddirer)((*generationDir)(nil))

func (d *generationDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	var entries []fuse.DirEntry
	for _, name := range []string{"system", "built", configName} {
		if _, ok := d.files()[name]; ok {
			entries = append(entries, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG})
		}
	}
	return gofs.NewListDirStream(entries), 0
}

var _ = (gofs.NodeLookuper)((*generationDir)(nil))

func (d *generationDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	value, ok := d.files()[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	mode := uint32(modeRO)
	if name == configName {
		mode = modeSecretRO
	}
	path := "generations/" + strconv.Itoa(d.g.Number) + "/" + name
	node := &valueFile{c: d.c, name: path, mode: mode, value: value}
	return d.c.freshChild(ctx, &d.Inode, path, node, syscall.S_IFREG, out), 0
}

// rejectedName is the file that keeps the text a switch of generation replaced, when
// it was no generation's (the status says so); it exists only then.
const rejectedName = "config.nix.rejected"

func newRejectedFile(c *containerRef) *valueFile {
	return &valueFile{c: c, name: rejectedName, mode: modeSecretRO, value: func() (string, error) {
		text, err := c.b.RejectedConfig(c.name)
		return string(text), err
	}}
}

// hasRejected tells whether the container has a rejected text to show.
func (c *containerRef) hasRejected() bool {
	_, err := c.b.RejectedConfig(c.name)
	return err == nil
}
