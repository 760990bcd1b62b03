#!/usr/bin/env bash
# packaging/vendor-hash.sh [--check]: the vendorHash of nix/package.nix, computed as
# buildGoModule computes it: the NAR hash (sha256, SRI) of the vendor directory
# `go mod vendor` makes for the module's files (packaging/go-sources). With --check,
# compare it with the hash nix/package.nix pins, and fail with both when they differ.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2046
cp -r $(cat packaging/go-sources) "$tmp/"
rm -rf "$tmp/guest/bin" "$tmp/vendor"
(cd "$tmp" && GOFLAGS= GOWORK=off GOTOOLCHAIN=local go mod vendor)
hash=$(nix --extra-experimental-features nix-command hash path --type sha256 "$tmp/vendor")
if [ "${1:-}" != --check ]; then
	echo "$hash"
	exit 0
fi
pinned=$(sed -n 's/^ *vendorHash = "\(.*\)";/\1/p' nix/package.nix)
if [ "$pinned" != "$hash" ]; then
	echo "nix/package.nix: vendorHash is $pinned, but go.mod and go.sum give $hash (make vendor-hash prints it)" >&2
	exit 1
fi
echo "vendorHash $hash matches go.mod and go.sum"
