package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"nixcfs/ops"
	"nixcfs/ops/nsenter"
)

// session is one verb's manager, container name, and the context a signal ends.
type session struct {
	m    *ops.Manager
	name string
	pos  []string
	ctx  context.Context
	stop context.CancelFunc
	// out is nix's lines on a non-terminal, held back until the verb releases them
	// (create); nil on a terminal.
	out *heldOutput
}

func (s *session) close() {
	if s.m != nil {
		s.m.Close()
	}
	s.out.release()
	s.stop()
}

// names says what a verb takes besides flags.
type names int

const (
	noName       names = iota // list
	anyName                   // create, destroy: NAME, existing or not
	existingName              // NAME of an existing container
	nameAndArgs               // run: an existing NAME, then the command
)

// open checks the container name among a verb's arguments, and opens the manager
// with the verb's flags. When it returns false the verb is over with the given exit
// status.
func open(c *cobra.Command, mf *managerFlags, args []string, want names) (*session, int, bool) {
	s := &session{}
	switch want {
	case noName, nameAndArgs:
		s.pos = args
		if want == nameAndArgs {
			if len(s.pos) == 0 {
				return nil, fail("no container name specified"), false
			}
			s.name, s.pos = s.pos[0], s.pos[1:]
		}
	default:
		var exit int
		var ok bool
		if s.name, exit, ok = oneName(c.Name(), args); !ok {
			return nil, exit, false
		}
	}
	if !c.Flags().Changed("log-level") {
		// A verb prints its own error line: the manager's warnings would say it twice.
		mf.logLevel = "error"
	}
	s.ctx, s.stop = signalContext()
	if !stderrIsTerminal() {
		s.out = newHeldOutput(os.Stderr, c.Name() == "create")
		mf.buildOutput = s.out
	}
	m, _, err := mf.open(s.ctx, false)
	if err != nil {
		s.stop()
		return nil, fail("%v", err), false
	}
	s.m = m
	if (want == existingName || want == nameAndArgs) && !m.Exists(s.name) {
		if c.Name() == "status" {
			fmt.Println("gone")
		}
		s.close()
		return nil, fail("container ‘%s’ does not exist", s.name), false
	}
	return s, 0, true
}

// sessionVerb is a verb that works on the manager: the manager's flags and extra ones,
// container names completed from the conf directory, and run called with the session
// open.
func sessionVerb(name, usage, summary string, want names, extra func(fs *pflag.FlagSet), run func(c *cobra.Command, s *session) int) *cobra.Command {
	var mf managerFlags
	c := newVerb(name, usage, summary, func(c *cobra.Command, args []string) int {
		s, exit, ok := open(c, &mf, args, want)
		if !ok {
			return exit
		}
		defer s.close()
		return run(c, s)
	})
	mf.register(c.Flags())
	if extra != nil {
		extra(c.Flags())
	}
	c.ValidArgsFunction = completeNames(&mf.layoutFlags, want)
	registerFlagCompletions(c)
	return c
}

func jsonFlag(p *bool) func(*pflag.FlagSet) {
	return func(fs *pflag.FlagSet) { fs.BoolVar(p, "json", false, "print JSON for scripts") }
}

func listCmd() *cobra.Command {
	var asJSON bool
	return sessionVerb("list", "[--json]", "list the containers", noName, jsonFlag(&asJSON), func(c *cobra.Command, s *session) int {
		if len(s.pos) > 0 {
			return fail("list takes no container name")
		}
		if !asJSON {
			for _, n := range s.m.List() {
				fmt.Println(n)
			}
			return 0
		}
		all := []ops.Status{}
		for _, n := range s.m.List() {
			if st, err := s.m.Status(n); err == nil {
				all = append(all, st)
			}
		}
		return printJSON(all)
	})
}

func printJSON(v any) int {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fail("%v", err)
	}
	return 0
}

func statusCmd() *cobra.Command {
	var asJSON bool
	return sessionVerb("status", "NAME [--json]", "print up, down, or gone", existingName, jsonFlag(&asJSON), func(c *cobra.Command, s *session) int {
		st, err := s.m.Status(s.name)
		if err != nil {
			return fail("%v", err)
		}
		if asJSON {
			return printJSON(st)
		}
		if st.State.Running() {
			fmt.Println("up")
		} else {
			fmt.Println("down")
		}
		return 0
	})
}

