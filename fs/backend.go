// Package fs serves NixOS containers as a FUSE filesystem (SPEC.md): one directory per
// container, one value per file. The nodes translate file operations into calls on a
// Backend (ops.Manager) and its errors into errnos, and nothing else.
package fs

import (
	"context"

	"nixcfs/ops"
)

// Backend is the part of ops.Manager the filesystem calls.
type Backend interface {
	List() []string
	Exists(name string) bool
	State(name string) (string, error)
	Status(name string) (ops.Status, error)
	Layout() ops.Layout

	Create(ctx context.Context, name string, o ops.CreateOptions) (string, error)
	Destroy(ctx context.Context, name string) error

	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name string) error
	Restart(ctx context.Context, name string) error
	Reload(ctx context.Context, name string) error
	Terminate(ctx context.Context, name string) error

	ReadConfig(name string) ([]byte, error)
	SetConfig(ctx context.Context, name string, text []byte) error
	SetAddresses(ctx context.Context, name, hostAddr, localAddr string) error
	SetAutostart(ctx context.Context, name string, on bool) error

	Watch(ctx context.Context) <-chan ops.Event
}

var _ Backend = (*ops.Manager)(nil) // the real thing
