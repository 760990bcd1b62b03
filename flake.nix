{
  description = "nixcfs: NixOS containers as a filesystem, and nixos-container's command line";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # What `nixcfs --version` prints: the commit of the flake's tree.
      build = pkgs: pkgs.callPackage ./nix/package.nix {
        src = self;
        version = "0-unstable-${self.lastModifiedDate or "19700101"}";
        commit = self.rev or self.dirtyRev or "unknown";
      };
    in
    {
      packages = forAllSystems (pkgs: rec {
        nixcfs = build pkgs;
        default = nixcfs;
      });

      overlays.default = final: prev: { nixcfs = build final; };

      # services.nixcfs, with this flake's package as its default.
      nixosModules.default = { lib, pkgs, ... }: {
        imports = [ ./nix/module.nix ];
        services.nixcfs.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      };

      checks = forAllSystems (pkgs: {
        package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      });
    };
}
