#!/usr/bin/env bash
# testhost/run.sh CMD...: boot a disposable systemd host (TESTHOST.md), run CMD inside it
# from the repository's directory, shut the host down (also on failure, timeout or Ctrl-C)
# and exit with CMD's status.
#
# The host is `systemd-nspawn -D / --volatile=yes`: the machine's /usr read-only under a
# fresh tmpfs root, /nix as a throwaway overlay, its own network namespace. Nothing it does
# reaches the machine's files, store or network.
#
# A boot that does not reach running or degraded within TESTHOST_BOOT_TIMEOUT seconds is
# powered off, its nspawn log printed, and booted again (at most 3 attempts). CMD runs at
# most TESTHOST_TIMEOUT seconds. Its own files (the nspawn log, a copy of the Nix
# database) live in $TMPDIR (/tmp by default) while it runs.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
timeout_s=${TESTHOST_TIMEOUT:-1500}
boot_timeout_s=${TESTHOST_BOOT_TIMEOUT:-90}
attempts=3
log=$(mktemp --tmpdir nixcfs-testhost.XXXXXX.log)
machine=
nspawn_pid=
leader=
cmd_pid=
cgroup_name=
cgroup_dirs=()
nix_state=

say() { printf 'testhost: %s\n' "$*" >&2; }

# show_log prints what systemd-nspawn and the host's console wrote.
show_log() {
	say "systemd-nspawn log of $machine:"
	sed 's/\x1b\[[0-9;]*m//g; s/^/  | /' "$log" >&2 || true
}

# wait_exit PID SECONDS: wait until PID (a child of this shell) exits, at most SECONDS;
# true if it exited.
wait_exit() {
	local pid=$1 timer done=
	sleep "$2" &
	timer=$!
	wait -n -p done "$pid" "$timer" 2>/dev/null || true
	kill "$timer" 2>/dev/null || true
	wait "$timer" 2>/dev/null || true
	[ "${done:-}" = "$pid" ] || ! kill -0 "$pid" 2>/dev/null
}

# Each boot gets a cgroup of its own in every hierarchy, below this script's. Otherwise
# systemd-nspawn puts every host of the machine in one cgroup (payload/ below its own,
# which is the root for every caller here), and the hosts' systemds, each seeing it as
# its root, share the cgroups of units with the same name: one host's unit cgroup holds
# another host's processes (it sees them as PID 0), limits one host sets apply to the
# other's processes, and what a host leaves there stays forever. The cgroup also names
# every process of the host, so the last-resort kill hits exactly what this script
# started, and removing it after the host is gone shows that nothing was left behind.
own_cgroup_dirs() {
	local id controllers path mnt
	while IFS=: read -r id controllers path; do
		if [ -z "$controllers" ]; then
			mnt=$(findmnt -rn -t cgroup2 -o TARGET | head -n1)
		else
			mnt=$(findmnt -rn -t cgroup -o TARGET,FS-OPTIONS | awk -v want="$controllers" '
				{ n = split($2, have, ","); split(want, w, ","); ok = 1
				  for (i in w) { found = 0; for (j = 1; j <= n; j++) if (have[j] == w[i]) found = 1; if (!found) ok = 0 }
				  if (ok) { print $1; exit } }')
		fi
		[ -n "$mnt" ] && printf '%s\n' "${mnt}${path%/}"
	done </proc/self/cgroup
}

make_cgroups() {
	local dir
	cgroup_dirs=()
	for dir in $(own_cgroup_dirs); do
		mkdir "$dir/$cgroup_name" || { remove_cgroups; return 1; }
		cgroup_dirs+=("$dir/$cgroup_name")
		# A new v1 cpuset has no CPUs and no memory nodes: nothing could run in it.
		if [ -f "$dir/cpuset.cpus" ]; then
			cat "$dir/cpuset.cpus" >"$dir/$cgroup_name/cpuset.cpus"
			cat "$dir/cpuset.mems" >"$dir/$cgroup_name/cpuset.mems"
		fi
	done
}

# cgroup_pids prints every process in this boot's cgroups.
cgroup_pids() {
	local dir
	for dir in "${cgroup_dirs[@]}"; do
		find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null || true
	done | sort -un
}

# remove_cgroups removes this boot's cgroups; false (and says so) if any still holds a
# process 10s after nspawn ended (killed processes leave them once they are reaped).
remove_cgroups() {
	local dir ok=0 deadline=$((SECONDS + 10))
	while [ -n "$(cgroup_pids)" ] && [ "$SECONDS" -lt "$deadline" ]; do
		sleep 0.1 # the kernel tells a shell nothing when a v1 cgroup empties
	done
	for dir in "${cgroup_dirs[@]}"; do
		[ -d "$dir" ] || continue
		find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
		if [ -d "$dir" ]; then
			say "cannot remove $dir: processes left: $(find "$dir" -name cgroup.procs -exec cat {} + | tr '\n' ' ')"
			ok=1
		fi
	done
	cgroup_dirs=()
	return $ok
}

# find_leader prints the host's PID 1: the child of systemd-nspawn that runs systemd in
# a PID namespace of its own. nspawn's first child is a helper in nspawn's namespace,
# and the container's init is called systemd only once it has exec'd; nsenter needs
# that process, with all its namespaces in place.
find_leader() {
	local ns child child_ns
	ns=$(readlink "/proc/$nspawn_pid/ns/pid" 2>/dev/null) || return 1
	for child in $(pgrep -P "$nspawn_pid" 2>/dev/null); do
		[ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ] || continue
		child_ns=$(readlink "/proc/$child/ns/pid" 2>/dev/null) || continue
		[ -n "$child_ns" ] && [ "$child_ns" != "$ns" ] || continue
		echo "$child"
		return 0
	done
	return 1
}

inside() { nsenter -t "$leader" -a "$@"; }

# wait_running DEADLINE: wait until the host's systemd says running or degraded (true),
# or until DEADLINE (in $SECONDS) or a state it cannot leave (false). is-system-running
# --wait blocks until the boot is over; it fails at once while the manager does not
# answer yet (just after exec, or while it re-executes).
wait_running() {
	local deadline=$1 left
	state=
	while left=$((deadline - SECONDS)) && [ "$left" -gt 0 ]; do
		kill -0 "$nspawn_pid" 2>/dev/null || { state="systemd-nspawn exited"; return 1; }
		state=$(timeout "$left" nsenter -t "$leader" -a systemctl is-system-running --wait 2>/dev/null || true)
		case "$state" in
		running | degraded) return 0 ;;
		maintenance | stopping) return 1 ;;
		esac
		sleep 0.1 # the manager is not answering yet; ask again
	done
	state="still ${state:-not answering} after ${boot_timeout_s}s"
	return 1
}

