package ops

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// record is what the Manager knows of one container. Its fields are guarded by the
// registry's mu, except unitSlot, which is a lock of its own.
type record struct {
	name        string
	conf        Conf // as last read or written
	declarative bool
	announced   bool // "created" was published, so forgetting it publishes "removed"
	creating    bool // its first build runs
	destroying  bool // Destroy has begun: no new build or start
	build       BuildState
	queued      uint64         // builds queued so far, the last one's ticket
	served      uint64         // the ticket of the last build that took its turn
	finished    uint64         // the ticket of the last build that ended
	running     *buildRun      // the build in progress
	foreign     *BuildProgress // another process's build, while a start here waits for it
	foreignPrev BuildState     // the build state before it
	last        *buildRun      // the one before, for WaitBuilt
	lastErr     string         // the `error` of its status
	buildErr    string         // the reason its last build failed, which a later success elsewhere leaves
	notice      string         // the `notice` of its status: news that is no failure
	limits      *Limits        // as systemd last said them, at limitsAt
	limitsAt    time.Time
	// textMu orders writes of its configuration.nix with the builds they queue, so
	// that builds run in the order their texts were written. Taken before mu.
	textMu sync.Mutex
	ops    map[*unitOp]struct{} // unit operations in progress
	// unitSlot keeps Start and Restart apart from Destroy, which would otherwise race
	// prestart recreating the root tree it removes.
	unitSlot slot
}

func newRecord(name string) *record {
	return &record{name: name, unitSlot: newSlot(), ops: map[*unitOp]struct{}{}}
}

// slot is a lock that a caller takes with a deadline (lock) or only if it is free
// (tryLock).
type slot chan struct{}

func newSlot() slot { return make(slot, 1) }

func (s slot) lock(ctx context.Context) (unlock func(), err error) {
	select {
	case s <- struct{}{}:
		return func() { <-s }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (s slot) tryLock() (unlock func(), ok bool) {
	select {
	case s <- struct{}{}:
		return func() { <-s }, true
	default:
		return nil, false
	}
}

// registry is the Manager's memory: every container's record, its unit's state as
// systemd last reported it, and the readers of events. One mutex guards it all; it is
// never held across a D-Bus call, a build or a file read.
type registry struct {
	log zerolog.Logger

	mu       sync.Mutex
	records  map[string]*record
	units    map[string]unitState // by container name, also for units without a conf file
	seq      map[string]uint64    // counts each container's unit state reports
	watchers map[chan Event]string
	changed  *sync.Cond // broadcast on every change, for waitFor
}

func newRegistry(log zerolog.Logger) *registry {
	r := &registry{log: log, records: map[string]*record{}, units: map[string]unitState{},
		seq: map[string]uint64{}, watchers: map[chan Event]string{}}
	r.changed = sync.NewCond(&r.mu)
	return r
}

func (r *registry) stateLocked(c *record) State {
	return stateOf(r.units[c.name].ActiveState, c.creating)
}

// names are the known containers, sorted.
func (r *registry) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.records))
	for n := range r.records {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// lookup finds a container that exists and is not being destroyed.
func (r *registry) lookup(name string) (*record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookupLocked(name)
}

func (r *registry) lookupLocked(name string) (*record, error) {
	c := r.records[name]
	if c == nil || c.destroying {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return c, nil
}

// lookupForChange is lookup for operations that change a container: declarative ones
// belong to the host's NixOS configuration and are refused.
func (r *registry) lookupForChange(name string) (*record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.lookupLocked(name)
	if err == nil && c.declarative {
		return nil, fmt.Errorf("%w: %s", ErrDeclarative, name)
	}
	return c, err
}

// announceLocked tells watchers that c now exists.
func (r *registry) announceLocked(c *record) {
	c.announced = true
	r.publishLocked(c.name, EventContainer, ContainerCreated)
}

// forgetLocked is the one place a container leaves the registry: if c is still the
// record of its name, it goes, its builds end (a container removed by another program
// must not have its profile made again), and watchers that saw it come see it go.
func (r *registry) forgetLocked(c *record) {
	if r.records[c.name] != c {
		return
	}
	c.destroying = true
	if c.running != nil {
		c.running.cancel()
	}
	delete(r.records, c.name)
	if c.announced {
		r.log.Info().Str("container", c.name).Msg("container removed")
		r.publishLocked(c.name, EventContainer, ContainerRemoved)
	}
	r.changed.Broadcast()
}

// waitFor blocks until cond, evaluated under mu after every change, holds, or ctx
// ends. It is the one way to wait for the registry.
func (r *registry) waitFor(ctx context.Context, cond func() bool) error {
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.changed.Broadcast()
		r.mu.Unlock()
	})
	defer stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for !cond() {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		r.changed.Wait()
	}
	return nil
}

