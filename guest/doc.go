// Package guest is the nixcfs guest system: a stand-in for <nixpkgs/nixos>
// that the real nix-build builds offline, without nixpkgs, from a real
// configuration.nix (see default.nix, modules.nix and lib/). Its toplevel's
// nixcfs-init (PID 1) and bin/switch-to-configuration are one static Go
// binary (./init), built with
//
//	CGO_ENABLED=0 go build -o guest/bin/init ./guest/init
//
// and its init is a stage-2 script that execs nixcfs-init, so that NixOS's
// own container@.service, which sources init with bash, starts it as well as
// nixcfs's template, which runs it. The toplevel also has NixOS's `system`
// file and a real bash (Debian's bash-static) in sw/bin, which NixOS's
// template's reload runs (see testhost/nixos).
//
// Its shell and tools (sh, su, login, hostname, ls, ps, ip...) are Debian's
// static busybox (package busybox-static, /bin/busybox), imported into the
// store and laid out as the system's sw/bin, so that inside the container
// /run/current-system/sw/bin/su root -l -c CMD works as on NixOS.
//
// This package holds no Go code of its own; its tests build systems with
// nix-build and check what comes out.
package guest