# writable_cgroups lets the host's systemd apply resource limits. On a machine with
# cgroup v1 controllers, systemd-nspawn mounts them read-only in the host (only its
# name=systemd hierarchy is writable), so its systemd creates no cgroups there and
# MemoryMax=, TasksMax=, CPUQuota=, CPUWeight=, IOWeight= silently do nothing. The
# host's root is our root (no user namespace), so the mounts can be made writable;
# daemon-reexec makes systemd look at them again and realize its units' cgroups in
# every controller. The hierarchies it writes to are this boot's own cgroups
# (make_cgroups), visible to it through its cgroup namespace. Where controllers are
# cgroup v2 only, nspawn delegates them and nothing is needed.
writable_cgroups() {
	local deadline=$1 remounted
	remounted=$(inside sh -c '
		findmnt -rn -t cgroup -o TARGET,VFS-OPTIONS | while read -r target options; do
			case "$target" in /sys/fs/cgroup/systemd) continue ;; esac
			case ",$options," in *,ro,*) ;; *) continue ;; esac
			mount -o remount,bind,rw "$target" || exit 1
			echo "$target"
		done') || say "cannot make the cgroup v1 controllers writable: resource limits will not apply in $machine"
	[ -n "$remounted" ] || return 0
	inside systemctl daemon-reexec || { state="daemon-reexec failed"; return 1; }
	wait_running "$deadline"
}

# copy_nix_db gives this boot a copy of the machine's Nix database, taken through SQLite's
# locks (nix-store --dump-db) and loaded into a state directory of its own, which the
# host mounts on /nix/var/nix/db. Through the /nix overlay alone the host would use the
# machine's live database file: overlayfs does not allow its lower layer to change while
# mounted, yet every nix command on the machine (other tests, other engineers' builds)
# writes it, and SQLite in the host then reads a database, journal and shared-memory
# index partly copied up and partly changing underneath ("database disk image is
# malformed" in the host's builds).
copy_nix_db() {
	command -v nix-store >/dev/null || return 0
	nix_state=$(mktemp -d --tmpdir nixcfs-testhost-nix.XXXXXX)
	nix-store --dump-db >"$nix_state/dump" &&
		NIX_STATE_DIR=$nix_state/state nix-store --load-db <"$nix_state/dump"
}

remove_nix_db() {
	[ -z "$nix_state" ] || rm -rf "$nix_state"
	nix_state=
}

# nspawn_in_cgroups, run in the background, moves itself into this boot's cgroups and
# becomes systemd-nspawn, in a session of its own: a Ctrl-C reaches this script, which
# powers the host off, and not nspawn, whose second SIGINT would kill it at once and
# leave the host's systemd running. (A background subshell of a script leads no
# process group, so setsid does not fork: $! stays nspawn's PID.)
nspawn_in_cgroups() {
	local dir
	for dir in "${cgroup_dirs[@]}"; do
		echo "$BASHPID" >"$dir/cgroup.procs" || echo "testhost: $machine stays out of $dir" >&2
	done
	exec setsid systemd-nspawn -D / --volatile=yes --private-network --register=no --keep-unit \
		-M "$machine" --bind=/dev/fuse --bind="$repo" --overlay=/nix::/nix \
		${nix_state:+--bind="$nix_state/state/db:/nix/var/nix/db"} \
		-b -- systemd.firstboot=off systemd.unit=multi-user.target
}

