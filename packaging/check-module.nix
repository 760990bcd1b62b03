# The NixOS module's unit against the unit file `make install` installs, without
# nixpkgs: nix/module.nix is evaluated by the project's small module system
# (guest/lib) against a stand-in for the few NixOS options it sets, its
# systemd.services.nixcfs is rendered to unit-file text as NixOS renders units, and
# the two units are compared setting by setting.
#
#   nix-instantiate --eval --strict --json -E 'import ./packaging/check-module.nix { }'
#
# gives { equal; onlyInModule; onlyInFile; text; ... }: `equal` is true when the units
# have the same settings, leaving out only the PATH the module gives the service (on
# other hosts nix and systemd are on the system's PATH); `text` is the module's unit.
# A real NixOS adds what it gives every service (its default PATH entries, locale and
# time zone variables), which the module does not set. `make check-nix` and the
# packaging tests run it; `{ unitFile = FILE; }` compares another unit file.
#
# `flake` checks flake.nix's wiring the same way, its outputs called with a stand-in
# for nixpkgs whose callPackage records what it was given: packages and checks call
# nix/package.nix with the flake's tree, overlays.default makes pkgs.nixcfs with the
# final package set's callPackage, and nixosModules.default is the module with the
# flake's package as its default (which a host's own setting overrides).
{ unitFile ? ./nixcfs.service.in }:

