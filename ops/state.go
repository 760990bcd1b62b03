package ops

import (
	"fmt"
	"time"
)

// State is where a container is in its lifecycle: the one word its `state` file shows.
// It is derived, never stored: from systemd's view of the container's unit, and from
// whether its first build still runs (stateOf).
type State uint8

const (
	StateStopped  State = iota // its unit is inactive (or was never started)
	StateCreating              // its first build runs; it cannot start before that ends
	StateStarting              // its unit is activating
	StateRunning               // its unit is active (or reloading)
	StateStopping              // its unit is deactivating
	StateFailed                // its unit failed
)

var stateWords = [...]string{
	StateStopped: "stopped", StateCreating: "creating", StateStarting: "starting",
	StateRunning: "running", StateStopping: "stopping", StateFailed: "failed",
}

// States lists every state, in the order of their constants.
func States() []State {
	out := make([]State, len(stateWords))
	for i := range stateWords {
		out[i] = State(i)
	}
	return out
}

func (s State) String() string {
	if int(s) < len(stateWords) {
		return stateWords[s]
	}
	return fmt.Sprintf("State(%d)", s)
}

// MarshalText makes a State its word in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Busy tells the states in which a container's files are in use: destroy and address
// changes are refused then.
func (s State) Busy() bool {
	return s == StateRunning || s == StateStarting || s == StateStopping
}

// Running tells whether the container is up.
func (s State) Running() bool { return s == StateRunning }

// Down tells the states a stop or terminate waits for.
func (s State) Down() bool { return s == StateStopped || s == StateFailed }

// systemd's ActiveState words, as its D-Bus API reports them.
const (
	unitActive       = "active"
	unitReloading    = "reloading"
	unitInactive     = "inactive"
	unitFailed       = "failed"
	unitActivating   = "activating"
	unitDeactivating = "deactivating"
	unitDead         = "dead" // the SubState of an inactive service
)

// stateOf is the State of a container from its unit's ActiveState; a container whose
// first build runs is creating whatever its unit says.
func stateOf(activeState string, creating bool) State {
	if creating {
		return StateCreating
	}
	switch activeState {
	case unitActive, unitReloading:
		return StateRunning
	case unitActivating:
		return StateStarting
	case unitDeactivating:
		return StateStopping
	case unitFailed:
		return StateFailed
	}
	return StateStopped
}

// unitUp tells an ActiveState in which the unit's main process (nspawn) runs.
func unitUp(activeState string) bool {
	return activeState == unitActive || activeState == unitReloading
}

// BuildState tells how the container's last build went, as the `config` key of its
// status shows it.
type BuildState uint8

const (
	BuildUnknown  BuildState = iota // never built by this process and no system yet
	BuildBuilding                   // a build runs
	BuildBuilt                      // the last build succeeded, or a system exists
	BuildFailed                     // the last build failed: the previous system stays
)

var buildWords = [...]string{BuildUnknown: "", BuildBuilding: "building", BuildBuilt: "built", BuildFailed: "failed"}

func (b BuildState) String() string {
	if int(b) < len(buildWords) {
		return buildWords[b]
	}
	return fmt.Sprintf("BuildState(%d)", b)
}

// MarshalText makes a BuildState its word in JSON.
func (b BuildState) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// EventKind is what an Event is about. Its String is the key a reader of the events
// stream sees; the kinds named after a file of the container's directory carry that
// file's new value.
type EventKind uint8

const (
	EventContainer   EventKind = iota + 1 // Value: ContainerCreated or ContainerRemoved
	EventState                            // Value: a State word
	EventConfig                           // Value: a BuildState word
	EventError                            // Value: the readable reason of a failure
	EventAddress                          // Value: the new LOCAL_ADDRESS
	EventHostAddress                      // Value: the new HOST_ADDRESS
	EventAutostart                        // Value: the new AUTO_START, 0 or 1
	EventNotice                           // Value: news that is no failure
	EventGeneration                       // Value: the new current generation
	EventPorts                            // Value: the new HOST_PORT, forwards separated by commas
	EventMemoryMax                        // Value: the new memory.max, and so on (Limits.Text)
	EventCPUMax
	EventPidsMax
	EventCPUWeight
	EventIOWeight
	EventProgress // Value: a running build's progress (BuildProgress.String)
)

var eventKeys = [...]string{
	EventContainer: "container", EventState: "state", EventConfig: "config", EventError: "error",
	EventAddress: "address", EventHostAddress: "host-address", EventAutostart: "autostart",
	EventNotice: "notice", EventGeneration: "generation",
	EventPorts: "ports",

	EventMemoryMax: "memory.max", EventCPUMax: "cpu.max", EventPidsMax: "pids.max",
	EventCPUWeight: "cpu.weight", EventIOWeight: "io.weight",
	EventProgress: "build-progress",
}

func (k EventKind) String() string {
	if int(k) < len(eventKeys) && eventKeys[k] != "" {
		return eventKeys[k]
	}
	return fmt.Sprintf("EventKind(%d)", k)
}

// The values of an EventContainer event.
const (
	ContainerCreated = "created"
	ContainerRemoved = "removed"
)

// Event is one change of one container.
type Event struct {
	Time  time.Time
	Name  string
	Kind  EventKind
	Value string
}
