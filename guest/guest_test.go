package guest_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// initBinary is the guest's init, handed to default.nix with --arg init;
// empty without Nix. TestMain builds it from the current source.
var initBinary string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		if _, err := exec.LookPath("nix-build"); err != nil {
			return m.Run() // the Nix tests skip themselves
		}
		dir, err := os.MkdirTemp("", "nixcfs-guest-init")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if initBinary, err = buildInit(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}

// buildInit builds ./init into dir, as `make guest' builds guest/bin/init.
// A test binary run where there is no Go (the test host may lack it) uses
// the guest/bin/init that make built beside it.
func buildInit(dir string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		if _, statErr := os.Stat("bin/init"); statErr != nil {
			return "", fmt.Errorf("no go in PATH to build the guest's init, and no guest/bin/init (run make guest)")
		}
		return filepath.Abs("bin/init")
	}
	binary := filepath.Join(dir, "init")
	build := exec.Command(goTool, "build", "-o", binary, "./init")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the guest's init: %v\n%s", err, out)
	}
	return binary, nil
}

// nixEnv is the environment nix runs in: single-user, no sandbox, no
// binary cache (the machines are offline).
func nixEnv() []string {
	return append(os.Environ(), "NIX_CONFIG=build-users-group =\nsandbox = false\nsubstituters =")
}

func requireNix(t *testing.T) {
	t.Helper()
	if initBinary == "" {
		t.Skip("nix-build is not in PATH")
	}
}

func guestDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeFiles writes files (name -> text, "@DIR@" standing for dir) into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, "@DIR@", dir)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// nixBuild builds the system of dir/configuration.nix into dir/result, as
// `nix-build guest -I nixos-config=... -A system` does.
func nixBuild(t *testing.T, guest, dir string) (result string, stderr string, err error) {
	t.Helper()
	result = filepath.Join(dir, "result")
	cmd := exec.Command("nix-build", guest,
		"-I", "nixos-config="+filepath.Join(dir, "configuration.nix"),
		"-A", "system",
		"--arg", "init", initBinary,
		"--option", "substituters", "",
		"-o", result)
	cmd.Env = nixEnv()
	var errBuf strings.Builder
	cmd.Stderr = &errBuf
	_, err = cmd.Output()
	return result, errBuf.String(), err
}