func createCmd() *cobra.Command {
	var o ops.CreateOptions
	c := sessionVerb("create", "NAME [flags]", "create a container and build its system; prints its addresses on stderr", anyName, func(fs *pflag.FlagSet) {
		fs.StringVar(&o.Config, "config", "", "Nix text added to the default configuration.nix")
		fs.StringVar(&o.ConfigFile, "config-file", "", "a file the default configuration.nix imports")
		fs.StringVar(&o.SystemPath, "system-path", "", "an already built system to use instead of building one")
		fs.StringVar(&o.HostAddress, "host-address", "", "host side IPv4 address of the veth pair (default: next free 10.233.N.1)")
		fs.StringVar(&o.LocalAddress, "local-address", "", "container IPv4 address (default: next free 10.233.N.2)")
		fs.StringVar(&o.Bridge, "bridge", "", "attach the container's veth to this host bridge")
		fs.StringVar(&o.Port, "port", "", "forward host ports, as systemd-nspawn --port (comma-separated)")
		fs.BoolVar(&o.AutoStart, "auto-start", false, "start the container when the host boots")
		fs.BoolVar(&o.EnsureUniqueName, "ensure-unique-name", false, "if NAME is taken, use NAME-0, NAME-1, ... and print the name used")
		fs.StringVar(&o.Flake, "flake", "", "build FLAKE#nixosConfigurations.ATTR (ATTR defaults to NAME) instead of configuration.nix")
	}, func(c *cobra.Command, s *session) int {
		name, err := s.m.Create(s.ctx, s.name, o)
		if err != nil {
			if errors.Is(err, ops.ErrExists) {
				return fail("container ‘%s’ already exists", s.name)
			}
			if errors.Is(err, ops.ErrNameTooLong) {
				return fail("container name ‘%s’ is too long", s.name)
			}
			if errors.Is(err, ops.ErrInvalidName) {
				return fail("invalid container name")
			}
			return fail("%v", err)
		}
		st, _ := s.m.Status(name)
		fmt.Fprintf(os.Stderr, "host IP is %s, container IP is %s\n", st.HostAddress, st.LocalAddress)
		s.out.release()
		if err := s.building(name, "evaluating", func() error { return s.m.WaitBuilt(s.ctx, name) }); err != nil {
			return fail("failed to build initial container configuration: %v", err)
		}
		if o.EnsureUniqueName {
			fmt.Println(name)
		}
		return 0
	})
	c.ValidArgsFunction = cobra.NoFileCompletions // NAME is a new name
	return c
}

func destroyCmd() *cobra.Command {
	return sessionVerb("destroy", "NAME", "stop a container if it runs, and remove it with its files", anyName, nil, func(c *cobra.Command, s *session) int {
		if !s.m.Exists(s.name) {
			return 0 // as nixos-container: destroying what is gone succeeds
		}
		if st, _ := s.m.Status(s.name); st.Declarative {
			return fail("cannot destroy declarative container (remove it from your configuration.nix instead)")
		}
		if st, _ := s.m.State(s.name); st.Busy() {
			if err := s.m.Terminate(s.ctx, s.name); err != nil {
				return fail("failed to terminate container: %v", err)
			}
		}
		if err := s.m.Destroy(s.ctx, s.name); err != nil {
			return fail("%v", err)
		}
		return 0
	})
}

// unitVerbCmd is start, stop, terminate and restart.
func unitVerbCmd(name, summary string) *cobra.Command {
	return sessionVerb(name, "NAME", summary, existingName, nil, func(c *cobra.Command, s *session) int {
		act := map[string]func(context.Context, string) error{
			"start": s.m.Start, "stop": s.m.Stop, "terminate": s.m.Terminate, "restart": s.m.Restart,
		}[name]
		// A start waits for a build in progress: its line shows while it does.
		if err := s.building(s.name, "evaluating", func() error { return act(s.ctx, s.name) }); err != nil {
			return fail("failed to %s container: %v", name, err)
		}
		return 0
	})
}

