package ops

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// LogReader is one reader's copy of a container's journal (journalctl -u
// container@NAME). Refresh appends what the journal gained since the last one.
type LogReader interface {
	io.ReaderAt
	Size() int64
	Refresh(ctx context.Context) error
	Close() error
}

// journalCopy is a LogReader whose text lives in an unlinked temporary file, so that
// a reader costs a file, not memory, however long the journal is. journalctl's cursor
// file tells the next run where the last one stopped.
type journalCopy struct {
	unit   string
	dir    string   // private: the cursor file
	f      *os.File // the text so far, unlinked
	mu     sync.Mutex
	size   int64
	closed bool
}

// OpenLog starts a reader of the container's journal with its text so far.
func (m *Manager) OpenLog(ctx context.Context, name string) (LogReader, error) {
	if _, err := m.reg.lookup(name); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nixcfs-log-")
	if err != nil {
		return nil, fmt.Errorf("journal of %s: %w", name, err)
	}
	f, err := os.CreateTemp(dir, "text")
	if err == nil {
		err = os.Remove(f.Name())
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("journal of %s: %w", name, err)
	}
	j := &journalCopy{unit: UnitName(name), dir: dir, f: f}
	if err := j.Refresh(ctx); err != nil {
		j.Close()
		return nil, err
	}
	return j, nil
}

// Refresh appends the journal's entries since the last refresh.
func (j *journalCopy) Refresh(ctx context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return os.ErrClosed
	}
	cmd := journalctl(ctx, j.unit, "--cursor-file="+filepath.Join(j.dir, "cursor"))
	cmd.Stdout = &fileAppender{f: j.f, off: &j.size}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("journalctl -u %s: %w", j.unit, err)
	}
	return nil
}

func (j *journalCopy) Size() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.size
}

func (j *journalCopy) ReadAt(p []byte, off int64) (int, error) { return j.f.ReadAt(p, off) }

func (j *journalCopy) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	j.f.Close()
	return os.RemoveAll(j.dir)
}

// fileAppender writes at the end of f, counting.
type fileAppender struct {
	f   *os.File
	off *int64
}

func (a *fileAppender) Write(p []byte) (int, error) {
	n, err := a.f.WriteAt(p, *a.off)
	*a.off += int64(n)
	return n, err
}

// LogSize is the size of the container's journal text right now, counted as
// journalctl writes it, never held.
func (m *Manager) LogSize(ctx context.Context, name string) (int64, error) {
	if _, err := m.reg.lookup(name); err != nil {
		return 0, err
	}
	var n countingWriter
	cmd := journalctl(ctx, UnitName(name))
	cmd.Stdout = &n
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("journalctl -u %s: %w", UnitName(name), err)
	}
	return int64(n), nil
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// journalctl is the one command that reads a unit's journal, run outside any mount of
// ours (its working directory is /).
func journalctl(ctx context.Context, unit string, extra ...string) *exec.Cmd {
	args := append([]string{"-u", unit, "--no-pager", "-q", "-o", "short-iso"}, extra...)
	cmd := exec.CommandContext(ctx, "journalctl", args...)
	cmd.Dir = "/"
	return cmd
}

// stepError is the last error a step of nixcfs's unit template logged for the unit
// since then ("nixcfs: prestart NAME: ..."), which says more than systemd's result; ""
// for none.
func stepError(ctx context.Context, unit string, since time.Time) string {
	out, err := journalctl(ctx, unit, "-n", "30", "-o", "cat", fmt.Sprintf("--since=@%d", since.Unix())).Output()
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if msg, ok := strings.CutPrefix(lines[i], "nixcfs: "); ok {
			return msg
		}
	}
	return ""
}