// setConfLocked makes conf the container's conf file as known, and tells watchers of
// the keys it changed. Both ways the registry learns of a conf file, an edit of
// nixcfs's and inotify's news of any, come here: whichever is first tells, once.
func (r *registry) setConfLocked(c *record, conf Conf) {
	for _, k := range confEvents {
		if c.conf.Get(k.key) != conf.Get(k.key) {
			r.publishLocked(c.name, k.kind, conf.Get(k.key))
		}
	}
	c.conf = conf
	r.changed.Broadcast()
}

// noteError records the readable reason of a failure for the container's status, or
// clears it (nil), and tells watchers of a new one.
func (r *registry) noteError(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.records[name]; c != nil {
		r.setErrorLocked(c, err)
	}
	r.changed.Broadcast()
}

// setErrorLocked records err as the container's error; nil clears it, down to the
// reason its last build failed, which stands while the failed text is the one written.
func (r *registry) setErrorLocked(c *record, err error) {
	msg := c.buildErr
	if err != nil {
		msg = oneLine(err.Error())
	}
	if c.lastErr == msg {
		return
	}
	c.lastErr = msg
	if msg != "" {
		r.log.Warn().Str("container", c.name).Str("error", msg).Msg("operation failed")
		r.publishLocked(c.name, EventError, msg)
	}
}

// noteNotice records news about the container that is no failure (where a replaced
// text is kept), for its status and watchers; "" clears it.
func (r *registry) noteNotice(name, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.records[name]; c != nil && c.notice != msg {
		c.notice = msg
		if msg != "" {
			r.publishLocked(name, EventNotice, msg)
		}
		r.changed.Broadcast()
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// setUnitLocked records a unit's state and tells watchers when the container's state
// word moved. The leader was looked up by the caller, outside the lock.
func (r *registry) setUnitLocked(name string, st unitState) {
	c := r.records[name]
	var before State
	if c != nil {
		before = r.stateLocked(c)
	}
	r.units[name] = st
	r.seq[name]++
	if c != nil {
		if after := r.stateLocked(c); after != before {
			r.log.Info().Str("container", name).Stringer("state", after).Str("unit_result", st.Result).Msg("state changed")
			r.publishLocked(name, EventState, after.String())
		}
	}
	r.changed.Broadcast()
}

// watch streams the changes of one container (name), or of all (""), from now on
// until ctx ends. A reader that falls more than its buffer behind loses events rather
// than holding up the manager.
func (r *registry) watch(ctx context.Context, name string) <-chan Event {
	ch := make(chan Event, 1024)
	r.mu.Lock()
	r.watchers[ch] = name
	r.mu.Unlock()
	context.AfterFunc(ctx, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, ok := r.watchers[ch]; ok {
			delete(r.watchers, ch)
			close(ch)
		}
	})
	return ch
}

func (r *registry) publishLocked(name string, kind EventKind, value string) {
	ev := Event{Time: time.Now(), Name: name, Kind: kind, Value: value}
	for ch, only := range r.watchers {
		if only != "" && only != name {
			continue
		}
		select {
		case ch <- ev:
		default:
			r.log.Warn().Str("container", name).Msg("event reader too slow; event dropped")
		}
	}
}

// closeWatchers ends every stream (the manager closes).
func (r *registry) closeWatchers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch := range r.watchers {
		delete(r.watchers, ch)
		close(ch)
	}
}
