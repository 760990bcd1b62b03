package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"

	"nixcfs/ops"
)

// A verb that waits for a build (create, update, start and restart while a build
// runs, rollback) shows it as nixos-container does when stderr is no
// terminal: nix's own lines, which the session's manager passes on
// (ops.Options.BuildOutput). On a terminal it shows one line instead, redrawn in
// place from the manager's events: the derivation being built, the paths fetched,
// the derivations built of those to build and the time so far; and when the build
// fails, the end of its log.

// stderrIsTerminal tells which of the two.
func stderrIsTerminal() bool { return isatty.IsTerminal(os.Stderr.Fd()) }

// terminal is stderr on a terminal, shared by the log (daemonLogger) and the progress
// line: what the log writes while the line shows goes above it.
var terminal = &termOut{}

type termOut struct {
	mu  sync.Mutex
	bar *progressbar.ProgressBar // the line shown; nil for none
}

func (t *termOut) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bar == nil {
		return os.Stderr.Write(p)
	}
	// Kept by the bar until it draws itself again, which it does at once: the line
	// is cleared, p written, the line drawn below it.
	n, err := progressbar.Bprintf(t.bar, "%s", p)
	t.bar.Add(0)
	return n, err
}

func (t *termOut) show(bar *progressbar.ProgressBar) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bar = bar
}

// erase stops bar and clears its line.
func (t *termOut) erase(bar *progressbar.ProgressBar) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bar == bar {
		t.bar = nil
	}
	bar.Exit()
	bar.Clear()
}

// heldOutput is the manager's build output on a non-terminal: stderr, once the verb
// lets it through (create prints the addresses first, as nixos-container does).
type heldOutput struct {
	mu   sync.Mutex
	w    io.Writer
	held *bytes.Buffer // nil once released
}

func newHeldOutput(w io.Writer, hold bool) *heldOutput {
	h := &heldOutput{w: w}
	if hold {
		h.held = new(bytes.Buffer)
	}
	return h
}

func (h *heldOutput) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held != nil {
		return h.held.Write(p)
	}
	return h.w.Write(p)
}

// release writes what was held, and lets what follows through.
func (h *heldOutput) release() {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held != nil {
		h.w.Write(h.held.Bytes())
		h.held = nil
	}
}

// building runs wait, a verb's wait for a build of the container name, with the
// progress line on a terminal; idle says what the build does before nix tells
// ("evaluating"; "switching" for a switch of generation, which builds nothing). A
// build that failed shows the end of its log there (elsewhere nix's lines were shown
// as they came).
func (s *session) building(name, idle string, wait func() error) error {
	if !stderrIsTerminal() {
		return wait()
	}
	stop := showProgress(s.ctx, s.m, name, idle, os.Stderr)
	err := wait()
	stop()
	if errors.Is(err, ops.ErrBuildFailed) {
		printLogTail(os.Stderr, s.m.Layout().BuildLogPath(name), logTailLines)
	}
	return err
}

// showProgress draws the progress line of the container's builds on w until stop is
// called, which erases it.
func showProgress(ctx context.Context, m *ops.Manager, name, idle string, w io.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	events := m.Watch(ctx, name)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var line *progressLine
		show := func() {
			st, err := m.Status(name)
			if err != nil || st.BuildProgress == nil {
				return
			}
			if line == nil {
				line = newProgressLine(w, name, idle)
			}
			line.update(*st.BuildProgress)
		}
		show() // a build that began before the watch (create's first)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case ev, ok := <-events:
				switch {
				case !ok:
					if line != nil {
						line.erase()
					}
					return
				case ev.Kind == ops.EventProgress || ev.Kind == ops.EventConfig && ev.Value == ops.BuildBuilding.String():
					show()
				case ev.Kind == ops.EventConfig && line != nil: // built or failed
					line.erase()
					line = nil
				}
			case <-tick.C:
				if line != nil {
					line.bar.Add(0) // the time so far
				}
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// progressLine is one build's line, which progressbar draws and fits to the
// terminal's width. Only showProgress's goroutine draws it (no spinner ticker of the
// library's own), so that nothing redraws it once it is erased.
type progressLine struct {
	bar   *progressbar.ProgressBar
	name  string
	idle  string
	total int // the bar's maximum: -1 while nix has not said how many
}

func newProgressLine(w io.Writer, name, idle string) *progressLine {
	bar := progressbar.NewOptions(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(name+": "+idle),
		progressbar.OptionSetWidth(20),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionSetRenderBlankState(true),
	)
	terminal.show(bar)
	return &progressLine{bar: bar, name: name, idle: idle, total: -1}
}

func (l *progressLine) update(p ops.BuildProgress) {
	l.bar.Describe(progressText(l.name, l.idle, p))
	total := -1
	if !strings.HasSuffix(p.Derivations(), "/?") && p.ToBuild > 0 {
		total = p.ToBuild
	}
	if total != l.total {
		l.bar.ChangeMax(total)
		l.total = total
	}
	if total > 0 {
		l.bar.Set(min(p.Built, total))
	} else {
		l.bar.Set(p.Built)
	}
}

// erase stops the line and clears it.
func (l *progressLine) erase() { terminal.erase(l.bar) }

// progressText is the line's description: the container, and what nix does now (idle
// before it said anything).
func progressText(name, idle string, p ops.BuildProgress) string {
	var doing string
	switch {
	case p.Building != "":
		doing = "building " + shorten(p.Building, 40)
	case p.Fetched < p.ToFetch:
		doing = "fetching"
	case p.Built == 0 && p.ToBuild == 0 && p.ToFetch == 0:
		doing = idle
	default:
		doing = "finishing"
	}
	if p.ToFetch > 0 {
		doing += ", fetched " + p.Paths()
	}
	return name + ": " + doing
}

func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// logTailLines is how much of a failed build's log a terminal gets.
const logTailLines = 15

// printLogTail prints the last n lines of a build log.
func printLogTail(w io.Writer, path string, n int) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	fmt.Fprintf(w, "last lines of %s:\n", path)
	for _, l := range lines {
		fmt.Fprintf(w, "  %s\n", l)
	}
}
