// Package guest is the nixcfs guest system: a stand-in for <nixpkgs/nixos>
// that the real nix-build builds offline, without nixpkgs, from a real
// configuration.nix (see default.nix, modules.nix and lib/). Its toplevel's
// init and bin/switch-to-configuration are one static Go binary (./init),
// built with
//
//	CGO_ENABLED=0 go build -o guest/bin/init ./guest/init
//
// Its shell and tools (sh, su, login, hostname, ls, ps, ip...) are Debian's
// static busybox (package busybox-static, /bin/busybox), imported into the
// store and laid out as the system's sw/bin, so that inside the container
// /run/current-system/sw/bin/su root -l -c CMD works as on NixOS.
//
// This package holds no Go code of its own; its tests build systems with
// nix-build and check what comes out.
package guest
