package fs

import (
	"context"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
)

// stateFile is NAME/state: reads one word (creating, stopped, starting, running,
// stopping, failed). A written word acts inside write(2), so `echo start > state`
// fails with the error: start returns once the container is up, stop once it is down,
// and Ctrl-C makes the write return EINTR while the operation goes on.
type stateFile struct{ valueFile }

func newStateFile(c *containerRef) *stateFile {
	n := &stateFile{valueFile{c: c, name: "state", mode: modeRW}}
	n.value = func() (string, error) {
		st, err := c.b.State(c.name)
		return st.String() + "\n", err
	}
	return n
}

// StateWords are the words a container's state file takes, in the order its
// documentation gives them; the command line's completions offer them.
func StateWords() []string { return []string{"start", "stop", "restart", "reload", "terminate"} }

// actions are the words a writer may use (StateWords). Each is idempotent, as it must
// be: Go clients retry writes that return EINTR.
func (n *stateFile) actions() map[string]func(context.Context, string) error {
	b := n.c.b
	return map[string]func(context.Context, string) error{
		"start": b.Start, "stop": b.Stop, "restart": b.Restart,
		"reload": b.Reload, "terminate": b.Terminate,
	}
}

var _ = (gofs.NodeWriter)((*stateFile)(nil))

// Write acts on the word.
func (n *stateFile) Write(ctx context.Context, f gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := n.writableAt(f, data, off); errno != 0 {
		return 0, errno
	}
	word, ok := writtenValue(data)
	if !ok {
		return 0, n.c.refuse(n.name, data, notOneValue)
	}
	act := n.actions()[word]
	if act == nil {
		w := StateWords()
		return 0, n.c.refuse(n.name, data, "the words are "+strings.Join(w[:len(w)-1], ", ")+" and "+w[len(w)-1])
	}
	if err := detached(ctx, func(ctx context.Context) error { return act(ctx, n.c.name) }); err != nil {
		return 0, errnoOf(err)
	}
	return n.wrote(f, off, len(data))
}
