package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A crash (kill -9, a power cut) may cut an operation on a container's files short.
// The operations that would then leave a half-made container mark their intent: the
// file DataDir/NAME/intent names the operation, and the process holds an flock on
// DataDir/NAME/lock until it is over. The same lock keeps the builds of one container
// apart across processes (the command line beside the mount). A Manager that starts
// (recover) finds the intents whose lock nobody holds and ends what each began.

type intentKind string

const (
	intentCreate  intentKind = "create"  // undone if it did not reach its conf file
	intentBuild   intentKind = "build"   // reported failed
	intentSwitch  intentKind = "switch"  // reported failed, unless the profile switched
	intentDestroy intentKind = "destroy" // finished
)

// opLock is a container's operation lock, held by this process.
type opLock struct {
	l      Layout
	name   string
	f      *fileLock
	marked bool   // an intent of its own is on disk
	id     string // its id (intent)
}

func (l Layout) lockPath(name string) string   { return filepath.Join(l.DataPath(name), "lock") }
func (l Layout) intentPath(name string) string { return filepath.Join(l.DataPath(name), "intent") }

// lockOp takes the container's operation lock, waiting for another process's
// operation (or another of this process's) to end, or until ctx ends.
func (l Layout) lockOp(ctx context.Context, name string) (*opLock, error) {
	return pollLock(ctx, func() (*opLock, bool, error) { return l.tryLockOpOnce(name) })
}

