package main

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// runBuildToplevel is the builder of the system's toplevel derivation
// (guest/modules.nix). Nix runs it without a shell, with the derivation's
// attributes in the environment:
//
//	out             the output path to create
//	init            the store path of this binary
//	busybox         the store path of a static busybox (Debian's busybox-static)
//	configJSONPath  a file holding the configuration as JSON (passAsFile)
//	nixosVersion    the text of nixos-version
//
// and it creates
//
//	$out/init                          -> init
//	$out/bin/switch-to-configuration   -> init
//	$out/config.json
//	$out/nixos-version
//	$out/sw/bin/busybox                -> busybox
//	$out/sw/bin/APPLET                 -> busybox, for each of `busybox --list`
//	                                      but init and linuxrc
//
// so that /run/current-system/sw/bin holds sh, su, login, hostname, ls, ps,
// ip... as on NixOS. busybox runs the applet its argv[0] names.
func runBuildToplevel(getenv func(string) string, stderr io.Writer) int {
	if err := buildToplevel(getenv); err != nil {
		fmt.Fprintf(stderr, "build-toplevel: %v\n", err)
		return 1
	}
	return 0
}

func buildToplevel(getenv func(string) string) error {
	out, init, configFile, busybox := getenv("out"), getenv("init"), getenv("configJSONPath"), getenv("busybox")
	for name, value := range map[string]string{"out": out, "init": init, "configJSONPath": configFile, "busybox": busybox} {
		if value == "" {
			return fmt.Errorf("$%s is not set (run me as the builder of guest/modules.nix's toplevel)", name)
		}
	}
	data, err := os.ReadFile(configFile)
	if err != nil {
		return err
	}
	if _, err := parseConfig(data); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, data, "", "  "); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	pretty.WriteByte('\n')
	applets, err := busyboxApplets(busybox)
	if err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Join(out, "bin"), 0o755); err != nil {
		return err
	}
	if err := os.Symlink(init, filepath.Join(out, "init")); err != nil {
		return err
	}
	if err := os.Symlink(init, filepath.Join(out, "bin", "switch-to-configuration")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "config.json"), pretty.Bytes(), 0o444); err != nil {
		return err
	}
	// Like NixOS, without a trailing newline.
	if err := os.WriteFile(filepath.Join(out, "nixos-version"), []byte(getenv("nixosVersion")), 0o444); err != nil {
		return err
	}
	return layOutBusybox(filepath.Join(out, "sw", "bin"), busybox, applets)
}

// requiredApplets are what nixos-container's run, root-login and login need
// in the container, besides a shell's basics.
var requiredApplets = []string{"sh", "su", "login", "hostname", "env", "id"}

// skippedApplets stay out of sw/bin: the guest's init is PID 1.
var skippedApplets = map[string]bool{"busybox": true, "init": true, "linuxrc": true}

// busyboxApplets checks that busybox is a static busybox with the applets
// the guest needs, and returns the names of its applets.
func busyboxApplets(busybox string) ([]string, error) {
	const hint = "apt-get install busybox-static"
	if err := checkStatic(busybox); err != nil {
		return nil, fmt.Errorf("busybox %s: %w (%s)", busybox, err, hint)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(busybox, "--list")
	// busybox takes the applet from argv[0]; a store path's name is HASH-busybox.
	cmd.Args[0] = "busybox"
	cmd.Stderr = &stderr
	list, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("busybox %s --list: %v: %s (%s)", busybox, err, bytes.TrimSpace(stderr.Bytes()), hint)
	}
	applets, err := parseApplets(list)
	if err != nil {
		return nil, fmt.Errorf("busybox %s --list: %w (%s)", busybox, err, hint)
	}
	return applets, nil
}

// parseApplets reads `busybox --list` (one name a line), leaving out
// skippedApplets, and checks that requiredApplets are there.
func parseApplets(list []byte) ([]string, error) {
	var applets []string
	have := map[string]bool{}
	for _, name := range strings.Split(string(list), "\n") {
		name = strings.TrimSpace(name)
		if name == "" || skippedApplets[name] || have[name] {
			continue
		}
		if strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
			return nil, fmt.Errorf("odd applet name %q", name)
		}
		have[name] = true
		applets = append(applets, name)
	}
	var missing []string
	for _, name := range requiredApplets {
		if !have[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no applet %s", strings.Join(missing, ", "))
	}
	sort.Strings(applets)
	return applets, nil
}

// checkStatic makes sure path is an ELF executable that needs no dynamic
// loader: the container has no C library.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("not an executable: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("is dynamically linked")
		}
	}
	return nil
}

// layOutBusybox makes dir hold busybox and a link to it per applet.
func layOutBusybox(dir, busybox string, applets []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Symlink(busybox, filepath.Join(dir, "busybox")); err != nil {
		return err
	}
	for _, name := range applets {
		if err := os.Symlink("busybox", filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}
