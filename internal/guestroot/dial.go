package guestroot

import (
	"context"
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// DialUnix connects to the stream socket at name inside the root tree at guestRoot;
// for a running container that is /proc/LEADER/root, so that the guest's own mounts
// (its /run) are seen. See (*Root).DialUnix.
func DialUnix(ctx context.Context, guestRoot, name string) (net.Conn, error) {
	r, err := Open(guestRoot)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.DialUnix(ctx, name)
}

// DialUnix connects to the stream socket at name inside the tree, name resolved like
// every other path here: a symlink leading out (the guest's
// run/nixcfs/init.sock -> /run/host-daemon.sock, which connect(2) on
// /proc/LEADER/root/run/nixcfs/init.sock would follow to the host's socket) is
// ErrEscape.
//
// The socket is opened as an O_PATH handle, checked to be a socket, and connected to
// through the handle's /proc link, which names that inode and is not resolved again.
// Chrooting a thread into the tree would also keep absolute symlinks inside, but it
// would follow magic links in the guest's /proc (a host process entered into the
// container with nsenter has its cwd and descriptors there) and costs a thread per
// dial; this way every host access to a tree goes through the same openat2 rules.
func (r *Root) DialUnix(ctx context.Context, name string) (net.Conn, error) {
	rel, err := inTree(name)
	if err != nil {
		return nil, pathError("dial", name, err)
	}
	fd, err := r.open(rel, unix.O_PATH)
	if err != nil {
		return nil, pathError("dial", name, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, pathError("dial", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil, pathError("dial", name, fmt.Errorf("not a socket: %w", unix.ENOTSOCK))
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", fmt.Sprintf("/proc/thread-self/fd/%d", fd))
	if err != nil {
		// The net error names the /proc link; the name in the tree says more.
		if opErr := (*net.OpError)(nil); errors.As(err, &opErr) {
			err = opErr.Err
		}
		return nil, pathError("dial", name, err)
	}
	return conn, nil
}
