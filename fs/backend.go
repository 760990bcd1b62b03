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
	SetAddresses(ctx context.Context, name, hostAddr, localAddr string) error
	SetAutostart(ctx context.Context, name string, on bool) error

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
