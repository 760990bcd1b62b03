# The nixcfs guest system: a stand-in for <nixpkgs/nixos> that builds offline,
# without nixpkgs, from a real configuration.nix:
#
#   nix-build guest -I nixos-config=./configuration.nix -A system
#   nix-env -p PROFILE -f guest -I nixos-config=./configuration.nix --set -A system
#
# `init' is the guest's static init binary (`make guest' builds it:
# CGO_ENABLED=0 go build -o guest/bin/init ./guest/init); tests pass their
# own with `--arg init /path/to/init'.
{ configuration ? <nixos-config>
, system ? builtins.currentSystem
, init ? ./bin/init
}:

let
  lib = import ./lib;

  guestInit =
    if builtins.pathExists init
    then builtins.path { path = init; name = "nixcfs-guest-init"; }
    else if init == ./bin/init
    then throw "guest/bin/init is missing: run make guest"
    else throw "${toString init} is missing: build it with CGO_ENABLED=0 go build -o ${toString init} ./guest/init";

  # The guest has no nixpkgs; `pkgs' holds only what its modules use.
  pkgs = {
    inherit system lib;
    nixcfs-guest-init = guestInit;
    writeText = name: text: builtins.toFile name text;
  };

  eval = lib.evalModules {
    modules = [ ./modules.nix configuration ];
    specialArgs = {
      inherit pkgs;
      modulesPath = toString ./.;
    };
  };
in
{
  inherit (eval) config options;
  inherit pkgs;
  system = eval.config.system.build.toplevel;
}
