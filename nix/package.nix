# The nixcfs package: the binary, its man pages nixcfs(1) and nixcfs(5), its bash, zsh
# and fish completions, and nixcfs.service for hosts that are not NixOS (on NixOS the
# module, ./module.nix, makes the unit).
{ lib
, stdenv
, buildGoModule
, installShellFiles
, go
, go_1_26 ? null
, src ? null
, version ? "0-unstable"
, commit ? "unknown"
}:

let
  # The module's files, without what builds leave in the tree (build/, guest/bin/).
  # Every Go package is in, as in the flake's source (git's files), so that both
  # vendor the same modules: packaging/vendor-hash.sh hashes this same set.
  defaultSrc = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.difference
      (lib.fileset.unions (map (p: ../. + "/${p}") (lib.splitString " " (lib.trim (builtins.readFile ../packaging/go-sources)))))
      (lib.fileset.maybeMissing ../guest/bin);
  };

  # go.mod's `go` line is the oldest Go that builds nixcfs.
  goMod = builtins.readFile ../go.mod;
  goWanted = builtins.head (builtins.match ".*\ngo ([0-9.]+)\n.*" goMod);
  goFound = if go_1_26 != null && lib.versionAtLeast go_1_26.version goWanted then go_1_26 else go;
  buildGo =
    if lib.versionAtLeast goFound.version goWanted
    then buildGoModule.override { go = goFound; }
    else throw "nixcfs needs Go ${goWanted} or later (go.mod); this nixpkgs has Go ${goFound.version}";
in
buildGo {
  pname = "nixcfs";
  inherit version;
  src = if src != null then src else defaultSrc;

  # The vendored modules' hash. `make vendor-hash` prints it for the current go.mod
  # and go.sum; `make test` fails while this one is stale.
  vendorHash = "sha256-JCEfS/jEFCE8jMubqBQpzfzDdWmysvwi9LEfNQvMnGQ=";

  subPackages = [ "cmd/nixcfs" ];
  ldflags = [ "-s" "-w" "-X main.version=${version}" "-X main.commit=${commit}" ];

  nativeBuildInputs = [ installShellFiles ];

  # The command line's own tests run (help, completion, man pages); every test that
  # needs containers skips unless it runs inside the systemd test host of `make test`
  # (NIXCFS_TESTHOST=1), which a sandboxed build never is. The shells the completion
  # tests drive are not given, so those skip too.
  doCheck = true;
  nativeCheckInputs = [ ];

  postInstall = lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
    $out/bin/nixcfs gen-docs --man gen/man --completions gen/completions
    installManPage gen/man/man1/nixcfs.1 gen/man/man5/nixcfs.5
    installShellCompletion --cmd nixcfs \
      --bash gen/completions/nixcfs.bash \
      --zsh gen/completions/_nixcfs \
      --fish gen/completions/nixcfs.fish
  '' + ''
    mkdir -p $out/lib/systemd/system
    substitute packaging/nixcfs.service.in $out/lib/systemd/system/nixcfs.service \
      --replace-fail @bindir@ $out/bin
  '';

  meta = {
    description = "NixOS containers as a filesystem, and nixos-container's command line";
    mainProgram = "nixcfs";
    platforms = lib.platforms.linux;
  };
}
