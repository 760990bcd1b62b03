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
	"syscall"
)

// runBuildToplevel is the builder of the system's toplevel derivation
// (guest/modules.nix). Nix runs it without a shell, with the derivation's
// attributes in the environment:
//
//	out             the output path to create
//	init            the store path of this binary
//	busybox         the store path of a static busybox (Debian's busybox-static)
//	bash            the store path of a static bash (Debian's bash-static)
//	configJSONPath  a file holding the configuration as JSON (passAsFile)
//	nixosVersion    the text of nixos-version
//	system          the platform, as Nix names it (x86_64-linux)
//	extraDependencies  system.extraDependencies, store paths separated by spaces
//
// and it creates
//
//	$out/init                          the stage-2 script: execs $out/nixcfs-init
//	$out/nixcfs-init                   -> init (the guest's PID 1, NixOS's systemd)
//	$out/bin/switch-to-configuration   -> init
//	$out/config.json
//	$out/nixos-version
//	$out/system                        the platform, e.g. x86_64-linux
//	$out/extra-dependencies            $extraDependencies: store paths, which
//	                                   puts them in the system's closure
//	$out/sw/bin/busybox                -> busybox
//	$out/sw/bin/APPLET                 -> busybox, for each of `busybox --list`
//	                                      but init, linuxrc and bash
//	$out/sw/bin/bash                   -> bash
//
// so that /run/current-system/sw/bin holds sh, su, login, hostname, ls, ps,
// ip, bash... as on NixOS. busybox runs the applet its argv[0] names.
//
// init, system, bin/switch-to-configuration and sw/bin/bash are what NixOS's
// own container@.service uses of a system, so a NixOS host starts, reloads
// and stops this one unchanged: its start script reads `system` on x86_64
// hosts (to run a 32-bit system under the x86 personality); its init script,
// run inside the container, sources `init` with bash (NixOS's stage 2 is a bash
// script, so `init` must be one a shell can read, not a binary); its reload runs
// `bash --login -c ".../bin/switch-to-configuration test"` inside. nspawn, as
// nixcfs's own template runs it, executes the same `init` directly.
func runBuildToplevel(getenv func(string) string, stderr io.Writer) int {
	if err := buildToplevel(getenv); err != nil {
		fmt.Fprintf(stderr, "build-toplevel: %v\n", err)
		return 1
	}
	return 0
}

func buildToplevel(getenv func(string) string) error {
	out, init, configFile, busybox, bash, platform := getenv("out"), getenv("init"), getenv("configJSONPath"),
		getenv("busybox"), getenv("bash"), getenv("system")
	for name, value := range map[string]string{"out": out, "init": init, "configJSONPath": configFile,
		"busybox": busybox, "bash": bash, "system": platform} {
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
	if err := checkBash(bash); err != nil {
		return err
	}
	stage2, err := stage2Script(out)
	if err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Join(out, "bin"), 0o755); err != nil {
		return err
	}
	if err := writeProgram(filepath.Join(out, "init"), []byte(stage2), 0o555); err != nil {
		return err
	}
	for _, link := range []string{pid1Name, filepath.Join("bin", "switch-to-configuration")} {
		if err := os.Symlink(init, filepath.Join(out, link)); err != nil {
			return err
		}
	}
	// As NixOS writes them: system (the platform), nixos-version and
	// extra-dependencies without a trailing newline.
	for name, text := range map[string][]byte{
		"system": []byte(platform), "config.json": pretty.Bytes(),
		"nixos-version": []byte(getenv("nixosVersion")), "extra-dependencies": []byte(getenv("extraDependencies")),
	} {
		if err := os.WriteFile(filepath.Join(out, name), text, 0o444); err != nil {
			return err
		}
	}
	bin := filepath.Join(out, "sw", "bin")
	if err := layOutBusybox(bin, busybox, applets); err != nil {
		return err
	}
	return os.Symlink(bash, filepath.Join(bin, "bash"))
}

// writeProgram writes a file that is to be executed. os.WriteFile alone is
// not enough where another goroutine may fork meanwhile (the test binary runs
// buildToplevel next to parallel tests that run commands, and then execs the
// init it wrote): the write fd is close-on-exec, but a child forked while it
// is open holds a copy until its own execve, and an exec of the file in that
// window fails with ETXTBSY ("text file busy"). os/exec forks with
// syscall.ForkLock held for writing, so holding it for reading from open to
// close means no child is ever forked holding this fd.
func writeProgram(path string, data []byte, perm os.FileMode) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	return os.WriteFile(path, data, perm)
}

// pid1Name is the name, in the toplevel, of the link to this binary that
// `init` execs: init finds its system as the directory of its own path.
const pid1Name = "nixcfs-init"

// maxShebang is the longest "#!" line Linux reads in full (BINPRM_BUF_SIZE
// since Linux 5.1, less the newline).
const maxShebang = 255

// stage2Script is the system's `init`, a shell script as NixOS's stage 2 is.
// systemd-nspawn runs it as the container's first process (the kernel starts
// the system's own sh on it), and NixOS's container init script sources it
// with bash once the network is set up. Both ways must end in this system's
// nixcfs-init as PID 1, so the script only execs it, by its full path.
func stage2Script(out string) (string, error) {
	shebang := "#!" + filepath.Join(out, "sw", "bin", "sh")
	if len(shebang) > maxShebang {
		return "", fmt.Errorf("the system's path %s is too long for init's #! line (at most %d bytes)", out, maxShebang)
	}
	return shebang + "\n" +
		"# Stage 2 of this nixcfs guest system: run as the container's init, or\n" +
		"# sourced by NixOS's container init script. Either way the guest's PID 1\n" +
		"# takes over this process.\n" +
		"exec " + filepath.Join(out, pid1Name) + "\n", nil
}

// checkBash makes sure bash is a static executable: NixOS's container@.service runs
// `bash --login -c` inside.
func checkBash(bash string) error { return checkStaticTool("bash", bash, "bash-static") }

// checkStaticTool makes sure the tool at path is a static executable, as the container
// has no C library; pkg is the Debian package that has one.
func checkStaticTool(name, path, pkg string) error {
	if err := checkStatic(path); err != nil {
		return fmt.Errorf("%s %s: %w (apt-get install %s)", name, path, err, pkg)
	}
	return nil
}

// requiredApplets are what nixos-container's run, root-login and login need
// in the container, besides a shell's basics.
var requiredApplets = []string{"sh", "su", "login", "hostname", "env", "id"}

// skippedApplets stay out of sw/bin: the guest's init is PID 1.
// A real bash takes bash's place.
var skippedApplets = map[string]bool{"busybox": true, "init": true, "linuxrc": true, "bash": true}

// busyboxApplets checks that busybox is a static busybox with the applets
// the guest needs, and returns the names of its applets.
func busyboxApplets(busybox string) ([]string, error) {
	const hint = "apt-get install busybox-static"
	if err := checkStaticTool("busybox", busybox, "busybox-static"); err != nil {
		return nil, err
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
