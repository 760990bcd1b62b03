# The options the nixcfs guest system understands, declared as NixOS declares
# them, and the system they build: config.system.build.toplevel.
{ config, lib, pkgs, ... }:

with lib;

let
  userModule = { name, config, ... }: {
    options = {
      name = mkOption {
        type = types.passwdEntry types.str;
        default = name;
        description = "The name of the user account.";
      };
      description = mkOption {
        type = types.passwdEntry types.str;
        default = "";
        description = "A short description of the user account (the GECOS field).";
      };
      isNormalUser = mkOption {
        type = types.bool;
        default = false;
        description = "Whether this is an account for a real user.";
      };
      isSystemUser = mkOption {
        type = types.bool;
        default = false;
        description = "Whether this is a system user.";
      };
      uid = mkOption {
        type = types.nullOr types.int;
        default = null;
        description = "The account UID; null picks one (from 1000 up for other users, from 999 down for system users), kept across boots.";
      };
      group = mkOption {
        type = types.str;
        default = if config.isNormalUser then "users" else "";
        description = "The user's primary group (users for a normal user, nogroup if empty).";
      };
      extraGroups = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "The user's auxiliary groups.";
      };
      home = mkOption {
        type = types.passwdEntry types.str;
        default = if config.isNormalUser then "/home/${name}" else "/var/empty";
        description = "The user's home directory.";
      };
      createHome = mkOption {
        type = types.bool;
        default = config.isNormalUser;
        description = "Whether to create the home directory.";
      };
      initialPassword = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "The user's initial password, in clear text (hashed into /etc/shadow when the user is first created).";
      };
      hashedPassword = mkOption {
        type = types.nullOr (types.passwdEntry types.str);
        default = null;
        description = "The user's hashed password, set when the user is first created (as with users.mutableUsers); a user with neither password cannot log in with one.";
      };
      openssh.authorizedKeys.keys = mkOption {
        type = types.listOf types.singleLineStr;
        default = [ ];
        description = "Public keys allowed to log in as this user; the guest writes them to /etc/ssh/authorized_keys.d/NAME.";
      };
    };
  };
in
{
  options = {
    boot.isContainer = mkOption {
      type = types.bool;
      default = false;
      description = "Whether this system runs in a container.";
    };

    networking = {
      hostName = mkOption {
        # NixOS's type: a valid host name, or empty.
        type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$";
        default = "nixos";
        description = "The name of the machine; the guest's init sets it.";
      };
      useDHCP = mkOption {
        type = types.bool;
        default = true;
        description = "Whether to use DHCP (the host configures the guest's address).";
      };
      firewall = {
        enable = mkOption {
          type = types.bool;
          default = true;
          description = "Whether to enable the firewall (not enforced by the guest).";
        };
        allowedTCPPorts = mkOption {
          type = types.listOf types.port;
          default = [ ];
          description = "TCP ports open in the firewall (not enforced by the guest).";
        };
        allowedUDPPorts = mkOption {
          type = types.listOf types.port;
          default = [ ];
          description = "UDP ports open in the firewall (not enforced by the guest).";
        };
      };
    };

    time.timeZone = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "The time zone.";
    };

    services.openssh.enable = mkEnableOption "the OpenSSH secure shell daemon";

    services.hello = {
      enable = mkEnableOption "the hello web service";
      port = mkOption {
        type = types.port;
        default = 80;
        description = "The TCP port the hello service listens on.";
      };
      message = mkOption {
        type = types.str;
        default = "Hello from ${config.networking.hostName}";
        description = "The text the hello service answers every GET with.";
      };
    };

    users.users = mkOption {
      type = types.attrsOf (types.submodule userModule);
      default = { };
      description = "User accounts.";
    };

    system = {
      stateVersion = mkOption {
        type = types.str;
        default = config.system.nixos.release;
        description = "The NixOS release the system's state was created with.";
      };
      nixos = {
        release = mkOption {
          type = types.str;
          default = "25.11";
          description = "The NixOS release this guest system mimics.";
        };
        version = mkOption {
          type = types.str;
          default = "${config.system.nixos.release}.nixcfs";
          description = "The version written to the system's nixos-version file.";
        };
        label = mkOption {
          type = types.strMatching "[a-zA-Z0-9:_.+-]+";
          default = config.system.nixos.version;
          description = "The label in the system's store path name.";
        };
      };
      name = mkOption {
        type = types.str;
        default = if config.networking.hostName == "" then "unnamed" else config.networking.hostName;
        description = "The name in the system's store path name.";
      };
      extraDependencies = mkOption {
        type = types.listOf types.package;
        default = [ ];
        description = "Store paths (derivations) in the system's closure that nothing in it refers to: built with the system, kept as long as it is.";
      };
      build = mkOption {
        type = types.lazyAttrsOf types.raw;
        default = { };
        description = "Attribute set of derivations used to build the system.";
      };
    };
  };

  config = {
    # The accounts every NixOS system has (nixos/modules/config/users-groups.nix).
    # The guest's init writes /etc/passwd, /etc/group and /etc/shadow from
    # users.users at boot and on every activation; root's password is locked
    # ("!") until set, so `su' from root works and `login' asks for one.
    users.users = {
      root = {
        uid = 0;
        description = "System administrator";
        home = "/root";
        group = "root";
      };
      nobody = {
        uid = 65534;
        isSystemUser = true;
        description = "Unprivileged account (don't use!)";
        group = "nogroup";
      };
    };

    # The toplevel is built by the guest's init binary itself (no stdenv, no
    # shell): it lays out init (a stage-2 script that execs nixcfs-init, the
    # binary), bin/switch-to-configuration, config.json, nixos-version, system
    # and sw/bin (busybox and a link per applet: sh, su, login, hostname, ls,
    # ps, ip...; and bash), and, as NixOS, extra-dependencies (the store paths
    # of system.extraDependencies, which puts them in the closure).
    # config.json holds the whole configuration but _module, system.build and
    # system.extraDependencies, as the guest's init reads it.
    system.build.toplevel = derivation {
      name = "nixos-system-${config.system.name}-${config.system.nixos.label}";
      inherit (pkgs) system;
      builder = "${pkgs.nixcfs-guest-init}";
      args = [ "build-toplevel" ];
      init = pkgs.nixcfs-guest-init;
      busybox = pkgs.busybox;
      bash = pkgs.bash;
      nixosVersion = config.system.nixos.version;
      inherit (config.system) extraDependencies;
      configJSON = builtins.toJSON (removeAttrs config [ "_module" "system" ] // {
        system = removeAttrs config.system [ "build" "extraDependencies" ];
      });
      passAsFile = [ "configJSON" ];
      preferLocalBuild = true;
      allowSubstitutes = false;
    };
  };
}
