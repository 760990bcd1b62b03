package packaging

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every .nix file of the repository parses.
func TestNixFilesParse(t *testing.T) {
	needTool(t, "nix-instantiate")
	var files []string
	filepath.WalkDir(repo, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repo, path)
		if d.IsDir() && (rel == "build" || rel == ".git" || rel == filepath.Join("guest", "bin")) {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, ".nix") {
			files = append(files, rel)
		}
		return nil
	})
	for _, want := range []string{"flake.nix", "default.nix", "nix/package.nix", "nix/module.nix", "packaging/check-module.nix"} {
		found := false
		for _, f := range files {
			found = found || f == want
		}
		if !found {
			t.Errorf("%s is missing", want)
		}
	}
	for _, f := range files {
		run(t, nil, "nix-instantiate", "--parse", f)
	}
}

type moduleCheck struct {
	Equal          bool     `json:"equal"`
	OnlyInModule   []string `json:"onlyInModule"`
	OnlyInFile     []string `json:"onlyInFile"`
	Text           string   `json:"text"`
	Path           []string `json:"path"`
	SystemPackages []string `json:"systemPackages"`
	ExecStart      struct {
		Got, Want string
		Equal     bool
	} `json:"execStart"`
	Disabled map[string]any `json:"disabled"`
}

// checkModule evaluates check-module.nix but its flake part, which checkFlake does.
func checkModule(t *testing.T, args string) moduleCheck {
	t.Helper()
	var c moduleCheck
	evalJSON(t, `removeAttrs (import ./packaging/check-module.nix { `+args+` }) [ "flake" ]`, &c)
	return c
}

// evalJSON evaluates a Nix expression in the repository into v.
func evalJSON(t *testing.T, expr string, v any) []byte {
	t.Helper()
	needTool(t, "nix-instantiate")
	out := run(t, nil, "nix-instantiate", "--eval", "--strict", "--json", "-E", expr)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s: %v\n%s", expr, err, out)
	}
	return []byte(out)
}

// The NixOS module's nixcfs.service has the settings of the unit file make install
// installs, and its options reach the command line.
func TestModuleUnitIsUnitFile(t *testing.T) {
	c := checkModule(t, "")
	if !c.Equal {
		t.Errorf("the module's unit differs from packaging/nixcfs.service.in:\nonly in the module: %q\nonly in the file: %q\nthe module's unit:\n%s",
			c.OnlyInModule, c.OnlyInFile, c.Text)
	}
	if len(c.Path) != 1 || !strings.Contains(c.Path[0], "-nix/bin:") || !strings.Contains(c.Path[0], "-systemd/bin:") {
		t.Errorf("the service's PATH should hold nix and systemd: %q", c.Path)
	}
	if strings.Join(c.SystemPackages, " ") != "@prefix@" {
		t.Errorf("environment.systemPackages: %q, want the package", c.SystemPackages)
	}
	if !c.ExecStart.Equal {
		t.Errorf("with mountPoint, allowOther, logLevel and extraArgs set, ExecStart is\n%s\nwant\n%s", c.ExecStart.Got, c.ExecStart.Want)
	}
	if len(c.Disabled) != 0 {
		t.Errorf("without enable the module made services: %v", c.Disabled)
	}
	for _, want := range []string{"[Unit]\n", "[Service]\n", "Type=notify\n", "[Install]\nWantedBy=multi-user.target\n"} {
		if !strings.Contains(c.Text, want) {
			t.Errorf("the module's unit text lacks %q:\n%s", want, c.Text)
		}
	}
}

// flake.nix's outputs, called with a stand-in for nixpkgs: packages and checks are
// nix/package.nix built from the flake's tree with its date and commit, the overlay
// builds pkgs.nixcfs with the final package set, and nixosModules.default is the module
// with the flake's package as a default a host's own setting overrides.
func TestFlakeWiring(t *testing.T) {
	var f struct {
		Equal bool `json:"equal"`
	}
	out := evalJSON(t, "(import ./packaging/check-module.nix { }).flake", &f)
	if !f.Equal {
		var pretty bytes.Buffer
		json.Indent(&pretty, out, "", "  ")
		t.Errorf("flake.nix's wiring is not as check-module.nix expects:\n%s", pretty.String())
	}
}

// The check sees a unit file that drifted.
func TestModuleCheckSeesDrift(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join(repo, "packaging", "nixcfs.service.in"))
	if err != nil {
		t.Fatal(err)
	}
	drifted := strings.Replace(string(unit), "Restart=on-failure", "Restart=always", 1)
	drifted = strings.Replace(drifted, "Wants=nix-daemon.socket\n", "", 1)
	path := filepath.Join(t.TempDir(), "nixcfs.service.in")
	os.WriteFile(path, []byte(drifted), 0o644)
	c := checkModule(t, "unitFile = "+path+";")
	if c.Equal || strings.Join(c.OnlyInFile, "|") != "Service Restart=always" ||
		strings.Join(c.OnlyInModule, "|") != "Service Restart=on-failure|Unit Wants=nix-daemon.socket" {
		t.Errorf("drift: equal %v, only in the module %q, only in the file %q", c.Equal, c.OnlyInModule, c.OnlyInFile)
	}
}
