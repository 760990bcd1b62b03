package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"time"

	"nixcfs/internal/crash"
)

// Generations are the container's Nix profile generations
// (PROFILEDIR/NAME/system-N-link), nixos-container's and nixcfs's alike. For each one it
// builds, nixcfs keeps the exact configuration.nix text that built it, on the host
// (DataDir/NAME/generations/N.nix), never in the root tree; those built elsewhere have
// none. Switching to a generation points the profile at it, puts its text back in
// configuration.nix and, if the container runs, activates it without a restart.

// Generation is one generation of a container's system.
type Generation struct {
	Number    int       `json:"number"`
	System    string    `json:"system"` // its store path
	Built     time.Time `json:"built"`
	Current   bool      `json:"current"`
	HasConfig bool      `json:"has_config"` // nixcfs kept the text that built it
}

var generationLinkRE = regexp.MustCompile(`^system-(\d+)-link$`)

func (l Layout) generationTextPath(name string, n int) string {
	return filepath.Join(l.DataPath(name), "generations", strconv.Itoa(n)+".nix")
}

// rejectedPath keeps the text a switch replaced, when it was no generation's.
func (l Layout) rejectedPath(name string) string {
	return filepath.Join(l.DataPath(name), "config.nix.rejected")
}

// Generations lists the container's generations, oldest first.
func (m *Manager) Generations(name string) ([]Generation, error) {
	if _, err := m.reg.lookup(name); err != nil {
		return nil, err
	}
	return m.l.generations(name)
}

func (l Layout) generations(name string) ([]Generation, error) {
	entries, err := os.ReadDir(l.ProfilePath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	_, current := systemGeneration(l.SystemLink(name))
	var gens []Generation
	for _, e := range entries {
		match := generationLinkRE.FindStringSubmatch(e.Name())
		if match == nil {
			continue
		}
		n, _ := strconv.Atoi(match[1])
		link := filepath.Join(l.ProfilePath(name), e.Name())
		g := Generation{Number: n, Current: n == current}
		g.System, _ = os.Readlink(link)
		if fi, err := os.Lstat(link); err == nil {
			g.Built = fi.ModTime()
		}
		_, err := os.Stat(l.generationTextPath(name, n))
		g.HasConfig = err == nil
		gens = append(gens, g)
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i].Number < gens[j].Number })
	return gens, nil
}

// GenerationConfig is the configuration.nix text that built generation n;
// os.ErrNotExist when nixcfs did not build it.
func (m *Manager) GenerationConfig(name string, n int) ([]byte, error) {
	if _, err := m.reg.lookup(name); err != nil {
		return nil, err
	}
	return os.ReadFile(m.l.generationTextPath(name, n))
}

// RejectedConfig is the text a switch of generation replaced, when it was no
// generation's own; os.ErrNotExist when there is none.
func (m *Manager) RejectedConfig(name string) ([]byte, error) {
	if _, err := m.reg.lookup(name); err != nil {
		return nil, err
	}
	return os.ReadFile(m.l.rejectedPath(name))
}

// saveGenerationText keeps the text that built the profile's current generation.
func (l Layout) saveGenerationText(name string, text []byte) error {
	_, n := systemGeneration(l.SystemLink(name))
	if n == 0 {
		return nil
	}
	p := l.generationTextPath(name, n)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return writeFileAtomic(p, text, 0o600)
}

// SwitchGeneration makes generation n the container's system (nixos-container has no
// such verb; nix-env --switch-generation is its heart): its text is configuration.nix
// again, the profile points at it, and a running container is switched to it without
// a restart. It returns when the switch is done. An unknown n is ErrInvalid. The text
// it replaces is never lost: it is a generation's already, or it is kept as the
// container's rejected configuration, and the status says so.
func (m *Manager) SwitchGeneration(ctx context.Context, name string, n int) error {
	run, err := m.queueSwitch(name, n)
	if err != nil {
		return m.noted(name, err)
	}
	return m.waitRun(ctx, run) // a failure is noted when the switch ends (finishBuild)
}

