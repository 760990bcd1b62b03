package main

import (
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// sigRTMIN is the C library's SIGRTMIN, from which systemd counts: nspawn
// stops a NixOS container with SIGRTMIN+3 (halt), systemd's poweroff is +4.
const sigRTMIN = syscall.Signal(34)

// stopSignals end init (and with it the container) with exit status 0.
// SIGUSR1, SIGUSR2 and SIGTERM are what busybox's halt, poweroff and reboot
// (in the system's sw/bin) send PID 1.
func stopSignals() []os.Signal {
	return []os.Signal{sigRTMIN + 3, sigRTMIN + 4, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2}
}

// runInit is PID 1 of the container. The host has set up the network;
// nspawn provides /proc, /sys, /dev and /run.
func runInit(argv0 string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("program", "nixcfs-init")
	if os.Getpid() != 1 {
		// It would rename this machine and write its /etc and /run.
		log.Error("refusing to run: init must be PID 1 of a container (systemd-nspawn ... SYSTEM/init)")
		return 1
	}
	system, err := systemPathOf(argv0, 1)
	if err != nil {
		log.Error("find the system", "error", err)
		return 1
	}
	cfg, err := loadConfig(system)
	if err != nil {
		log.Error("boot", "system", system, "error", err)
		return 1
	}

	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	reaper := newReaper()
	go reaper.loop(sigchld)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, stopSignals()...)

	profile := os.Getenv("SYSTEM_PATH")
	if profile == "" {
		profile = defaultProfile
	}
	g := &guest{
		root:        "/",
		helloHost:   "0.0.0.0",
		profile:     profile,
		setHostname: func(name string) error { return syscall.Sethostname([]byte(name)) },
		runChild:    reaper.run,
		log:         log,
	}
	notifySocket := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET") // for nspawn's ears only, not the children's
	shutdown := g.boot(system, cfg, controlSocket, notifySocket)

	sig := <-stop
	log.Info("shutting down", "signal", sig)
	shutdown()
	return 0
}

// boot brings the system up: applies it, links /run/booted-system, serves
// the control socket at socket and reports READY=1. A step that fails is
// logged and the container comes up regardless, as NixOS reaches
// multi-user.target with a failed unit. The returned function shuts down.
func (g *guest) boot(system string, cfg *Config, socket, notifySocket string) (shutdown func()) {
	g.apply(system, cfg) // logs what failed
	if err := replaceSymlink(system, filepath.Join(g.root, "run", "booted-system")); err != nil {
		g.log.Warn("link /run/booted-system", "error", err)
	}
	ctl, err := listenControl(socket, g, g.log)
	if err != nil {
		g.log.Error("boot", "error", err)
	} else {
		go ctl.serve()
	}
	if err := sdNotify(notifySocket, "READY=1\nSTATUS=Running "+filepath.Base(system)); err != nil {
		g.log.Warn("notify ready", "error", err)
	}
	g.log.Info("ready", "system", system)

	return func() {
		sdNotify(notifySocket, "STOPPING=1\nSTATUS=Shutting down")
		if ctl != nil {
			ctl.close(2 * time.Second)
		}
		g.shutdown()
	}
}
