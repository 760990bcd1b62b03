package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// guest is the live state of the container's system: what init applied and
// the hello service it runs. Paths are below root ("/" in a container, a
// temporary directory in tests), so the logic runs as an ordinary process.
type guest struct {
	root        string // where etc/ and run/ are
	helloHost   string // address the hello service listens on ("0.0.0.0")
	profile     string // the system profile whose switch-to-configuration reload runs
	setHostname func(name string) error
	runChild    func(path string, args ...string) (output []byte, exitCode int, err error)
	log         *slog.Logger

	mu       sync.Mutex // serialises activations; guards the fields below
	system   string     // store path of the active system
	hostname string
	hello    *helloService // nil when services.hello is off
}

// activate loads the system at systemPath and applies it. A configuration
// that cannot be loaded changes nothing.
func (g *guest) activate(systemPath string) error {
	system, err := filepath.EvalSymlinks(systemPath)
	if err != nil {
		return fmt.Errorf("activate %s: %w", systemPath, err)
	}
	cfg, err := loadConfig(system)
	if err != nil {
		return fmt.Errorf("activate %s: %w", system, err)
	}
	return g.apply(system, cfg)
}

// apply makes the container match cfg. Every step is tried; a failed step
// does not stop the others, and /run/current-system points at the new
// system afterwards either way, as on NixOS after a partly failed switch.
func (g *guest) apply(system string, cfg *Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()

	var errs []error
	if name := cfg.Networking.HostName; name != "" {
		if err := g.setHostname(name); err != nil {
			errs = append(errs, fmt.Errorf("set hostname %s: %w", name, err))
		} else {
			g.hostname = name
		}
	}
	if err := writeEtc(g.root, system, cfg, hashPassword); err != nil {
		errs = append(errs, err)
	}
	if err := writeAuthorizedKeys(filepath.Join(g.root, authorizedKeysDir), cfg.authorizedKeys()); err != nil {
		errs = append(errs, err)
	}
	if err := g.applyHello(cfg.Services.Hello); err != nil {
		errs = append(errs, err)
	}
	if err := replaceSymlink(system, filepath.Join(g.root, "run", "current-system")); err != nil {
		errs = append(errs, fmt.Errorf("update /run/current-system: %w", err))
	}
	g.system = system

	err := errors.Join(errs...)
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelError
	}
	g.log.Log(context.Background(), level, "activated", "system", system, "hostname", g.hostname,
		"hello", g.helloAddr(), "users", cfg.userNames(), "error", err)
	return err
}

// applyHello starts, stops or restarts the hello service. A new message on
// the same port is served at once without dropping the listener.
func (g *guest) applyHello(want HelloConfig) error {
	cur := g.hello
	if cur != nil && want.Enable && cur.port == want.Port {
		cur.setMessage(want.Message)
		return nil
	}
	if cur != nil {
		if err := cur.stop(); err != nil {
			g.log.Warn("stop hello service", "error", err)
		}
		g.hello = nil
	}
	if !want.Enable {
		return nil
	}
	h, err := startHello(g.helloHost, want.Port, want.Message)
	if err != nil {
		return err
	}
	g.hello = h
	return nil
}

// helloAddr is where the hello service listens, or "off". Needs g.mu.
func (g *guest) helloAddr() string {
	if g.hello == nil {
		return "off"
	}
	return g.hello.addr.String()
}

// status is the body of the control socket's status answer.
func (g *guest) status() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return fmt.Sprintf("system %s\npid %d\nhostname %s\nhello %s\n",
		g.system, os.Getpid(), g.hostname, g.helloAddr())
}

// reload runs the profile's switch-to-configuration test as a child, which
// comes back through the control socket with activate. g.mu is not held
// meanwhile, or that activation would wait forever.
func (g *guest) reload() (output string, err error) {
	stc := filepath.Join(g.profile, "bin", "switch-to-configuration")
	out, code, err := g.runChild(stc, "test")
	if err != nil {
		return "", fmt.Errorf("run %s test: %w", stc, err)
	}
	if code != 0 {
		return string(out), fmt.Errorf("switch-to-configuration test: exit status %d", code)
	}
	return string(out), nil
}

// shutdown stops what init runs.
func (g *guest) shutdown() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hello != nil {
		g.hello.stop()
		g.hello = nil
	}
}
