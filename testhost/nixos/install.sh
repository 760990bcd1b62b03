#!/usr/bin/env bash
# testhost/nixos/install.sh install NIXCFS_BIN | uninstall
#
# install: put NixOS's container@.service (this directory's version of it) in place, as
# a NixOS host has it: its scripts in the store with the store paths they name filled in,
# the unit in /etc/systemd/system, systemd reloaded. Prints the scripts' store path.
# uninstall: remove the unit and reload systemd; hosts then fall back to whatever
# template is left (nixcfs's own in /run/systemd/system).
#
# For the disposable test host (testhost/run.sh) only: it changes the host's systemd
# configuration and adds to its Nix store. The static bash comes from Debian's
# bash-static (make deps installs it).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
unit=/etc/systemd/system/container@.service
static_bash=/bin/bash-static

case "${1-}" in
install)
	nixcfs=${2:?usage: install.sh install NIXCFS_BIN}
	[[ -x "$nixcfs" ]] || { echo "install.sh: $nixcfs is not an executable" >&2; exit 1; }
	[[ -x "$static_bash" ]] || { echo "install.sh: $static_bash is missing: apt-get install bash-static" >&2; exit 1; }
	runtime_shell=$(nix-store --add "$static_bash")
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	scripts=$tmp/container-unit-scripts
	mkdir "$scripts"
	for script in pre-start start post-start reload container-init; do
		sed -e "s|@runtimeShell@|$runtime_shell|g" -e "s|@nixcfs@|$nixcfs|g" "$here/$script" >"$scripts/$script"
		chmod 0555 "$scripts/$script"
	done
	out=$(nix-store --add "$scripts")
	mkdir -p "$(dirname "$unit")"
	sed -e "s|@out@|$out|g" -e "s|@runtimeShell@|$runtime_shell|g" "$here/container@.service" >"$unit.tmp"
	mv "$unit.tmp" "$unit"
	systemctl daemon-reload
	echo "$out"
	;;
uninstall)
	rm -f "$unit"
	systemctl daemon-reload
	;;
*)
	echo "usage: install.sh install NIXCFS_BIN | uninstall" >&2
	exit 2
	;;
esac
