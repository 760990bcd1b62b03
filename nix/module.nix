# services.nixcfs: the host's NixOS containers as a filesystem, mounted at boot.
#
# The unit is the one `make install` installs on other hosts
# (packaging/nixcfs.service.in): `make check-nix` renders this module's unit and
# compares the two. The host's own container@.service (boot.enableContainers) runs the
# containers, as it does for nixos-container; nixcfs only drives it.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkEnableOption mkIf mkOption types;
  cfg = config.services.nixcfs;

  # An ExecStart= word: as it is when it needs no quoting, else double-quoted; % and $
  # are doubled, since systemd expands them.
  execWord = arg:
    let s = builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] arg; in
    if builtins.match "[A-Za-z0-9_./:=,+@-]+" s != null then s
    else builtins.toJSON s;
in
{
  options.services.nixcfs = {
    enable = mkEnableOption "nixcfs, the host's NixOS containers as a filesystem";

    package = mkOption {
      type = types.package;
      default = pkgs.nixcfs or (pkgs.callPackage ./package.nix { });
      defaultText = lib.literalExpression "pkgs.nixcfs";
      description = "The nixcfs package: the service's binary, also put in the system's packages.";
    };

    mountPoint = mkOption {
      type = types.str;
      default = "/mnt/nixc";
      description = "Where the containers are mounted; made if it does not exist.";
    };

    allowOther = mkOption {
      type = types.bool;
      default = false;
      description = "Let users other than root read the mount's files (only root ever writes).";
    };

    logLevel = mkOption {
      type = types.enum [ "debug" "info" "warn" "error" ];
      default = "info";
      description = "The service's log level, in the journal.";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--layout=old" ];
      description = "More flags for `nixcfs mount` (see nixcfs(1)).";
    };
  };

  config = mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];

    systemd.services.nixcfs = {
      description = "NixOS containers as a filesystem (nixcfs)";
      documentation = [ "man:nixcfs(1)" "man:nixcfs(5)" ];
      after = [ "local-fs.target" "nix-daemon.socket" ];
      wants = [ "nix-daemon.socket" ];
      wantedBy = [ "multi-user.target" ];
      unitConfig.RequiresMountsFor = [ "/nix/store" "/nix/var/nix" "/var/lib/nixos-containers" "/var/lib/nixcfs" "/var/log/nixcfs" ];
      # nix-env and nix build the containers' systems; journalctl serves NAME/log.
      path = [ config.nix.package config.systemd.package ];
      serviceConfig = {
        Type = "notify";
        ExecStart = lib.concatStringsSep " " (map execWord (
          [ "${cfg.package}/bin/nixcfs" "mount" "--mkdir" "--log-level=${cfg.logLevel}" ]
          ++ lib.optional cfg.allowOther "--allow-other"
          ++ cfg.extraArgs
          ++ [ cfg.mountPoint ]
        ));
        Restart = "on-failure";
        RestartSec = "1s";
      };
    };
  };
}