# boot ATTEMPT: start the host and wait until it runs; false with $state saying why.
boot() {
	local deadline=$((SECONDS + boot_timeout_s))
	machine=nixcfs-test-$$-$1
	cgroup_name=$machine
	leader=
	state=
	: >"$log"
	make_cgroups || say "no cgroups of its own for $machine; it shares systemd-nspawn's"
	copy_nix_db || { state="cannot copy the machine's Nix database"; return 1; }
	nspawn_in_cgroups >"$log" 2>&1 </dev/null &
	nspawn_pid=$!

	until leader=$(find_leader); do
		kill -0 "$nspawn_pid" 2>/dev/null || { state="systemd-nspawn exited"; return 1; }
		[ "$SECONDS" -lt "$deadline" ] || { state="no systemd in a PID namespace of its own after ${boot_timeout_s}s"; return 1; }
		sleep 0.1 # nspawn has not exec'd the host's systemd yet
	done
	wait_running "$deadline" || return 1
	writable_cgroups "$deadline"
}

# poweroff_host: power the host off (RTMIN+4 to its systemd), wait for nspawn to end,
# and only as the last resort SIGKILL what this boot started (the processes in its
# cgroups). False if it needed SIGKILL or left anything behind.
poweroff_host() {
	local deadline=$((SECONDS + 30)) clean=0 pid
	[ -n "$nspawn_pid" ] || { remove_nix_db; return 0; }
	while kill -0 "$nspawn_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
		# Not SIGTERM to nspawn: a second one kills nspawn at once and leaves the host's
		# systemd running. A signal that reaches systemd before it has installed its
		# handlers is dropped (a PID namespace's init ignores what it does not handle),
		# so ask again each second until nspawn ends.
		[ -n "$leader" ] || leader=$(find_leader) || leader=
		[ -z "$leader" ] || kill -s RTMIN+4 "$leader" 2>/dev/null || true
		wait_exit "$nspawn_pid" 1 && break
	done
	if kill -0 "$nspawn_pid" 2>/dev/null; then
		say "$machine did not power off in 30s; killing it"
		clean=1
		# Its init first: that ends the whole PID namespace.
		[ -z "$leader" ] || kill -KILL "$leader" 2>/dev/null || true
		for pid in $(cgroup_pids) "$nspawn_pid"; do kill -KILL "$pid" 2>/dev/null || true; done
		wait_exit "$nspawn_pid" 10 || say "systemd-nspawn $nspawn_pid survives SIGKILL"
	fi
	wait "$nspawn_pid" 2>/dev/null || true
	nspawn_pid=
	leader=
	# A killed nspawn leaves its (empty) directory for machinectl bind behind.
	rmdir "/run/systemd/nspawn/propagate/$machine" 2>/dev/null || true
	remove_cgroups || clean=1
	remove_nix_db
	return $clean
}

shutdown_host() {
	local status=$?
	trap - EXIT INT TERM
	set +eu # clean up as much as can be, whatever fails
	if [ -n "$cmd_pid" ]; then
		# Interrupted while CMD runs: end timeout and the nsenter below it before the
		# poweroff. systemd-shutdown stops every process of the host (SIGSTOP, then
		# SIGTERM and SIGCONT); nsenter, outside the host, would stop itself too when
		# its child stops, and nothing would ever continue it. CMD itself, left inside,
		# gets the host's SIGTERM.
		kill -TERM "$cmd_pid" 2>/dev/null
		wait_exit "$cmd_pid" 10 || kill -KILL "$cmd_pid" 2>/dev/null
		wait "$cmd_pid" 2>/dev/null
	fi
	poweroff_host || show_log # which removes the nix database copy, whatever happens
	rm -f "$log"
	exit "$status"
}
trap shutdown_host EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for attempt in $(seq 1 "$attempts"); do
	boot "$attempt" && break
	say "boot $attempt of $attempts failed: $state"
	poweroff_host || true
	show_log
	[ "$attempt" -lt "$attempts" ] || exit 1
done
say "booted $machine (leader $leader, state $state)"

# CMD runs in the background and this script waits for it: a trapped INT or TERM ends
# that wait at once (it would wait for a foreground CMD to finish), and the trap powers
# the host off, which ends CMD with it. The explicit stdin keeps the caller's (a
# background command's default is /dev/null).
timeout --foreground -k 10 "$timeout_s" nsenter -t "$leader" -a --wdns="$repo" \
	env -i PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root TERM="${TERM:-dumb}" NIXCFS_TESTHOST=1 \
	NIX_CONFIG=$'build-users-group =\nsandbox = false\nsubstituters =' \
	"$@" 0<&0 &
cmd_pid=$!
status=0
wait "$cmd_pid" || status=$?
cmd_pid=
[ $status -ne 124 ] || say "timed out after ${timeout_s}s"
exit $status
