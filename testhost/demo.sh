#!/usr/bin/env bash
# testhost/demo.sh: the main job through the mount, on the bundled guest system, each
# shell command printed with its output. Uses the machine's systemd when it is PID 1;
# otherwise boots the disposable test host (testhost/run.sh) and runs inside it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" != "--inside" ] && [ "$(cat /proc/1/comm)" != systemd ]; then
	exec "$repo/testhost/run.sh" "$repo/testhost/demo.sh" --inside
fi

nixcfs=$repo/build/nixcfs
mnt=/mnt/nixc
mkdir -p "$mnt"
"$nixcfs" mount --nixos-path="$repo/guest" --log-level=warn "$mnt" &
mount_pid=$!
cleanup() {
	trap - EXIT
	[ -e "$mnt/demo/state" ] && echo stop > "$mnt/demo/state" 2>/dev/null || true
	rmdir "$mnt/demo" 2>/dev/null || true
	kill "$mount_pid" 2>/dev/null || true
	wait "$mount_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do
	grep -q " $mnt fuse" /proc/mounts && break
	sleep 0.1
done

step() {
	printf '\n$ %s\n' "$*"
	bash -c "$*"
}

cat > /tmp/demo.nix <<'NIX'
{ config, lib, pkgs, ... }:
with lib;
{ boot.isContainer = true;
  networking.hostName = mkDefault "demo";
  networking.useDHCP = false;
  services.hello = { enable = true; message = "Hello from a NixOS container"; };
}
NIX

step "ls $mnt"
step "mkdir $mnt/demo"
step "cat $mnt/demo/state"
step "cat /tmp/demo.nix > $mnt/demo/config.nix"
step "time (echo start > $mnt/demo/state)"
step "cat $mnt/demo/state $mnt/demo/address"
step "cat $mnt/demo/status"
step "curl -s http://\$(cat $mnt/demo/address)/"
step "sed 's/Hello from a NixOS container/Hello again, changed live/' $mnt/demo/config.nix > /tmp/demo2.nix"
step "cat /tmp/demo2.nix > $mnt/demo/config.nix"
step "curl -s http://\$(cat $mnt/demo/address)/"
step "grep -E '^(leader|generation|config) ' $mnt/demo/status"
step "ls $mnt/demo/generations/"
step "echo 2 > $mnt/demo/generation"
step "curl -s http://\$(cat $mnt/demo/address)/"
step "grep -E '^(leader|generation) ' $mnt/demo/status"
step "systemctl status container@demo --no-pager | head -n 5"
step "echo stop > $mnt/demo/state; cat $mnt/demo/state"
step "rmdir $mnt/demo"
step "ls $mnt"
