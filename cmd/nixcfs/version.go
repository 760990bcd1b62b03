package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version and commit are set when the binary is built by the Makefile or the Nix
// package: -ldflags "-X main.version=... -X main.commit=...".
var (
	version string
	commit  string
)

// versionString is `nixcfs --version`: the version, the commit and the Go version.
func versionString() string {
	return fmt.Sprintf("nixcfs %s (commit %s, %s %s/%s)", versionOnly(), commitOnly(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// versionOnly is the version the build was given, or what the Go toolchain knows.
func versionOnly() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// commitOnly is the commit the build was given, else the one the Go toolchain
// stamped (go build in a git checkout, without -buildvcs=false).
func commitOnly() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" && dirty {
			return rev + "-dirty"
		}
		if rev != "" {
			return rev
		}
	}
	return "unknown"
}