// readConfig returns the built system's config.json.
func readConfig(t *testing.T, result string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(result, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	return cfg
}

// lookup returns the value at a dotted option path in config.json, JSON
// re-encoded so expectations read like Nix values in JSON.
func lookup(t *testing.T, cfg map[string]any, path string) string {
	t.Helper()
	var v any = cfg
	for _, name := range strings.Split(path, ".") {
		set, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("config.json has no %s (%s is not a set)", path, name)
		}
		if v, ok = set[name]; !ok {
			t.Fatalf("config.json has no %s", path)
		}
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// The default configuration.nix of nixos-container create.
const containerTemplate = `{ config, lib, pkgs, ... }:

with lib;

{
  boot.isContainer = true;
  networking.hostName = mkDefault "foo";
  networking.useDHCP = false;
}
`

func TestBuild(t *testing.T) {
	requireNix(t)
	guest := guestDir(t)

	for _, tc := range []struct {
		name  string
		files map[string]string // configuration.nix and what it imports
		want  map[string]string // option path -> JSON value in config.json
		errs  []string          // lines nix-build's error must hold instead
	}{
		{
			name:  "nixos-container template",
			files: map[string]string{"configuration.nix": containerTemplate},
			want: map[string]string{
				"networking.hostName":                 `"foo"`,
				"networking.useDHCP":                  `false`,
				"boot.isContainer":                    `true`,
				"services.hello":                      `{"enable":false,"message":"Hello from foo","port":80}`,
				"system.stateVersion":                 `"25.11"`,
				"services.openssh":                    `{"enable":false}`,
				"networking.firewall.allowedTCPPorts": `[]`,
				// As NixOS's users-groups.nix defines them.
				"users.users.root.uid":         `0`,
				"users.users.root.home":        `"/root"`,
				"users.users.root.group":       `"root"`,
				"users.users.root.description": `"System administrator"`,
				"users.users.nobody.uid":       `65534`,
				"users.users.nobody.group":     `"nogroup"`,
			},
		},
		{
			name: "template with extra lines",
			files: map[string]string{"configuration.nix": strings.Replace(containerTemplate,
				"networking.useDHCP = false;\n",
				"networking.useDHCP = false;\n  services.hello.enable = true;\n  services.hello.port = 8080;\n  system.stateVersion = \"24.05\";\n", 1)},
			want: map[string]string{
				"networking.hostName": `"foo"`,
				"services.hello":      `{"enable":true,"message":"Hello from foo","port":8080}`,
				"system.stateVersion": `"24.05"`,
			},
		},
		{
			name: "nixos-container --config-file",
			files: map[string]string{
				"configuration.nix": `{ config, lib, pkgs, ... }: with lib; { boot.isContainer = true; networking.hostName = mkDefault "foo"; networking.useDHCP = false; imports = [ @DIR@/given.nix ]; }`,
				"given.nix":         `{ networking.hostName = "given"; services.hello = { enable = true; message = "from the file"; }; }`,
			},
			want: map[string]string{
				"networking.hostName":    `"given"`,
				"services.hello.message": `"from the file"`,
			},
		},
		{
			name: "mkForce and mkOverride priorities",
			files: map[string]string{
				"configuration.nix": `{ lib, ... }: { imports = [ ./plain.nix ]; networking.hostName = lib.mkForce "forced"; services.hello.port = lib.mkOverride 10 81; }`,
				"plain.nix":         `{ lib, ... }: { networking.hostName = "plain"; services.hello.port = lib.mkForce 82; }`,
			},
			want: map[string]string{
				"networking.hostName": `"forced"`,
				"services.hello.port": `81`,
			},
		},
		{
			name: "mkDefault loses to a plain definition, a default to mkDefault",
			files: map[string]string{
				"configuration.nix": `{ lib, ... }: { networking.hostName = lib.mkDefault "default"; networking.useDHCP = lib.mkDefault false; imports = [ { networking.hostName = "plain"; } ]; }`,
			},
			want: map[string]string{
				"networking.hostName": `"plain"`,
				"networking.useDHCP":  `false`,
			},
		},
		{
			name: "mkIf on config, at leaf and non-leaf level",
			files: map[string]string{
				"configuration.nix": `{ config, lib, ... }:
with lib;
{
  imports = [ ./web.nix ];
  services.hello.enable = true;
  networking.hostName = mkIf config.services.hello.enable "web";
  services.openssh = mkIf (config.networking.hostName == "nope") { enable = true; };
}`,
				"web.nix": `{ config, lib, ... }:
{
  config = lib.mkIf config.services.hello.enable {
    services.hello.port = 8080;
    networking.firewall.allowedTCPPorts = [ config.services.hello.port ];
  };
}`,
			},
			want: map[string]string{
				"networking.hostName":                 `"web"`,
				"services.hello.port":                 `8080`,
				"services.openssh.enable":             `false`,
				"networking.firewall.allowedTCPPorts": `[8080]`,
			},
		},
		{
			name: "mkMerge of lists, mkBefore, mkIf false",
			files: map[string]string{
				"configuration.nix": `{ lib, ... }: {
  imports = [ ./more.nix ];
  networking.firewall.allowedTCPPorts = lib.mkMerge [
    [ 22 ]
    (lib.mkBefore [ 1 ])
    (lib.mkIf false [ 666 ])
  ];
}`,
				"more.nix": `{ networking.firewall.allowedTCPPorts = [ 80 443 ]; }`,
			},
			want: map[string]string{
				"networking.firewall.allowedTCPPorts": `[1,22,80,443]`,
			},
		},
		{
			name: "imports: relative, nested, functions, attribute sets, once each",
			files: map[string]string{
				"configuration.nix": `{
  imports = [
    ./sub/a.nix
    ({ lib, ... }: { services.hello.message = lib.mkDefault "from a function"; })
    { services.hello.enable = true; }
  ];
}`,
				"sub/a.nix": `{ imports = [ ../b.nix ./../b.nix ]; networking.hostName = "a"; }`,
				"b.nix":     `{ networking.firewall.allowedTCPPorts = [ 7 ]; }`,
			},
			want: map[string]string{
				"networking.hostName":                 `"a"`,
				"services.hello":                      `{"enable":true,"message":"from a function","port":80}`,
				"networking.firewall.allowedTCPPorts": `[7]`,
			},
		},
		{
			name: "module arguments: exact, none, _module.args, modulesPath",
			files: map[string]string{
				"configuration.nix": `{ config, lib }: { imports = [ ./args.nix ./none.nix ]; _module.args.greeting = "hi"; }`,
				"args.nix":          `{ greeting, modulesPath, pkgs, options, ... }: { services.hello.message = "${greeting} ${builtins.typeOf modulesPath} ${pkgs.system}"; networking.useDHCP = options.networking.useDHCP.default; }`,
				"none.nix":          `{ ... }: { boot.isContainer = true; }`,
			},
			want: map[string]string{
				"services.hello.message": fmt.Sprintf(`"hi string %s"`, nixSystem(t)),
				"networking.useDHCP":     `true`,
				"boot.isContainer":       `true`,
			},
		},
		{
			name: "a module declaring its own options",
			files: map[string]string{
				"configuration.nix": `{ config, lib, ... }:
with lib;
{
  options.site.name = mkOption { type = types.str; default = "site"; };
  options.site.enable = mkEnableOption "the site";
  config = {
    site.enable = true;
    services.hello.enable = config.site.enable;
    services.hello.message = "welcome to ${config.site.name}";
  };
}`,
			},
			want: map[string]string{
				"services.hello.enable":  `true`,
				"services.hello.message": `"welcome to site"`,
				"site":                   `{"enable":true,"name":"site"}`,
			},
		},
		{
			name: "users and their authorized keys",
			files: map[string]string{
				"configuration.nix": containerTemplate[:len(containerTemplate)-2] + `
  users.users.alice = {
    isNormalUser = true;
    extraGroups = [ "wheel" ];
    openssh.authorizedKeys.keys = [ "ssh-ed25519 AAAAC3 alice@laptop" "ssh-rsa AAAAB3 alice@desk" ];
  };
  users.users.root.openssh.authorizedKeys.keys = [ "ssh-ed25519 AAAAC3 admin" ];
  services.openssh.enable = true;
}
`,
			},
			want: map[string]string{
				"users.users.alice.openssh.authorizedKeys.keys": `["ssh-ed25519 AAAAC3 alice@laptop","ssh-rsa AAAAB3 alice@desk"]`,
				"users.users.alice.extraGroups":                 `["wheel"]`,
				"users.users.alice.home":                        `"/home/alice"`,
				"users.users.alice.group":                       `"users"`,
				"users.users.alice.createHome":                  `true`,
				"users.users.alice.uid":                         `null`,
				"users.users.root.openssh.authorizedKeys.keys":  `["ssh-ed25519 AAAAC3 admin"]`,
				"services.openssh.enable":                       `true`,
			},
		},
		{
			name: "services.hello with its defaults following hostName",
			files: map[string]string{
				"configuration.nix": `{ services.hello.enable = true; networking.hostName = "greeter"; }`,
			},
			want: map[string]string{
				"services.hello": `{"enable":true,"message":"Hello from greeter","port":80}`,
			},
		},
		{
			name:  "unknown option",
			files: map[string]string{"configuration.nix": `{ networking.hostName = "x"; networking.foo = "bar"; }`},
			errs: []string{
				"error: The option `networking.foo' does not exist. Definition values:",
				"- In `@DIR@/configuration.nix': \"bar\"",
			},
		},
		{
			name:  "unknown option set names its first unknown attribute, as NixOS does",
			files: map[string]string{"configuration.nix": `{ foo.bar = 42; }`},
			errs: []string{
				"error: The option `foo' does not exist. Definition values:",
				"- In `@DIR@/configuration.nix':",
				"bar = 42;",
			},
		},
		{
			name:  "unknown option in a user",
			files: map[string]string{"configuration.nix": `{ users.users.alice.shoeSize = 42; }`},
			errs: []string{
				"error: The option `users.users.alice.shoeSize' does not exist. Definition values:",
				"- In `@DIR@/configuration.nix': 42",
			},
		},
		{
			name:  "type error: port",
			files: map[string]string{"configuration.nix": `{ services.hello.port = "80"; }`},
			errs: []string{
				"error: A definition for option `services.hello.port' is not of type `16 bit unsigned integer; between 0 and 65535 (both inclusive)'. Definition values:",
				"- In `@DIR@/configuration.nix': \"80\"",
			},
		},
		{
			name:  "type error: port out of range",
			files: map[string]string{"configuration.nix": `{ services.hello.port = 65536; }`},
			errs: []string{
				"error: A definition for option `services.hello.port' is not of type `16 bit unsigned integer; between 0 and 65535 (both inclusive)'. Definition values:",
				"- In `@DIR@/configuration.nix': 65536",
			},
		},
		{
			name:  "type error: boolean",
			files: map[string]string{"configuration.nix": `{ services.hello.enable = "yes"; }`},
			errs: []string{
				"error: A definition for option `services.hello.enable' is not of type `boolean'. Definition values:",
				"- In `@DIR@/configuration.nix': \"yes\"",
			},
		},
		{
			name:  "type error: string",
			files: map[string]string{"configuration.nix": `{ services.hello.message = 42; }`},
			errs: []string{
				"error: A definition for option `services.hello.message' is not of type `string'. Definition values:",
				"- In `@DIR@/configuration.nix': 42",
			},
		},
		{
			name:  "type error: list",
			files: map[string]string{"configuration.nix": `{ users.users.alice.extraGroups = "wheel"; }`},
			errs: []string{
				"error: A definition for option `users.users.alice.extraGroups' is not of type `list of string'. Definition values:",
				"- In `@DIR@/configuration.nix': \"wheel\"",
			},
		},
		{
			name: "conflicting definitions",
			files: map[string]string{
				"configuration.nix": `{ imports = [ ./other.nix ]; networking.hostName = "mine"; }`,
				"other.nix":         `{ networking.hostName = "theirs"; }`,
			},
			errs: []string{
				"error: The option `networking.hostName' has conflicting definition values:",
				"- In `@DIR@/configuration.nix': \"mine\"",
				"- In `@DIR@/other.nix': \"theirs\"",
			},
		},
		{
			name:  "type error: a colon in a passwd field",
			files: map[string]string{"configuration.nix": `{ users.users.alice.description = "Alice: admin"; }`},
			errs: []string{
				"error: A definition for option `users.users.alice.description' is not of type `string, not containing newlines or colons'. Definition values:",
				"- In `@DIR@/configuration.nix': \"Alice: admin\"",
			},
		},
		{
			name:  "invalid host name",
			files: map[string]string{"configuration.nix": `{ networking.hostName = "no spaces"; }`},
			errs: []string{
				"error: A definition for option `networking.hostName' is not of type `string matching the pattern",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			result, stderr, err := nixBuild(t, guest, dir)
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("nix-build succeeded; want an error with %q", tc.errs)
				}
				for _, want := range tc.errs {
					if want = strings.ReplaceAll(want, "@DIR@", dir); !strings.Contains(stderr, want) {
						t.Errorf("nix-build's error lacks %q:\n%s", want, stderr)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("nix-build: %v\n%s", err, stderr)
			}
			checkLayout(t, result)
			cfg := readConfig(t, result)
			for path, want := range tc.want {
				if got := lookup(t, cfg, path); got != want {
					t.Errorf("%s = %s, want %s", path, got, want)
				}
			}
		})
	}
}

// checkLayout checks the toplevel: named like NixOS's, with the init binary
// as nixcfs-init and bin/switch-to-configuration, an init script that runs
// it, config.json, nixos-version, system and sw/bin.
func checkLayout(t *testing.T, result string) {
	t.Helper()
	system, err := filepath.EvalSymlinks(result)
	if err != nil {
		t.Fatal(err)
	}
	cfg := readConfig(t, result)
	name := strings.Trim(lookup(t, cfg, "networking.hostName"), `"`)
	if !regexp.MustCompile(`^/nix/store/[0-9a-z]{32}-nixos-system-` + regexp.QuoteMeta(name) + `-25\.11\.nixcfs$`).MatchString(system) {
		t.Errorf("system path %s is not nixos-system-%s-VERSION", system, name)
	}
	for _, program := range []string{"init", "nixcfs-init", "bin/switch-to-configuration"} {
		fi, err := os.Stat(filepath.Join(system, program))
		if err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not an executable: %v", program, err)
		}
	}
	for _, program := range []string{"nixcfs-init", "bin/switch-to-configuration"} {
		target, err := os.Readlink(filepath.Join(system, program))
		if err != nil || !strings.HasSuffix(target, "-nixcfs-guest-init") {
			t.Errorf("%s -> %q, %v; want the nixcfs-guest-init store path", program, target, err)
		}
	}
	// init is a script NixOS's container init script can source with bash.
	script, err := os.ReadFile(filepath.Join(system, "init"))
	if err != nil || !strings.HasPrefix(string(script), "#!"+system+"/sw/bin/sh\n") ||
		!strings.HasSuffix(string(script), "\nexec "+system+"/nixcfs-init\n") {
		t.Errorf("init script:\n%s\n%v", script, err)
	}
	// What NixOS's container@.service reads of a system on x86_64 hosts.
	if platform, err := os.ReadFile(filepath.Join(system, "system")); err != nil || string(platform) != nixSystem(t) {
		t.Errorf("system = %q, %v; want %q", platform, err, nixSystem(t))
	}
	bash, err := os.Readlink(filepath.Join(system, "sw", "bin", "bash"))
	if err != nil || !regexp.MustCompile(`^/nix/store/[0-9a-z]{32}-bash$`).MatchString(bash) {
		t.Errorf("sw/bin/bash -> %q, %v; want the bash store path", bash, err)
	}
	if version, err := os.ReadFile(filepath.Join(system, "nixos-version")); err != nil || string(version) != "25.11.nixcfs" {
		t.Errorf("nixos-version = %q, %v", version, err)
	}
	// sw/bin: busybox from the store and its applets, as /run/current-system/sw/bin.
	busybox, err := os.Readlink(filepath.Join(system, "sw", "bin", "busybox"))
	if err != nil || !regexp.MustCompile(`^/nix/store/[0-9a-z]{32}-busybox$`).MatchString(busybox) {
		t.Errorf("sw/bin/busybox -> %q, %v; want the busybox store path", busybox, err)
	}
	for _, applet := range []string{"sh", "su", "login", "hostname", "env", "ls", "cat", "ps", "ip", "passwd", "nologin"} {
		if target, err := os.Readlink(filepath.Join(system, "sw", "bin", applet)); err != nil || target != "busybox" {
			t.Errorf("sw/bin/%s -> %q, %v; want busybox", applet, target, err)
		}
	}
}

func nixSystem(t *testing.T) string {
	cmd := exec.Command("nix-instantiate", "--eval", "--expr", "builtins.currentSystem")
	cmd.Env = nixEnv()
	out, err := cmd.Output()
	if err != nil {
		return "x86_64-linux" // only used when Nix runs; requireNix skips otherwise
	}
	return strings.Trim(strings.TrimSpace(string(out)), `"`)
}

// nix-env --set into a profile, as nixos-container create and update do.
func TestNixEnvProfile(t *testing.T) {
	requireNix(t)
	t.Parallel()
	guest := guestDir(t)
	dir := t.TempDir()
	profile := filepath.Join(dir, "profiles", "system")
	if err := os.MkdirAll(filepath.Dir(profile), 0o755); err != nil {
		t.Fatal(err)
	}
	for generation, hostName := range []string{"first", "second"} {
		writeFiles(t, dir, map[string]string{"configuration.nix": strings.Replace(containerTemplate, `"foo"`, `"`+hostName+`"`, 1)})
		cmd := exec.Command("nix-env", "-p", profile, "-f", guest,
			"-I", "nixos-config="+filepath.Join(dir, "configuration.nix"),
			"--arg", "init", initBinary,
			"--option", "substituters", "",
			"--set", "-A", "system")
		cmd.Env = nixEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nix-env --set: %v\n%s", err, out)
		}
		link, err := os.Readlink(profile)
		if want := fmt.Sprintf("system-%d-link", generation+1); err != nil || link != want {
			t.Errorf("profile -> %q, %v; want %s", link, err, want)
		}
		checkLayout(t, profile)
		if got := lookup(t, readConfig(t, profile), "networking.hostName"); got != `"`+hostName+`"` {
			t.Errorf("generation %d hostName = %s, want %q", generation+1, got, hostName)
		}
	}
}

