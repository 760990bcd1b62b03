#!/usr/bin/env bash
# testhost/run.sh CMD...: boot a disposable systemd host (TESTHOST.md), run CMD inside it
# from the repository's directory, shut the host down (also on failure, timeout or Ctrl-C)
# and exit with CMD's status.
#
# The host is `systemd-nspawn -D / --volatile=yes`: the machine's /usr read-only under a
# fresh tmpfs root, /nix as a throwaway overlay, its own network namespace. Nothing it does
# reaches the machine's files, store or network.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
timeout_s=${TESTHOST_TIMEOUT:-1500}
machine=nixcfs-test-$$
log=$(mktemp /tmp/nixcfs-testhost.XXXXXX.log)
nspawn_pid=
leader=

say() { printf 'testhost: %s\n' "$*" >&2; }

shutdown_host() {
	local status=$?
	trap - EXIT INT TERM
	if [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null; then
		kill -s RTMIN+4 "$leader" 2>/dev/null || true
	fi
	if [ -n "$nspawn_pid" ]; then
		for _ in $(seq 1 300); do
			kill -0 "$nspawn_pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$nspawn_pid" 2>/dev/null; then
			say "host did not power off in 30s; killing it"
			[ -n "$leader" ] && kill -KILL "$leader" 2>/dev/null || true
			kill -KILL "$nspawn_pid" 2>/dev/null || true
		fi
		wait "$nspawn_pid" 2>/dev/null || true
	fi
	rm -f "$log"
	exit "$status"
}
trap shutdown_host EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

systemd-nspawn -D / --volatile=yes --private-network --register=no --keep-unit \
	-M "$machine" --bind=/dev/fuse --bind="$repo" --overlay=/nix::/nix \
	-b -- systemd.firstboot=off systemd.unit=multi-user.target >"$log" 2>&1 </dev/null &
nspawn_pid=$!

# The leader is the systemd child of systemd-nspawn: by name, since nspawn's short-lived
# outer child is its child too for a moment.
for _ in $(seq 1 300); do
	leader=$(pgrep -P "$nspawn_pid" -x systemd 2>/dev/null | head -n1 || true)
	[ -n "$leader" ] && break
	kill -0 "$nspawn_pid" 2>/dev/null || { cat "$log" >&2; say "systemd-nspawn exited"; exit 1; }
	sleep 0.1
done
[ -n "$leader" ] || { say "no leader after 30s"; exit 1; }

inside() { nsenter -t "$leader" -a "$@"; }

for _ in $(seq 1 600); do
	state=$(inside systemctl is-system-running 2>/dev/null || true)
	case "$state" in running|degraded) break ;; esac
	sleep 0.1
done
say "booted $machine (leader $leader, state ${state:-unknown})"

# nspawn mounts the cgroup v1 controllers read-only inside the host, so its systemd could
# apply no resource limit (MemoryMax=, TasksMax=, ...). Remount them writable, in the
# host's own mount namespace only, and let systemd find them so by re-executing itself.
inside sh -c 'for c in cpu cpuacct pids blkio memory devices freezer cpuset; do
	if mountpoint -q /sys/fs/cgroup/$c; then mount -o remount,bind,rw /sys/fs/cgroup/$c; fi
done'
inside systemctl daemon-reexec
for _ in $(seq 1 600); do
	state=$(inside systemctl is-system-running 2>/dev/null || true)
	case "$state" in running|degraded) break ;; esac
	sleep 0.1
done
say "cgroup controllers writable (state ${state:-unknown})"

set +e
timeout --foreground -k 10 "$timeout_s" nsenter -t "$leader" -a --wdns="$repo" \
	env -i PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root TERM="${TERM:-dumb}" NIXCFS_TESTHOST=1 \
	NIX_CONFIG=$'build-users-group =\nsandbox = false\nsubstituters =' \
	"$@"
status=$?
set -e
[ $status -eq 124 ] && say "timed out after ${timeout_s}s"
exit $status
