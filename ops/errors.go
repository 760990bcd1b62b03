package ops

import "errors"

// Errors a caller can tell apart with errors.Is. The filesystem maps each to an errno;
// the command line prints the wrapped message.
var (
	ErrNotFound      = errors.New("no such container")
	ErrExists        = errors.New("container already exists")
	ErrNameTooLong   = errors.New("container name is too long (at most 11 characters, so ve-NAME fits an interface name)")
	ErrInvalidName   = errors.New("invalid container name (allowed: letters, digits, '_' and '-')")
	ErrNoAddress     = errors.New("out of IP addresses in 10.233.0.0/16")
	ErrBusy          = errors.New("container is running")
	ErrDeclarative   = errors.New("declarative container (change it in the host's configuration.nix instead)")
	ErrInvalid       = errors.New("invalid value")
	ErrAddressInUse  = errors.New("address already used by another container")
	ErrBuildFailed   = errors.New("build failed")
	ErrNotBuilt      = errors.New("container has no system yet")
	ErrStartFailed   = errors.New("container failed to start")
	ErrUnitOperation = errors.New("systemd refused the operation")
	ErrOverridden    = errors.New("overridden by a later operation")
)