// Without guest/bin/init, evaluation still works and building says what to
// do. Runs on a copy of the Nix files, so the real guest/bin is untouched.
func TestMissingInitBinary(t *testing.T) {
	requireNix(t)
	t.Parallel()
	copyDir := filepath.Join(t.TempDir(), "guest")
	for _, name := range []string{"default.nix", "modules.nix", "lib/default.nix", "lib/modules.nix", "lib/types.nix"} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, copyDir, map[string]string{name: string(data)})
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"configuration.nix": containerTemplate})
	config := "nixos-config=" + filepath.Join(dir, "configuration.nix")

	build := exec.Command("nix-build", copyDir, "-I", config, "-A", "system", "--no-out-link", "--option", "substituters", "")
	build.Env = nixEnv()
	out, err := build.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "error: guest/bin/init is missing: run make guest") {
		t.Errorf("nix-build without guest/bin/init: %v\n%s", err, out)
	}

	eval := exec.Command("nix-instantiate", "--eval", copyDir, "-I", config, "-A", "config.networking.hostName")
	eval.Env = nixEnv()
	out, err = eval.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != `"foo"` {
		t.Errorf("evaluating config.networking.hostName without the binary = %s, %v", out, err)
	}
}

// The system's closure holds busybox, whose applets run from sw/bin.
func TestBusyboxInClosure(t *testing.T) {
	requireNix(t)
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"configuration.nix": containerTemplate})
	result, stderr, err := nixBuild(t, guestDir(t), dir)
	if err != nil {
		t.Fatalf("nix-build: %v\n%s", err, stderr)
	}
	busybox, err := os.Readlink(filepath.Join(result, "sw", "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	query := exec.Command("nix-store", "-qR", result)
	query.Env = nixEnv()
	closure, err := query.Output()
	if err != nil || !strings.Contains(string(closure), busybox+"\n") {
		t.Errorf("closure of the system lacks %s: %v\n%s", busybox, err, closure)
	}
	out, err := exec.Command(filepath.Join(result, "sw", "bin", "sh"), "-c", "echo $((6 * 7)) | cat").Output()
	if err != nil || string(out) != "42\n" {
		t.Errorf("sw/bin/sh -c ... = %q, %v", out, err)
	}
}

// system.extraDependencies puts derivations of pkgs.runCommand in the system's
// closure: nix-build builds each before the system, and says so.
func TestExtraDependencies(t *testing.T) {
	requireNix(t)
	t.Parallel()
	dir := t.TempDir()
	// A name of this run's own, so that the derivations are built here, not found.
	tag := fmt.Sprintf("%d", time.Now().UnixNano())
	writeFiles(t, dir, map[string]string{"configuration.nix": strings.Replace(containerTemplate,
		"networking.useDHCP = false;\n",
		"networking.useDHCP = false;\n  system.extraDependencies = map (i: pkgs.runCommand \"dep-${toString i}-"+tag+
			"\" { n = i; } \"echo $n > $out\") [ 1 2 3 ];\n", 1)})
	result, stderr, err := nixBuild(t, guestDir(t), dir)
	if err != nil {
		t.Fatalf("nix-build: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "these 4 derivations will be built:") {
		t.Errorf("nix-build did not build 3 dependencies and the system:\n%s", stderr)
	}
	deps, err := os.ReadFile(filepath.Join(result, "extra-dependencies"))
	if err != nil {
		t.Fatal(err)
	}
	query := exec.Command("nix-store", "-qR", result)
	query.Env = nixEnv()
	closure, err := query.Output()
	if err != nil {
		t.Fatal(err)
	}
	paths := strings.Fields(string(deps))
	if len(paths) != 3 {
		t.Fatalf("extra-dependencies: %q", deps)
	}
	for i, p := range paths {
		if !strings.Contains(string(closure), p+"\n") {
			t.Errorf("closure of the system lacks %s", p)
		}
		if text, err := os.ReadFile(p); err != nil || string(text) != fmt.Sprintf("%d\n", i+1) {
			t.Errorf("%s holds %q, %v", p, text, err)
		}
	}
}

// The system's bash is a real one, runs from the store and reads /etc/profile
// as a login shell, as NixOS's container@.service has it do on reload.
func TestBashInSystem(t *testing.T) {
	requireNix(t)
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"configuration.nix": containerTemplate})
	result, stderr, err := nixBuild(t, guestDir(t), dir)
	if err != nil {
		t.Fatalf("nix-build: %v\n%s", err, stderr)
	}
	bash, err := os.Readlink(filepath.Join(result, "sw", "bin", "bash"))
	if err != nil {
		t.Fatal(err)
	}
	query := exec.Command("nix-store", "-qR", result)
	query.Env = nixEnv()
	closure, err := query.Output()
	if err != nil || !strings.Contains(string(closure), bash+"\n") {
		t.Errorf("closure of the system lacks %s: %v\n%s", bash, err, closure)
	}
	out, err := exec.Command(filepath.Join(result, "sw", "bin", "bash"), "--login", "-c", "echo ${BASH_VERSINFO[0]} $((6 * 7))").Output()
	if err != nil || !regexp.MustCompile(`^[5-9] 42\n$`).Match(out) {
		t.Errorf("sw/bin/bash --login -c ... = %q, %v", out, err)
	}
}

