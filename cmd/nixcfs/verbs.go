package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"nixcfs/ops"
)

func cmdList(args []string) int {
	var mf managerFlags
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	mf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := interruptible()
	defer cancel()
	m, err := mf.open(ctx)
	if err != nil {
		return fail("%v", err)
	}
	defer m.Close()
	for _, n := range m.List() {
		fmt.Println(n)
	}
	return 0
}

func cmdCreate(args []string) int {
	var mf managerFlags
	var o ops.CreateOptions
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	mf.register(fs)
	fs.StringVar(&o.Config, "config", "", "Nix text added to the default configuration.nix")
	fs.StringVar(&o.ConfigFile, "config-file", "", "a file the default configuration.nix imports")
	fs.StringVar(&o.SystemPath, "system-path", "", "an already built system to use")
	fs.StringVar(&o.HostAddress, "host-address", "", "host side address of the veth pair")
	fs.StringVar(&o.LocalAddress, "local-address", "", "container address")
	fs.StringVar(&o.Bridge, "bridge", "", "host bridge to attach the container to")
	fs.StringVar(&o.Port, "port", "", "port forwarding (systemd-nspawn --port)")
	fs.BoolVar(&o.AutoStart, "auto-start", false, "start the container at boot")
	fs.BoolVar(&o.EnsureUniqueName, "ensure-unique-name", false, "pick NAME-N when NAME is taken")
	name, ok := oneName(fs, args)
	if !ok {
		return 2
	}
	ctx, cancel := interruptible()
	defer cancel()
	m, err := mf.open(ctx)
	if err != nil {
		return fail("%v", err)
	}
	defer m.Close()
	name, err = m.Create(ctx, name, o)
	if err != nil {
		return fail("%v", err)
	}
	st, _ := m.Status(name)
	fmt.Fprintf(os.Stderr, "host IP is %s, container IP is %s\n", st.HostAddress, st.LocalAddress)
	if err := m.WaitBuilt(ctx, name); err != nil {
		return fail("failed to build initial container configuration: %v", err)
	}
	if o.EnsureUniqueName {
		fmt.Println(name)
	}
	return 0
}

func withContainer(verbName string, args []string, act func(m *ops.Manager, name string) int) int {
	var mf managerFlags
	fs := flag.NewFlagSet(verbName, flag.ContinueOnError)
	mf.register(fs)
	name, ok := oneName(fs, args)
	if !ok {
		return 2
	}
	ctx, cancel := interruptible()
	defer cancel()
	m, err := mf.open(ctx)
	if err != nil {
		return fail("%v", err)
	}
	defer m.Close()
	if !m.Exists(name) {
		if verbName == "status" {
			fmt.Println("gone")
		}
		return fail("container ‘%s’ does not exist", name)
	}
	return act(m, name)
}

func cmdDestroy(args []string) int {
	return withContainer("destroy", args, func(m *ops.Manager, name string) int {
		ctx, cancel := interruptible()
		defer cancel()
		if st, _ := m.State(name); st == "running" || st == "starting" || st == "stopping" {
			if err := m.Terminate(ctx, name); err != nil {
				return fail("failed to terminate container: %v", err)
			}
		}
		if err := m.Destroy(ctx, name); err != nil {
			if errors.Is(err, ops.ErrDeclarative) {
				return fail("cannot destroy declarative container (remove it from your configuration.nix instead)")
			}
			return fail("%v", err)
		}
		return 0
	})
}

func cmdStart(args []string) int {
	return withContainer("start", args, func(m *ops.Manager, name string) int {
		ctx, cancel := interruptible()
		defer cancel()
		if err := m.Start(ctx, name); err != nil {
			return fail("failed to start container: %v", err)
		}
		return 0
	})
}

func cmdStop(args []string) int {
	return withContainer("stop", args, func(m *ops.Manager, name string) int {
		ctx, cancel := interruptible()
		defer cancel()
		if err := m.Stop(ctx, name); err != nil {
			return fail("failed to stop container: %v", err)
		}
		return 0
	})
}

func cmdStatus(args []string) int {
	return withContainer("status", args, func(m *ops.Manager, name string) int {
		st, _ := m.State(name)
		if st == "running" {
			fmt.Println("up")
		} else {
			fmt.Println("down")
		}
		return 0
	})
}

func cmdUpdate(args []string) int {
	return withContainer("update", args, func(m *ops.Manager, name string) int {
		ctx, cancel := interruptible()
		defer cancel()
		if err := m.Update(ctx, name); err != nil {
			return fail("failed to build container configuration: %v", err)
		}
		return 0
	})
}
