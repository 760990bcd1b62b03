package ops

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// A build's nix commands write their output through a buildLog: into the build log
// (LogDir/NAME.build.log) as nix wrote it, so that it stays nix's readable text and
// grows while nix runs; line by line into the Manager's extra writer
// (Options.BuildOutput), if it has one; and into nixProgress, whose reading is kept
// in the record of the container's running build (noteProgress) and published as
// build-progress events, at most a few a second.

// buildOutput says where a build's output goes: its log, and whom to tell of its
// progress.
type buildOutput struct {
	path     string
	progress func(BuildProgress) // nil: nobody asks
}

// output is where the builds of a container go.
func (m *Manager) output(name string) buildOutput {
	return buildOutput{path: m.l.BuildLogPath(name), progress: func(p BuildProgress) { m.reg.noteProgress(name, p) }}
}

// maxLogLine bounds the part of a line kept until its newline comes; a longer one is
// passed on in pieces.
const maxLogLine = 64 * 1024

// buildLog is one build's log file, open for its nix commands.
type buildLog struct {
	f      *os.File
	lines  nixLines
	report func(BuildProgress)
}

// openLog truncates the log and opens it for a build's output.
func (b *builder) openLog(out buildOutput, mode os.FileMode) (*buildLog, error) {
	f, err := os.OpenFile(out.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return nil, err
	}
	return &buildLog{f: f, lines: nixLines{extra: b.extra}, report: out.progress}, nil
}

// Write is nix's output: into the file at once, and, a whole line at a time, to the
// extra writer and the progress. It takes every byte, even when the file cannot: nix
// must never wait on its stderr for a log that cannot grow (a full disk).
func (l *buildLog) Write(p []byte) (int, error) {
	l.f.Write(p)
	if l.lines.feed(p) && l.report != nil {
		l.report(l.lines.nix.p)
	}
	return len(p), nil
}

// nixLines cuts nix's output into lines, for the extra writer and the progress.
type nixLines struct {
	extra     *lineWriter // nil: none
	skipNotes bool        // keep nixcfs's own lines of a log ("$ nix-build ...") from extra
	nix       nixProgress
	partial   []byte // the end of the output, not yet a whole line
}

// feed takes output and tells whether the progress moved.
func (n *nixLines) feed(p []byte) bool {
	n.partial = append(n.partial, p...)
	moved, start := false, 0
	for {
		i := bytes.IndexByte(n.partial[start:], '\n')
		if i < 0 {
			break
		}
		moved = n.lineDone(n.partial[start:start+i+1]) || moved
		start += i + 1
	}
	n.partial = n.partial[:copy(n.partial, n.partial[start:])]
	if len(n.partial) > maxLogLine {
		moved = n.lineDone(n.partial) || moved
		n.partial = n.partial[:0]
	}
	return moved
}

func (n *nixLines) lineDone(line []byte) bool {
	if n.extra != nil && !(n.skipNotes && isNote(line)) {
		n.extra.Write(line)
	}
	return n.nix.line(strings.TrimRight(string(line), "\r\n"))
}

// flush passes on a last line without a newline.
func (n *nixLines) flush() {
	if len(n.partial) > 0 {
		n.lineDone(append(n.partial, '\n'))
		n.partial = nil
	}
}

// isNote tells nixcfs's own lines of a log (note) from nix's.
func isNote(line []byte) bool {
	return bytes.HasPrefix(line, []byte("$ ")) || bytes.HasPrefix(line, []byte("nixcfs: "))
}

// note writes nixcfs's own line into the log only: the extra writer gets nix's.
func (l *buildLog) note(format string, a ...any) {
	fmt.Fprintf(l.f, format, a...)
}

// ended is told that a nix command succeeded: the derivation it built last is built.
func (l *buildLog) ended() {
	if l.lines.nix.p.Building != "" {
		l.lines.nix.p = l.lines.nix.end()
		if l.report != nil {
			l.report(l.lines.nix.p)
		}
	}
}

func (l *buildLog) Name() string { return l.f.Name() }

// Close passes on a last line without a newline, and closes the file.
func (l *buildLog) Close() error {
	l.lines.flush()
	return l.f.Close()
}

// lineWriter is Options.BuildOutput, which every build writes whole lines to.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func newLineWriter(w io.Writer) *lineWriter {
	if w == nil {
		return nil
	}
	return &lineWriter{w: w}
}

func (lw *lineWriter) Write(line []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(line)
}

// progressInterval is the least time between two build-progress events of a build;
// the last change always goes out.
const progressInterval = 250 * time.Millisecond

// noteProgress keeps a container's running build's progress for Status, and publishes
// it: at once if the last event is old enough, else once it is.
func (r *registry) noteProgress(name string, p BuildProgress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.records[name]
	if c == nil || c.running == nil {
		return
	}
	run := c.running
	p.Since = run.progress.Since
	run.progress = p
	if run.progressDue {
		return // the event scheduled takes the latest progress
	}
	wait := progressInterval - time.Since(run.progressSent)
	if wait <= 0 {
		r.publishProgressLocked(c, run)
		return
	}
	run.progressDue = true
	time.AfterFunc(wait, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		run.progressDue = false
		if c.running == run && r.records[name] == c {
			r.publishProgressLocked(c, run)
		}
	})
}

func (r *registry) publishProgressLocked(c *record, run *buildRun) {
	run.progressSent = time.Now()
	r.publishLocked(c.name, EventProgress, run.progress.String())
}