// Without a static busybox or bash the build says what to install.
func TestMissingStaticTool(t *testing.T) {
	requireNix(t)
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"configuration.nix": containerTemplate})
	// A dynamically linked program stands in for Debian's non-static builds.
	dynamic, err := exec.LookPath("nix-build")
	if err != nil {
		t.Fatal(err)
	}
	if dynamic, err = filepath.EvalSymlinks(dynamic); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"busybox", "bash"} {
		missing := filepath.Join(dir, "no", tool)
		for _, tc := range []struct{ path, want string }{
			{missing, "error: " + missing + " is missing: apt-get install " + tool + "-static"},
			{dynamic, "is dynamically linked (apt-get install " + tool + "-static)"},
		} {
			build := exec.Command("nix-build", guestDir(t), "-I", "nixos-config="+filepath.Join(dir, "configuration.nix"),
				"-A", "system", "--no-out-link", "--arg", "init", initBinary, "--arg", tool, tc.path,
				"--option", "substituters", "")
			build.Env = nixEnv()
			out, err := build.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Errorf("nix-build --arg %s %s: %v\n%s\nwant %q", tool, tc.path, err, out, tc.want)
			}
		}
	}
}

// The built switch-to-configuration finds its own system.
func TestBuiltSwitchToConfiguration(t *testing.T) {
	requireNix(t)
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"configuration.nix": `{ networking.hostName = "dry"; services.hello = { enable = true; port = 8081; }; }`})
	result, stderr, err := nixBuild(t, guestDir(t), dir)
	if err != nil {
		t.Fatalf("nix-build: %v\n%s", err, stderr)
	}
	system, err := filepath.EvalSymlinks(result)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(result, "bin", "switch-to-configuration"), "dry-activate").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "would activate "+system+"\nhostname dry\nhello port 8081") {
		t.Errorf("switch-to-configuration dry-activate = %v\n%s", err, out)
	}
}
