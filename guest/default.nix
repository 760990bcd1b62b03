# The nixcfs guest system: a stand-in for <nixpkgs/nixos> that builds offline,
# without nixpkgs, from a real configuration.nix:
#
#   nix-build guest -I nixos-config=./configuration.nix -A system
#   nix-env -p PROFILE -f guest -I nixos-config=./configuration.nix --set -A system
#
# `init' is the guest's static init binary (`make guest' builds it:
# CGO_ENABLED=0 go build -o guest/bin/init ./guest/init); tests pass their
# own with `--arg init /path/to/init'. `busybox' is the static busybox the
# system's shell, su, login, hostname and the other tools come from: Debian's
# busybox-static (`--arg busybox /path/to/busybox' for another one).
# `bash' is the system's bash, as NixOS systems have one: Debian's
# bash-static (`--arg bash /path/to/bash').
{ configuration ? <nixos-config>
, system ? builtins.currentSystem
, init ? ./bin/init
, busybox ? /bin/busybox
, bash ? /bin/bash-static
}:

let
  lib = import ./lib;

  guestInit =
    if builtins.pathExists init
    then builtins.path { path = init; name = "nixcfs-guest-init"; }
    else if init == ./bin/init
    then throw "guest/bin/init is missing: run make guest"
    else throw "${toString init} is missing: build it with CGO_ENABLED=0 go build -o ${toString init} ./guest/init";

  # A single static executable, imported into the store as it is; pkg is the
  # Debian package that has it.
  staticTool = path: name: pkg:
    if builtins.pathExists path
    then builtins.path { inherit path name; }
    else throw "${toString path} is missing: apt-get install ${pkg}";

  # Busybox, which the toplevel's builder checks and lays out as the system's
  # sw/bin; a static bash, laid out as the system's sw/bin/bash.
  guestBusybox = staticTool busybox "busybox" "busybox-static";
  guestBash = staticTool bash "bash" "bash-static";

  # The guest has no nixpkgs; `pkgs' holds only what its modules use.
  pkgs = {
    inherit system lib;
    nixcfs-guest-init = guestInit;
    busybox = guestBusybox;
    bash = guestBash;
    writeText = name: text: builtins.toFile name text;
    # nixpkgs's runCommand NAME ENV COMMAND: COMMAND, a shell script, makes $out.
    # It runs in busybox's sh, whose applets (sleep, echo, mkdir...) are its
    # commands; ENV's attributes are in its environment.
    runCommand = name: env: buildCommand: derivation (env // {
      inherit name system buildCommand;
      builder = "${guestBash}";
      args = [ "-c" "exec -a sh ${guestBusybox} -c \"$buildCommand\"" ];
    });
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