// tryLockOp takes the container's operation lock if no process holds it. Another
// process's start probes the lock by taking it for an instant (otherHolds): one found
// taken is tried again, for a few milliseconds, before it counts as held.
func (l Layout) tryLockOp(name string) (*opLock, bool, error) {
	for try := 1; ; try++ {
		op, ok, err := l.tryLockOpOnce(name)
		if ok || err != nil || try == 4 {
			return op, ok, err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (l Layout) tryLockOpOnce(name string) (*opLock, bool, error) {
	path := l.lockPath(name)
	heldOps.Lock()
	defer heldOps.Unlock()
	f, ok, err := tryLockFile(path)
	if !ok {
		return nil, false, err
	}
	heldOps.n[path]++
	return &opLock{l: l, name: name, f: f}, true, nil
}

// heldOps counts the operation locks this process holds, by lock file. flock(2) keeps
// two open files of one process apart as it keeps two processes, so only this count
// tells a wait for another process's operation (waitForeign) that the holder is this
// process itself: a build it queued, which WaitBuilt waits for or not.
var heldOps = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

// otherHolds tells whether another process holds the container's operation lock. It
// creates nothing (a destroyed container's directory stays gone), and holds the lock
// only for an instant, under heldOps, so that this process's own takers wait for it
// rather than fail.
func (l Layout) otherHolds(name string) (bool, error) {
	path := l.lockPath(name)
	heldOps.Lock()
	defer heldOps.Unlock()
	if heldOps.n[path] > 0 {
		return false, nil // this process's own
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	defer f.Close() // which releases a lock taken here
	locked, err := flockNB(f)
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", path, err)
	}
	return !locked, nil
}

// release releases the lock, leaving the intent as it is.
func (o *opLock) release() {
	path := o.l.lockPath(o.name)
	heldOps.Lock()
	defer heldOps.Unlock()
	o.f.unlock()
	if heldOps.n[path]--; heldOps.n[path] <= 0 {
		delete(heldOps.n, path)
	}
}

// clearData removes what nixcfs kept of an earlier container of that name (removed by
// another program), but the lock file, which the caller holds.
func (l Layout) clearData(name string) error {
	entries, err := os.ReadDir(l.DataPath(name))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != filepath.Base(l.lockPath(name)) {
			if err := os.RemoveAll(filepath.Join(l.DataPath(name), e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// mark writes the intent of the operation about to begin, with the generation of the
// container's profile then: a build that a crash cut off after it switched the
// profile did its work.
func (o *opLock) mark(kind intentKind, generation int, hash string) error {
	id := fmt.Sprintf("%d.%d.%d", os.Getpid(), time.Now().UnixNano(), markCount.Add(1))
	if hash == "" {
		hash = "-"
	}
	text := fmt.Sprintf("%s %d %s %s\n", kind, generation, hash, id)
	if err := writeFileAtomic(o.l.intentPath(o.name), []byte(text), 0o600); err != nil {
		return fmt.Errorf("mark %s of %s: %w", kind, o.name, err)
	}
	o.marked, o.id = true, id
	return nil
}

// markCount makes the ids of marks unique within this process.
var markCount atomic.Uint64

// done removes the intent it marked (the operation is over) and releases the lock. An
// intent it did not mark, a dead process's, stays for recovery.
func (o *opLock) done() {
	if o == nil {
		return
	}
	if o.marked {
		os.Remove(o.l.intentPath(o.name))
	}
	o.release()
}

// intentMark tells one marking of an intent from another: each is a new file (renamed
// into place), with its time and text; a file's time alone is as coarse as the
// kernel's clock tick, which two marks may share.
type intentMark struct {
	ino  uint64
	at   time.Time
	text string
}

// readIntentMark is the mark of the container's intent; the zero mark when there is
// none.
func (l Layout) readIntentMark(name string) intentMark {
	f, err := os.Open(l.intentPath(name))
	if err != nil {
		return intentMark{}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return intentMark{}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return intentMark{}
	}
	text, _ := io.ReadAll(io.LimitReader(f, 4096))
	return intentMark{ino: st.Ino, at: fi.ModTime(), text: string(text)}
}

// intent is what a mark records: the operation, the profile's generation then, the
// hash of the text it builds ("" for none) and the operation's own id, which its
// build's outcome records (saveBuildOutcome): two builds of one text are told apart.
type intent struct {
	kind       intentKind
	generation int
	hash, id   string
}

// kind is the intent the mark records.
func (i intentMark) kind() intentKind { return i.of().kind }

// of is what the mark says: KIND GENERATION HASH ID, "-" for no hash (an intent
// marked by an older nixcfs ends after the hash, or without it).
func (i intentMark) of() intent {
	fields := strings.Fields(i.text)
	for len(fields) < 4 {
		fields = append(fields, "")
	}
	generation, _ := strconv.Atoi(fields[1])
	hash := fields[2]
	if hash == "-" {
		hash = ""
	}
	return intent{intentKind(fields[0]), generation, hash, fields[3]}
}

// building tells whether the intent is of a build: a create's first, an update's, a
// switch of generation.
func (k intentKind) building() bool {
	return k == intentBuild || k == intentSwitch || k == intentCreate
}

// errCutOff is the reason of a build a crash cut off, as status shows it.
var errCutOff = errors.New("the build was cut off: nixcfs stopped during it; write config.nix or run nixcfs update to build again")

// recover ends the operations that a crashed process left half done, and sweeps what
// such a process leaves behind: at start, before the registry is read.
func (m *Manager) recover(ctx context.Context) {
	entries, err := os.ReadDir(m.l.DataDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.log.Warn().Err(err).Msg("recovery")
	}
	for _, e := range entries {
		if name := e.Name(); e.IsDir() && ValidateName(name) == nil {
			if err := m.recoverContainer(ctx, name, true); err != nil {
				m.log.Warn().Err(err).Str("container", name).Msg("recovery")
			}
		}
	}
	m.sweepOutLinks()
	m.sweepTemps()
}

// sweepTemps removes the temporary files of atomic writes into the conf directory that
// a crash left: a minute old, so that another process's write in progress keeps its.
func (m *Manager) sweepTemps() {
	temps, _ := filepath.Glob(filepath.Join(m.l.ConfDir, ".*.conf.tmp*"))
	for _, t := range temps {
		if fi, err := os.Lstat(t); err == nil && time.Since(fi.ModTime()) > time.Minute {
			os.Remove(t)
		}
	}
}

// recoverContainer ends the operation on the container that a dead process left half
// done. At a start (atStart) it also forgets what nixcfs kept of a container removed
// by another program, and reports a text written and never built as cut off; a
// running Manager (a start that followed a build of a process that died) leaves both
// alone: a text written since may be queued here.
func (m *Manager) recoverContainer(ctx context.Context, name string, atStart bool) error {
	lock, ok, err := m.l.tryLockOp(name)
	if !ok {
		return err // another process works on it: its operation is not cut off
	}
	defer lock.release()
	_, confErr := os.Stat(m.l.ConfPath(name))
	hasConf := confErr == nil
	in := m.l.readIntentMark(name).of()
	kind, gen, hash := in.kind, in.generation, in.hash
	switch {
	case kind == intentDestroy, kind == intentCreate && !hasConf:
		m.log.Warn().Str("container", name).Str("intent", string(kind)).Msg("finishing what a crash cut off")
		return m.removeAll(ctx, name)
	case kind == intentCreate || kind == intentBuild || kind == intentSwitch:
		_, now := systemGeneration(m.l.SystemLink(name))
		if kind != intentSwitch && now > gen || kind == intentSwitch && now == gen {
			m.l.saveBuildOutcome(name, hash, in.id, nil) // only its record was cut off
			break
		}
		m.log.Warn().Str("container", name).Str("intent", string(kind)).Msg("a build was cut off")
		m.l.saveBuildOutcome(name, hash, in.id, errCutOff)
	case kind == "" && !hasConf && atStart:
		// What nixcfs kept of a container removed by another program.
		return os.RemoveAll(m.l.DataPath(name))
	}
	os.Remove(m.l.intentPath(name))
	if written, ok := m.l.unbuilt(name); ok && hasConf && atStart {
		m.log.Warn().Str("container", name).Msg("a text written was never built")
		m.l.saveBuildOutcome(name, written, "", errCutOff)
	}
	return nil
}

// sweepOutLinks removes the out-links of builds whose process is gone, and
// nix-build's temporary links beside them: each holds a system in the store that no
// profile records. A live build's links, even mid-rename, stay.
func (m *Manager) sweepOutLinks() {
	links, _ := filepath.Glob(filepath.Join(m.l.GCRootDir, "*", outLinkPrefix+"*"))
	for _, link := range links {
		pid := outLinkPID(filepath.Base(link))
		if pid == 0 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, fs.ErrNotExist) {
			os.Remove(link)
		}
	}
}
