package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// runBuildToplevel is the builder of the system's toplevel derivation
// (guest/modules.nix). Nix runs it without a shell, with the derivation's
// attributes in the environment:
//
//	out             the output path to create
//	init            the store path of this binary
//	configJSONPath  a file holding the configuration as JSON (passAsFile)
//	nixosVersion    the text of nixos-version
//
// and it creates
//
//	$out/init                          -> init
//	$out/bin/switch-to-configuration   -> init
//	$out/config.json
//	$out/nixos-version
func runBuildToplevel(getenv func(string) string, stderr io.Writer) int {
	if err := buildToplevel(getenv); err != nil {
		fmt.Fprintf(stderr, "build-toplevel: %v\n", err)
		return 1
	}
	return 0
}

func buildToplevel(getenv func(string) string) error {
	out, init, configFile := getenv("out"), getenv("init"), getenv("configJSONPath")
	for name, value := range map[string]string{"out": out, "init": init, "configJSONPath": configFile} {
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
	return os.WriteFile(filepath.Join(out, "nixos-version"), []byte(getenv("nixosVersion")), 0o444)
}