let
  lib = import ../guest/lib;
  inherit (lib) mkOption types;

  # Store paths stand in as placeholders: @prefix@ is the package, as @bindir@ is in
  # the unit file.
  fakePackage = name: outPath: { type = "derivation"; inherit name outPath; };
  nixcfs = fakePackage "nixcfs" "@prefix@";
  nix = fakePackage "nix" "/nix/store/00000000000000000000000000000000-nix";
  systemd = fakePackage "systemd" "/nix/store/11111111111111111111111111111111-systemd";

  # The NixOS options the module sets, as NixOS declares them (the parts it uses).
  standIn = {
    options = {
      environment.systemPackages = mkOption { type = types.listOf types.package; default = [ ]; };
      nix.package = mkOption { type = types.package; default = nix; };
      systemd.package = mkOption { type = types.package; default = systemd; };
      systemd.services = mkOption {
        default = { };
        type = types.attrsOf (types.submodule {
          options = {
            description = mkOption { type = types.str; default = ""; };
            documentation = mkOption { type = types.listOf types.str; default = [ ]; };
            after = mkOption { type = types.listOf types.str; default = [ ]; };
            wants = mkOption { type = types.listOf types.str; default = [ ]; };
            wantedBy = mkOption { type = types.listOf types.str; default = [ ]; };
            path = mkOption { type = types.listOf types.package; default = [ ]; };
            environment = mkOption { type = types.attrsOf types.str; default = { }; };
            unitConfig = mkOption { type = types.attrsOf types.anything; default = { }; };
            serviceConfig = mkOption { type = types.attrsOf types.anything; default = { }; };
          };
        });
      };
    };
  };

  evalWith = settings: (lib.evalModules {
    modules = [ ../nix/module.nix standIn { services.nixcfs = { enable = true; } // settings; } ];
    specialArgs.pkgs = { inherit nixcfs systemd; };
  }).config;

  # NixOS's rendering of a service (nixos/lib/systemd-lib.nix: serviceToUnit): the
  # dependency options joined by spaces into [Unit], a list in unitConfig or
  # serviceConfig one line per element, booleans as words, path as Environment=PATH,
  # wantedBy as [Install]. As "Section Key=value" lines.
  toOption = x: if x == true then "true" else if x == false then "false" else toString x;
  section = name: attrs: lib.concatLists (lib.mapAttrsToList
    (k: v: map (x: "${name} ${k}=${toOption x}") (if builtins.isList v then v else [ v ]))
    attrs);
  render = svc:
    let
      joined = lib.filterAttrs (_: v: v != "") {
        Description = svc.description;
        Documentation = toString svc.documentation;
        After = toString svc.after;
        Wants = toString svc.wants;
      };
      environment = svc.environment // lib.optionalAttrs (svc.path != [ ]) {
        PATH = lib.concatStringsSep ":" (map (p: "${p}/bin") svc.path ++ map (p: "${p}/sbin") svc.path);
      };
    in
    section "Unit" (joined // svc.unitConfig)
    ++ lib.mapAttrsToList (k: v: "Service Environment=${builtins.toJSON "${k}=${v}"}") environment
    ++ section "Service" svc.serviceConfig
    ++ lib.optional (svc.wantedBy != [ ]) "Install WantedBy=${toString svc.wantedBy}";

  # Settings that take a space-separated list, and add up when repeated: compared one
  # element at a time, since NixOS writes a list in unitConfig as repeated lines.
  listSettings = [ "After" "Wants" "Documentation" "RequiresMountsFor" "WantedBy" ];
  elements = l:
    let m = builtins.match "([A-Za-z]+) ([A-Za-z]+)=(.*)" l; in
    if m != null && builtins.elem (builtins.elemAt m 1) listSettings
    then map (x: "${builtins.head m} ${builtins.elemAt m 1}=${x}")
      (lib.filter (x: x != "") (lib.splitString " " (builtins.elemAt m 2)))
    else [ l ];
  normal = lines: lib.sort builtins.lessThan (lib.unique (lib.concatMap elements lines));

  # The unit file as the same lines: comments and blank lines dropped.
  parse = text:
    let
      lines = lib.filter (l: l != "" && !(lib.hasPrefix "#" l) && !(lib.hasPrefix ";" l))
        (map lib.trim (lib.splitString "\n" text));
      step = acc: l:
        let section = builtins.match "[[](.*)[]]" l; in
        if section != null then acc // { section = builtins.head section; }
        else acc // { out = acc.out ++ [ "${acc.section} ${l}" ]; };
    in
    (builtins.foldl' step { section = ""; out = [ ]; } lines).out;

  unitText = builtins.replaceStrings [ "@bindir@" ] [ "@prefix@/bin" ] (builtins.readFile unitFile);

  rendered = render (evalWith { }).systemd.services.nixcfs;
  fromModule = normal rendered;
  fromFile = normal (parse unitText);

  # The module's unit as a unit file, for people reading the check's output.
  text = lib.concatMapStrings
    (section:
      let keys = lib.filter (l: lib.hasPrefix "${section} " l) rendered; in
      lib.optionalString (keys != [ ])
        "[${section}]\n${lib.concatMapStrings (l: lib.removePrefix "${section} " l + "\n") keys}\n")
    [ "Unit" "Service" "Install" ];
  nixosOnly = l: lib.hasPrefix "Service Environment=\"PATH=" l;

  onlyInModule = lib.filter (l: !(builtins.elem l fromFile) && !(nixosOnly l)) fromModule;
  onlyInFile = lib.filter (l: !(builtins.elem l fromModule)) fromFile;

  # The options that change the command line.
  custom = (evalWith {
    mountPoint = "/srv/my containers";
    allowOther = true;
    logLevel = "debug";
    extraArgs = [ "--layout=old" "100%" ];
  }).systemd.services.nixcfs.serviceConfig.ExecStart;
  customWanted = ''@prefix@/bin/nixcfs mount --mkdir --log-level=debug --allow-other --layout=old "100%%" "/srv/my containers"'';

  # flake.nix's outputs, with a stand-in for nixpkgs: for each system a package set
  # whose callPackage returns a derivation-like record of its call.
  flakeOutputs = (import ../flake.nix).outputs;
  standInPkgs = system: standInSet "nixcfs-${system}" system;
  standInSet = tag: system: {
    stdenv.hostPlatform.system = system;
    callPackage = fn: args: {
      type = "derivation";
      name = "nixcfs";
      outPath = "/nix/store/22222222222222222222222222222222-${tag}";
      calledWith = { inherit fn args; };
    };
  };
  standInNixpkgs = {
    lib.genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] standInPkgs;
  };
  # As Nix makes a flake's self: its outputs, its tree and what git says of it.
  self = flakeOutputs { inherit self; nixpkgs = standInNixpkgs; } // {
    outPath = toString ../.;
    lastModifiedDate = "20260101000000";
    rev = "0123456789abcdef0123456789abcdef01234567";
  };
  # A call of nix/package.nix with the flake's tree, version and commit.
  packageCall = drv: {
    isPackageNix = drv.calledWith.fn == ../nix/package.nix;
    src = toString drv.calledWith.args.src.outPath;
    inherit (drv.calledWith.args) version commit;
  };
  wantedCall = { isPackageNix = true; src = toString ../.; version = "0-unstable-20260101000000"; commit = self.rev; };
  overlayResult = self.overlays.default (standInSet "final" "aarch64-linux") (standInSet "prev" "aarch64-linux");
  evalFlakeModule = settings: (lib.evalModules {
    modules = [ self.nixosModules.default standIn { services.nixcfs = { enable = true; } // settings; } ];
    specialArgs.pkgs = standInPkgs "x86_64-linux" // { inherit systemd; };
  }).config;
  flakeModule = evalFlakeModule { };
  ownPackage = evalFlakeModule { package = nixcfs; };
  flakePackage = self.packages.x86_64-linux.default;
  flake = rec {
    # Each system's package is built by that system's package set.
    packages = lib.mapAttrs
      (system: p: packageCall p.default // { forSystem = p.default.outPath == ((standInPkgs system).callPackage null { }).outPath; })
      self.packages;
    sameNamed = self.packages.x86_64-linux.nixcfs.outPath == flakePackage.outPath;
    checks = lib.mapAttrs (_: c: c.package.outPath) self.checks;
    overlay = packageCall overlayResult.nixcfs // {
      byFinal = overlayResult.nixcfs.outPath == "/nix/store/22222222222222222222222222222222-final";
    };
    module = {
      execStart = flakeModule.systemd.services.nixcfs.serviceConfig.ExecStart;
      systemPackages = map (p: p.outPath) flakeModule.environment.systemPackages;
      ownExecStart = ownPackage.systemd.services.nixcfs.serviceConfig.ExecStart;
    };
    equal = lib.all (c: c == wantedCall // { forSystem = true; }) (builtins.attrValues packages)
      && builtins.attrNames packages == [ "aarch64-linux" "x86_64-linux" ]
      && sameNamed
      && checks == lib.mapAttrs (_: p: p.default.outPath) self.packages
      && removeAttrs overlay [ "byFinal" ] == wantedCall && overlay.byFinal
      && module.execStart == "${flakePackage.outPath}/bin/nixcfs mount --mkdir --log-level=info /mnt/nixc"
      && module.systemPackages == [ flakePackage.outPath ]
      && module.ownExecStart == "@prefix@/bin/nixcfs mount --mkdir --log-level=info /mnt/nixc";
  };
in
{
  equal = onlyInModule == [ ] && onlyInFile == [ ];
  inherit onlyInModule onlyInFile text flake;
  path = lib.filter nixosOnly fromModule;
  systemPackages = map (p: p.outPath) (evalWith { }).environment.systemPackages;
  execStart = { got = custom; want = customWanted; equal = custom == customWanted; };
  disabled = (lib.evalModules {
    modules = [ ../nix/module.nix standIn ];
    specialArgs.pkgs = { inherit nixcfs systemd; };
  }).config.systemd.services;
}
