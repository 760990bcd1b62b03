// Package packaging holds how nixcfs is installed, and the tests of it: the unit file
// make install installs (nixcfs.service.in), the check that the NixOS module
// (nix/module.nix) makes the same unit and that flake.nix wires the package, overlay
// and module as it should (check-module.nix), the vendorHash of the Nix package
// (vendor-hash.sh) and the Makefile's prerequisite checks (prereqs.sh).
package packaging
