// Package crash lets tests kill nixcfs at named points of its work, to prove that a
// crash never leaves a half-made container, a half-written file or a lost text. Only
// a binary built with the crashpoints tag has them (make crash-binary): there, At
// kills the process with SIGKILL when the environment variable NIXCFS_CRASH_AT names
// the point. In every other build At does nothing.
package crash

// The points, in the order a container's life meets them.
const (
	CreateReserved = "create-reserved" // name and addresses chosen, nothing written
	CreateFiles    = "create-files"    // root tree and configuration written, no conf file
	CreateConf     = "create-conf"     // conf file written, first build not begun
	ConfigWritten  = "config-written"  // a new configuration.nix written, its build not begun
	BuildRunning   = "build-running"   // nix-build runs
	BuildProfile   = "build-profile"   // the system is built, the profile not yet switched
	BuildDone      = "build-done"      // the profile switched, the outcome not yet recorded
	StartJob       = "start-job"       // systemd has the start job
	StopJob        = "stop-job"        // systemd has the stop job
	AddressChosen  = "address-chosen"  // a new address checked, the conf file not yet written
	DestroyMarked  = "destroy-marked"  // destroy begun, nothing removed
	DestroyProfile = "destroy-profile" // profile and gc roots removed
	DestroyRoot    = "destroy-root"    // root tree moved aside
	DestroyConf    = "destroy-conf"    // conf file removed, nixcfs's own files not yet
)

// Points lists every point.
func Points() []string {
	return []string{CreateReserved, CreateFiles, CreateConf, ConfigWritten, BuildRunning,
		BuildProfile, BuildDone, StartJob, StopJob, AddressChosen, DestroyMarked,
		DestroyProfile, DestroyRoot, DestroyConf}
}

// Env is the environment variable that names the point to crash at.
const Env = "NIXCFS_CRASH_AT"
