// Package ops is the lifecycle of NixOS containers on the real stack, on the files
// nixos-container uses: nix-build and nix-env for systems, systemd over D-Bus for the
// container@NAME.service units, the conf files and root trees on disk. It knows nothing
// of FUSE; the filesystem (package fs) and the command line call a Manager.
//
// # Pieces
//
//   - manager.go: Manager, New and Close: the pieces below, wired together.
//   - registry.go: the registry, the Manager's memory of every container (record), the
//     unit states systemd reported, the event streams, and the one way to wait for a
//     change (waitFor).
//   - follow.go: keeping the registry current from systemd's signals and from inotify
//     on the conf directory.
//   - status.go: reading the registry: List, State, Status, Watch.
//   - create.go, destroy.go: making and removing a container's files. intents.go: the
//     marks of operations a crash may cut off, and the recovery that ends them.
//   - generations.go: the profile's generations, the texts that built them, switching.
//   - guestfiles.go: the files of a root tree, read and written through guestroot.
//   - builds.go: one build at a time per container: claim, run, finish, wait.
//     nix.go: the nix commands a build runs. buildlog.go: where their output goes
//     (the build log, Options.BuildOutput, the progress). progress.go: BuildProgress,
//     read from nix's lines.
//   - units.go: start, stop, restart, reload, terminate: a systemd job, then a wait
//     for the state it leads to (settle). overrides.go: which operation overrides
//     which, in this process and, by records in the data directory, across processes.
//     foreign.go: a start's wait for another process's build, followed through its
//     build log. supervise.go: the D-Bus client.
//     template.go: the container@.service nixcfs installs on hosts without NixOS's.
//   - config.go: the container's configuration.nix. confedit.go: edits of its conf
//     file (addresses, autostart).
//   - addresses.go: choosing and checking addresses under nixos-container's lock.
//     ports.go: port forwards (HOST_PORT), checked and written under the same lock.
//   - layout.go, conf.go: where the files are, and the conf file's format.
//   - state.go: State, BuildState and the kinds of Event.
//   - journal.go: readers of a container's journal.
//   - limits.go: resource limits as properties of the unit; limitsyntax.go: their
//     cgroup v2 syntax. stats.go: live usage from the unit's cgroup (package
//     internal/cgroup) and the veth pair's counters.
//
// The steps that systemd runs for nixcfs's own template, each as a process of its own,
// are package unitstep.
//
// # Locks
//
// Taken in this order; a lock never waits for one above it:
//
//  1. A container's unit slot (record.unitSlot): held by Start and Restart for their
//     job and settle, so that Destroy, which only tries it, never removes a root tree
//     that a prestart is filling.
//  2. A container's text lock (record.textMu): orders the writes of its
//     configuration.nix with the builds they queue.
//  3. A container's operation lock (an flock on DataDir/NAME/lock, between
//     processes): held by a create until its first build ends, by each build or
//     switch of generation, by a destroy and by a generation's deletion. All but the
//     deletion mark their intent, which recovery reads (intents.go). Create and
//     Destroy only try it (a few times over some milliseconds); a start probes it
//     (otherHolds), to learn whether another process builds, by taking it for an
//     instant, and tries it to recover a build whose process died (foreign.go),
//     holding it then as recovery at a start does. An operation removes only the
//     intent it marked. Which of these locks this process holds is counted in
//     heldOps, whose mutex is held only around an open and a non-blocking flock of
//     the lock file.
//  4. The address lock (flock on Layout.LockFile, shared with nixos-container): held
//     while addresses are chosen and while a conf file is written or removed.
//  5. The conf lock (Manager.confMu): held from a read of a conf file to its copy in
//     the registry, by an edit (under the address lock) and by a read on inotify's
//     news, so that an older read never lands after a newer edit.
//  6. The builder's slots: bound how many nix builds run at once; held for one build.
//  7. The registry's mu: guards every record's fields, the unit states and the event
//     streams. Held only for memory work: never across a D-Bus call, a build, a job,
//     a file or /proc read.
//
// Leaves, taken alone for memory work: unitRuns.mu (stats.go).
//
// Waits (for a build's end, a state, a free build) go through registry.waitFor, which
// sleeps on a condition variable of mu that every change broadcasts.
package ops
