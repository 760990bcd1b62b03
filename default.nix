# nixcfs for Nix without flakes, with the nixpkgs on NIX_PATH:
#
#   nix-build                  the package (./result/bin/nixcfs, its man pages,
#                              completions and nixcfs.service)
#   nix-env -f . -i            install it in your profile
#
# On NixOS, import the module and enable it in configuration.nix:
#
#   imports = [ /path/to/nixcfs/nix/module.nix ];
#   services.nixcfs.enable = true;
{ pkgs ? import <nixpkgs> { } }:

pkgs.callPackage ./nix/package.nix { }
