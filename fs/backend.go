// Package fs serves NixOS containers as a FUSE filesystem: one directory per container,
// one value per file. The nodes translate file operations into calls on a Backend
// (ops.Manager) and its errors into errnos, and own the text of every file; what a
// container is and does is the Backend's.
package fs

import (
	"context"
	"os"
	"time"

	"nixcfs/ops"
)

// Backend is what the filesystem needs of ops.Manager.
type Backend interface {
	List() []string
	Exists(name string) bool
	State(name string) (ops.State, error)
	Status(name string) (ops.Status, error)
	// Watch streams the changes of one container, or of all ("").
	Watch(ctx context.Context, name string) <-chan ops.Event

	Create(ctx context.Context, name string, o ops.CreateOptions) (string, error)
	Destroy(ctx context.Context, name string) error

	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name string) error
	Restart(ctx context.Context, name string) error
	Reload(ctx context.Context, name string) error
	Terminate(ctx context.Context, name string) error

	ReadConfig(name string) ([]byte, error)
	// ConfigInfo is the configuration's size and time; os.ErrNotExist when it has none.
	ConfigInfo(name string) (size int64, mtime time.Time, err error)
	SetConfig(ctx context.Context, name string, text []byte) error
	// WriteConfig is SetConfig that returns once the text is written and its build
	// queued; the build's outcome shows in Status and the events.
	WriteConfig(ctx context.Context, name string, text []byte) error
	SetAddresses(ctx context.Context, name, hostAddr, localAddr string) error
	SetAutostart(ctx context.Context, name string, on bool) error
	// NoteError puts a refusal the filesystem made (a value a file does not take) in
	// the container's status and events, beside the backend's own.
	NoteError(name string, err error)
	// Ports is the container's port forwards as written; SetPorts replaces them, and
	// CheckPorts tells whether it would, writing nothing.
	Ports(name string) ([]string, error)
	SetPorts(ctx context.Context, name string, forwards []string) error
	CheckPorts(name string, forwards []string) error

	// Generations lists the container's profile generations; GenerationConfig is the
	// text that built one (os.ErrNotExist when nixcfs did not); SwitchGeneration makes
	// one current, live, and DeleteGeneration removes one. RejectedConfig is the text a
	// switch replaced when it was no generation's (os.ErrNotExist when none).
	Generations(name string) ([]ops.Generation, error)
	GenerationConfig(name string, n int) ([]byte, error)
	SwitchGeneration(ctx context.Context, name string, n int) error
	DeleteGeneration(ctx context.Context, name string, n int) error
	RejectedConfig(name string) ([]byte, error)

	// OpenBuildLog opens the last build's log, growing while a build runs;
	// os.ErrNotExist when there was none.
	OpenBuildLog(name string) (*os.File, error)
	// OpenLog starts a reader of the container's journal; LogSize is its size now.
	OpenLog(ctx context.Context, name string) (ops.LogReader, error)
	LogSize(ctx context.Context, name string) (int64, error)

	// Limits are the unit's resource limits as systemd holds them. SetLimits writes
	// some by key (ops.LimitKeys), in cgroup v2's syntax: all, or none (ErrInvalid).
	Limits(ctx context.Context, name string) (ops.Limits, error)
	SetLimits(ctx context.Context, name string, values map[string]string) error
	// Stats are the container's usage now, zero while it is down.
	Stats(ctx context.Context, name string) (ops.Stats, error)
}

var _ Backend = (*ops.Manager)(nil) // the real thing