func updateCmd() *cobra.Command {
	var config, configFile string
	return sessionVerb("update", "NAME [--config TEXT | --config-file FILE] [--nixos-path P]", "rebuild a container's system and switch a running container to it", existingName, func(fs *pflag.FlagSet) {
		fs.StringVar(&config, "config", "", "replace configuration.nix by the default one with this Nix text added")
		fs.StringVar(&configFile, "config-file", "", "replace configuration.nix by the default one importing this file")
	}, func(c *cobra.Command, s *session) int {
		if st, _ := s.m.State(s.name); st.Running() {
			fmt.Fprintln(os.Stderr, "reloading container...")
		}
		text := []byte(nil)
		if config != "" || configFile != "" {
			t, err := ops.ConfigText(s.name, config, configFile)
			if err != nil {
				return fail("%v", err)
			}
			text = []byte(t)
		}
		err := s.building(s.name, "evaluating", func() error {
			if text != nil {
				return s.m.SetConfig(s.ctx, s.name, text)
			}
			return s.m.Update(s.ctx, s.name)
		})
		if err != nil {
			return fail("failed to build container configuration: %v", err)
		}
		return 0
	})
}

func showIPCmd() *cobra.Command {
	return sessionVerb("show-ip", "NAME", "print the container's IPv4 address", existingName, nil, func(c *cobra.Command, s *session) int {
		st, _ := s.m.Status(s.name)
		if st.LocalAddress == "" {
			return fail("cannot get IP address")
		}
		fmt.Println(ops.BareAddress(st.LocalAddress))
		return 0
	})
}

func showHostKeyCmd() *cobra.Command {
	return sessionVerb("show-host-key", "NAME", "print the container's SSH host key", existingName, nil, func(c *cobra.Command, s *session) int {
		key, err := s.m.HostKey(s.name)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return 1 // as nixos-container: no key, no message
			}
			return fail("%v", err)
		}
		os.Stdout.Write(key)
		return 0
	})
}

// leaderVerb is a verb that enters a running container (login, root-login, run): run
// gets the container's init PID and the arguments after its name, with the manager
// already closed, since it replaces this process.
func leaderVerb(name, usage, summary string, run func(rest []string, leader int) int) *cobra.Command {
	var mf managerFlags
	c := newVerb(name, usage, summary, func(c *cobra.Command, args []string) int {
		rest, leader, exit, ok := leaderFor(c, &mf, args)
		if !ok {
			return exit
		}
		return run(rest, leader)
	})
	mf.register(c.Flags())
	c.ValidArgsFunction = completeNames(&mf.layoutFlags, nameAndArgs)
	registerFlagCompletions(c)
	return c
}

// leaderFor opens the manager and returns the running container's init PID and the
// arguments after its name.
func leaderFor(c *cobra.Command, mf *managerFlags, args []string) (rest []string, leader int, exit int, ok bool) {
	s, exit, ok := open(c, mf, args, nameAndArgs)
	if !ok {
		return nil, 0, exit, false
	}
	defer s.close()
	st, _ := s.m.Status(s.name)
	if !st.State.Running() || st.Leader == 0 {
		return nil, 0, fail("container ‘%s’ is not running", s.name), false
	}
	return s.pos, st.Leader, 0, true
}

// Where NixOS (and the guest system) keep su and login.
var (
	suPaths    = []string{"/run/wrappers/bin/su", "/run/current-system/sw/bin/su", "/bin/su"}
	loginPaths = []string{"/run/current-system/sw/bin/login", "/bin/login"}
)

func containerEnv() []string {
	env := []string{"PATH=/run/wrappers/bin:/run/current-system/sw/bin:/bin"}
	if t := os.Getenv("TERM"); t != "" {
		env = append(env, "TERM="+t)
	}
	return env
}

// loginCmd is login (the container's login prompt) and root-login (`su root -l`).
func loginCmd(name, summary string) *cobra.Command {
	return leaderVerb(name, "NAME", summary, func(rest []string, leader int) int {
		if len(rest) > 0 {
			return fail("%s takes one container name", name)
		}
		paths, argv := suPaths, []string{"root", "-l"}
		if name == "login" {
			paths, argv = loginPaths, nil
		}
		return fail("%v", nsenter.Exec(leader, paths, argv, containerEnv()))
	})
}

// runCmd runs COMMAND as root through `su root -l -c 'exec COMMAND'`, as nixos-container.
func runCmd() *cobra.Command {
	return leaderVerb("run", "NAME -- COMMAND...", "run a command inside the container as root; its exit status is returned", func(rest []string, leader int) int {
		if len(rest) == 0 {
			return fail("run: no command given (nixcfs run NAME -- COMMAND...)")
		}
		return fail("%v", nsenter.Exec(leader, suPaths, []string{"root", "-l", "-c", "exec " + ops.ShellJoin(rest)}, containerEnv()))
	})
}
