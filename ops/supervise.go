package ops

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"nixcfs/internal/crash"
)

// unitState is what systemd says of a container's unit, kept current from its
// PropertiesChanged signals.
type unitState struct {
	ActiveState string
	SubState    string
	Since       time.Time
	MainPID     int // systemd-nspawn
	Leader      int // the container's init, nspawn's child
	Result      string
}

// supervisor talks to systemd over D-Bus (no systemctl): one connection for calls and
// one subscription for signals.
type supervisor struct {
	conn    *sd.Conn
	updates chan *sd.PropertiesUpdate
	errs    chan error
}

func newSupervisor() (*supervisor, error) {
	// Not the caller's context: a D-Bus connection made with one closes when it ends.
	conn, err := sd.NewSystemdConnectionContext(context.Background())
	if err != nil {
		conn, err = sd.NewSystemConnectionContext(context.Background())
	}
	if err != nil {
		return nil, fmt.Errorf("connect to systemd: %w", err)
	}
	s := &supervisor{conn: conn,
		updates: make(chan *sd.PropertiesUpdate, 4096),
		errs:    make(chan error, 16)}
	conn.SetPropertiesSubscriber(s.updates, s.errs)
	if err := conn.Subscribe(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("subscribe to systemd: %w", err)
	}
	return s, nil
}

func (s *supervisor) close() { s.conn.Close() }

// snapshot reads the state of every container unit systemd has loaded: one call.
func (s *supervisor) snapshot(ctx context.Context) (map[string]unitState, error) {
	units, err := s.conn.ListUnitsByPatternsContext(ctx, nil, []string{"container@*.service"})
	if err != nil {
		return nil, fmt.Errorf("list units: %w", err)
	}
	out := map[string]unitState{}
	for _, u := range units {
		st := unitState{ActiveState: u.ActiveState, SubState: u.SubState}
		s.fillDetails(ctx, u.Name, &st)
		out[u.Name] = st
	}
	return out, nil
}

// unitStateOf reads one unit's state (used once, when a container first appears).
func (s *supervisor) unitStateOf(ctx context.Context, unit string) unitState {
	props, err := s.conn.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return unitState{ActiveState: unitInactive, SubState: unitDead}
	}
	st := unitState{}
	st.ActiveState, _ = props["ActiveState"].(string)
	st.SubState, _ = props["SubState"].(string)
	s.fillDetails(ctx, unit, &st)
	return st
}

// fillDetails reads what the Unit interface's signals do not carry: the main PID and
// the result are properties of the Service interface. Called on state transitions only.
func (s *supervisor) fillDetails(ctx context.Context, unit string, st *unitState) {
	if p, err := s.conn.GetServicePropertyContext(ctx, unit, "MainPID"); err == nil {
		if v, ok := p.Value.Value().(uint32); ok {
			st.MainPID = int(v)
		}
	}
	if p, err := s.conn.GetServicePropertyContext(ctx, unit, "Result"); err == nil {
		st.Result, _ = p.Value.Value().(string)
	}
	if p, err := s.conn.GetUnitPropertyContext(ctx, unit, "StateChangeTimestamp"); err == nil {
		if v, ok := p.Value.Value().(uint64); ok && v > 0 {
			st.Since = time.UnixMicro(int64(v))
		}
	}
}

// applyChanged folds a PropertiesChanged signal into st; it reports whether the
// active or sub state moved.
func applyChanged(st *unitState, changed map[string]dbus.Variant) bool {
	moved := false
	if v, ok := changed["ActiveState"]; ok {
		if s, ok := v.Value().(string); ok && s != st.ActiveState {
			st.ActiveState, moved = s, true
		}
	}
	if v, ok := changed["SubState"]; ok {
		if s, ok := v.Value().(string); ok && s != st.SubState {
			st.SubState, moved = s, true
		}
	}
	if v, ok := changed["StateChangeTimestamp"]; ok {
		if t, ok := v.Value().(uint64); ok && t > 0 {
			st.Since = time.UnixMicro(int64(t))
		}
	}
	return moved
}

// runJob starts a job with start (StartUnitContext and the like) and waits for it.
// If ctx ends first, the job goes on in systemd and ctx's error is returned.
func (s *supervisor) runJob(ctx context.Context, what, unit string,
	start func(context.Context, string, string, chan<- string) (int, error)) error {
	done := make(chan string, 1)
	if _, err := start(ctx, unit, "replace", done); err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrUnitOperation, what, unit, err)
	}
	crash.At(what + "-job") // crash.StartJob, crash.StopJob
	select {
	case result := <-done:
		if result != "done" {
			return fmt.Errorf("%w: %s %s: job %s", ErrUnitOperation, what, unit, result)
		}
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (s *supervisor) start(ctx context.Context, unit string) error {
	return s.runJob(ctx, "start", unit, s.conn.StartUnitContext)
}

func (s *supervisor) stop(ctx context.Context, unit string) error {
	return s.runJob(ctx, "stop", unit, s.conn.StopUnitContext)
}

func (s *supervisor) restart(ctx context.Context, unit string) error {
	return s.runJob(ctx, "restart", unit, s.conn.RestartUnitContext)
}

func (s *supervisor) reload(ctx context.Context, unit string) error {
	return s.runJob(ctx, "reload", unit, s.conn.ReloadUnitContext)
}

// kill sends SIGKILL to every process of the unit (machinectl terminate).
func (s *supervisor) kill(ctx context.Context, unit string) error {
	if err := s.conn.KillUnitWithTarget(ctx, unit, sd.All, int32(syscall.SIGKILL)); err != nil {
		return fmt.Errorf("%w: kill %s: %v", ErrUnitOperation, unit, err)
	}
	return nil
}

func (s *supervisor) resetFailed(ctx context.Context, unit string) {
	s.conn.ResetFailedUnitContext(ctx, unit)
}

// LeaderOf finds the container's init: the child of its systemd-nspawn.
func LeaderOf(nspawnPID int) (int, error) {
	if nspawnPID <= 0 {
		return 0, fmt.Errorf("no main process")
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", nspawnPID, nspawnPID))
	if err != nil {
		return 0, err
	}
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("systemd-nspawn (pid %d) has no child yet", nspawnPID)
}
