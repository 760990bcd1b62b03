// Package guest is the nixcfs guest system: a stand-in for <nixpkgs/nixos>
// that the real nix-build builds offline, without nixpkgs, from a real
// configuration.nix (see default.nix, modules.nix and lib/). Its toplevel's
// init and bin/switch-to-configuration are one static Go binary (./init),
// built with
//
//	CGO_ENABLED=0 go build -o guest/bin/init ./guest/init
//
// This package holds no Go code of its own; its tests build systems with
// nix-build and check what comes out.
package guest