// queueSwitch writes generation n's text as configuration.nix and queues the switch,
// as queueConfig writes a text and queues its build: in the order texts are written.
func (m *Manager) queueSwitch(name string, n int) (*buildRun, error) {
	c, err := m.reg.lookupForChange(name)
	if err != nil {
		return nil, err
	}
	if !m.l.hasGeneration(name, n) {
		return nil, fmt.Errorf("%w: generation %d: %s has no such generation (see generations/)", ErrInvalid, n, name)
	}
	target, err := os.ReadFile(m.l.generationTextPath(name, n))
	hasText := err == nil
	c.textMu.Lock()
	defer c.textMu.Unlock()
	hash := "" // of the text it builds: none without one
	if hasText {
		hash = textHash(target)
		if err := m.keepReplacedText(name, target); err != nil {
			return nil, err
		}
		if err := m.l.writeConfig(name, target); err != nil {
			return nil, fmt.Errorf("configuration of %s: %w", name, err)
		}
		if err := m.l.noteWritten(name, hash); err != nil {
			return nil, err
		}
	}
	m.reg.mu.Lock()
	run := m.queueLocked(c)
	run.switchTo, run.hash = n, hash
	m.reg.mu.Unlock()
	m.runQueued(c, run, func(ctx context.Context) error {
		if err := m.nix.switchGeneration(ctx, m.l.ProfilePath(name), n, m.output(name)); err != nil {
			return err
		}
		crash.At(crash.SwitchProfile)
		m.log.Info().Str("container", name).Int("generation", n).Msg("switched generation")
		return m.activate(ctx, name)
	})
	return run, nil
}

func (l Layout) hasGeneration(name string, n int) bool {
	gens, _ := l.generations(name)
	for _, g := range gens {
		if g.Number == n {
			return true
		}
	}
	return false
}

// keepReplacedText keeps configuration.nix as the rejected text, unless it is the
// text about to come back or one that built some generation.
func (m *Manager) keepReplacedText(name string, target []byte) error {
	text, err := m.l.readConfig(name)
	if errors.Is(err, fs.ErrNotExist) || err == nil && bytes.Equal(text, target) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("configuration of %s: %w", name, err)
	}
	gens, _ := m.l.generations(name)
	for _, g := range gens {
		if old, err := os.ReadFile(m.l.generationTextPath(name, g.Number)); err == nil && bytes.Equal(old, text) {
			return nil
		}
	}
	if err := writeFileAtomic(m.l.rejectedPath(name), text, 0o600); err != nil {
		return fmt.Errorf("keep the replaced configuration of %s: %w", name, err)
	}
	m.reg.noteNotice(name, "config.nix.rejected keeps the configuration.nix text that the switch of generation replaced")
	return nil
}

// DeleteGeneration removes generation n from the profile, with the text that built it;
// the current one is ErrBusy.
func (m *Manager) DeleteGeneration(ctx context.Context, name string, n int) error {
	return m.noted(name, m.deleteGeneration(ctx, name, n))
}

func (m *Manager) deleteGeneration(ctx context.Context, name string, n int) error {
	if _, err := m.reg.lookupForChange(name); err != nil {
		return err
	}
	if !m.l.hasGeneration(name, n) {
		return fmt.Errorf("%w: generations/%d: %s has no such generation", ErrNotFound, n, name)
	}
	if _, cur := systemGeneration(m.l.SystemLink(name)); cur == n {
		return fmt.Errorf("%w: generations/%d is %s's current generation; switch to another first", ErrBusy, n, name)
	}
	op, err := m.l.lockOp(ctx, name)
	if err != nil {
		return err
	}
	defer op.done()
	if err := m.nix.deleteGeneration(ctx, m.l.ProfilePath(name), n); err != nil {
		return err
	}
	os.Remove(m.l.generationTextPath(name, n))
	return nil
}
