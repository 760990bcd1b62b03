package ops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// unitState is what systemd says of a container's unit, kept current from its
// PropertiesChanged signals.
type unitState struct {
	ActiveState string
	SubState    string
	Since       time.Time
	MainPID     int
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

// installTemplate writes nixcfs's container@.service into unitDir unless the host has
// its own (NixOS), and reloads systemd when the text changed.
// Unless replace, a template of ours that works (its binary exists) is kept: a CLI
// run from another build must not repoint the daemon's containers at itself.
func (s *supervisor) installTemplate(ctx context.Context, unitDir string, searchDirs []string, nixcfsBin string, l Layout, replace bool) (string, error) {
	if p := hostTemplate(searchDirs); p != "" {
		return p, nil
	}
	path := filepath.Join(unitDir, "container@.service")
	text := unitTemplate(nixcfsBin, l)
	if old, err := os.ReadFile(path); err == nil {
		if string(old) == text {
			return path, nil
		}
		// Kept: the same template but for another nixcfs binary that still exists.
		bin := templateBinary(string(old))
		if _, err := os.Stat(bin); err == nil && !replace && string(old) == unitTemplate(bin, l) {
			return path, nil
		}
	}
	if err := os.MkdirAll(unitDir, 0o755); err != nil {
		return "", fmt.Errorf("install unit template: %w", err)
	}
	if err := writeFileAtomic(path, []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("install unit template: %w", err)
	}
	if err := s.conn.ReloadContext(ctx); err != nil {
		return "", fmt.Errorf("systemd daemon-reload: %w", err)
	}
	return path, nil
}

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
		return unitState{ActiveState: "inactive", SubState: "dead"}
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

// containerOfUnit is NAME for "container@NAME.service".
func containerOfUnit(unit string) (string, bool) {
	rest, ok := strings.CutPrefix(unit, "container@")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, ".service")
}

// runJob starts a job with start (StartUnitContext and the like) and waits for it.
// If ctx ends first, the job goes on in systemd and ctx's error is returned.
func (s *supervisor) runJob(ctx context.Context, what, unit string,
	start func(context.Context, string, string, chan<- string) (int, error)) error {
	done := make(chan string, 1)
	if _, err := start(ctx, unit, "replace", done); err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrUnitOperation, what, unit, err)
	}
	select {
	case result := <-done:
		if result != "done" {
			return fmt.Errorf("%w: %s %s: job %s", ErrUnitOperation, what, unit, result)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
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
