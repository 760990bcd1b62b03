#!/usr/bin/env bash
# packaging/prereqs.sh TARGET NEED...: for each prerequisite of `make TARGET` this
# machine lacks, one line on stderr saying what to do; exit 1 if any is missing.
#
#   go       the Go of go.mod's `go` line or later ($GO, else go on PATH)
#   root     running as root
#   fuse     /dev/fuse ($FUSE_DEVICE)
#   systemd  systemd as PID 1
#   testhost systemd as PID 1, or systemd-nspawn to boot the test host, or apt-get
#            for `make deps` to install it
#   apt      apt-get, for `make deps`
#   runtime  what nixcfs.service runs: nix-build and nix-env, systemd-nspawn
set -u
target=$1
shift
repo=$(cd "$(dirname "$0")/.." && pwd)
missing=0
say() {
	echo "make $target: $*" >&2
	missing=1
}
pid1=$(cat /proc/1/comm 2>/dev/null || echo unknown)

for need in "$@"; do
	case $need in
	go)
		want=$(sed -n 's/^go \([0-9][0-9.]*\)$/\1/p' "$repo/go.mod")
		get="unpack a release from https://go.dev/dl/ into /usr/local/go (Debian 12's golang-go is Go 1.19, too old)"
		gobin=$(command -v "${GO:-go}" || true)
		if [ -z "$gobin" ]; then
			say "needs Go $want or later, and there is no ${GO:-go}: $get"
			continue
		fi
		# GOTOOLCHAIN=local: the Go that is there, not one it would download.
		have=$(cd / && GOTOOLCHAIN=local "$gobin" env GOVERSION 2>/dev/null)
		have=${have#go}
		if [ -z "$have" ] || [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" != "$want" ]; then
			say "needs Go $want or later (go.mod), and $gobin is go${have:-?}: $get"
		fi
		;;
	root)
		[ "$(id -u)" = 0 ] || say "needs root: run it as root (sudo make $target)"
		;;
	fuse)
		dev=${FUSE_DEVICE:-/dev/fuse}
		[ -c "$dev" ] || say "needs $dev: load the fuse module (modprobe fuse); in a container, pass the device in (docker run --device /dev/fuse --cap-add SYS_ADMIN)"
		;;
	systemd)
		[ "$pid1" = systemd ] || say "needs systemd as PID 1 to run nixcfs.service (PID 1 here is $pid1); to install into another root, set DESTDIR"
		;;
	testhost)
		[ "$pid1" = systemd ] || command -v systemd-nspawn >/dev/null || command -v apt-get >/dev/null ||
			say "needs systemd: PID 1 here is $pid1, and there is no systemd-nspawn (package systemd-container) to boot the test host"
		;;
	runtime)
		nix_missing=
		for tool in nix-build nix-env; do
			command -v "$tool" >/dev/null || nix_missing="$nix_missing $tool"
		done
		[ -z "$nix_missing" ] ||
			say "needs${nix_missing} to build the containers' systems: install Nix (Debian's nix-bin, or from https://nixos.org/download)"
		command -v systemd-nspawn >/dev/null ||
			say "needs systemd-nspawn to run the containers: install systemd-container"
		;;
	apt)
		command -v apt-get >/dev/null || say "needs apt-get (Debian or Ubuntu) to install: $DEB_PACKAGES; elsewhere install them yourself"
		;;
	*)
		say "unknown prerequisite $need (packaging/prereqs.sh)"
		;;
	esac
done
exit $missing
