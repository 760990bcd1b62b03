package ops

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"

	"nixcfs/internal/crash"
)

// CreateOptions are nixos-container create's flags.
type CreateOptions struct {
	Config           string // extra text spliced into the default configuration.nix
	ConfigFile       string // imported from the default configuration.nix
	ConfigText       string // the whole configuration.nix, instead of the template
	SystemPath       string // an already built system: no build
	Flake            string // FLAKE[#ATTR]: build nixosConfigurations.ATTR (default NAME)
	HostAddress      string
	LocalAddress     string
	Bridge           string
	Port             string
	AutoStart        bool
	EnsureUniqueName bool // NAME taken: use NAME-0, NAME-1, ...
}

// Create writes the container (conf file with fresh addresses, default
// configuration.nix, profile and gc-root directories) and starts building its first
// system in the background: State says creating until the build ends (WaitBuilt).
// It returns the name used, which EnsureUniqueName may have changed. Everything is
// checked before anything is written; on failure nothing is left.
func (m *Manager) Create(ctx context.Context, name string, o CreateOptions) (string, error) {
	configText, err := o.validate(name)
	if err != nil {
		return "", err
	}
	lock, err := lockAddresses(ctx, m.l.LockFile)
	if err != nil {
		return "", err
	}
	defer lock.unlock()
	name, conf, err := m.reserve(name, o)
	if err != nil {
		return "", err
	}
	crash.At(crash.CreateReserved)
	op, err := m.markCreate(name, configText)
	if err != nil {
		return "", err
	}
	c, run, err := m.writeContainer(name, configText, conf, op)
	if err != nil {
		op.done()
		os.RemoveAll(m.l.DataPath(name))
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	lock.unlock()
	m.runQueued(c, run, func(ctx context.Context) error {
		if o.SystemPath != "" {
			return m.nix.setSystem(ctx, m.l.ProfilePath(name), o.SystemPath, m.output(name))
		}
		return m.buildSystem(ctx, name, conf, []byte(configText))
	})
	return name, nil
}

// interfaceRE matches a network interface's name, as the kernel takes it.
var interfaceRE = regexp.MustCompile(`^[a-zA-Z0-9_.:-]{1,15}$`)

// validate checks what can be checked before the address lock is taken, fills in the
// flake's default attribute, and returns the configuration.nix to write ("" for a
// prebuilt system).
func (o *CreateOptions) validate(name string) (configText string, err error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	if err := validateAddresses(o.HostAddress, o.LocalAddress); err != nil {
		return "", err
	}
	if o.Bridge != "" && !interfaceRE.MatchString(o.Bridge) {
		return "", fmt.Errorf("%w: bridge %q is no interface name", ErrInvalid, o.Bridge)
	}
	if _, err := ParseHostPort(o.Port); err != nil {
		return "", err
	}
	if o.Flake != "" {
		if !strings.Contains(o.Flake, "#") {
			o.Flake += "#" + name
		}
		if _, _, err := splitFlake(o.Flake); err != nil {
			return "", err
		}
		if err := CheckFlakes(); err != nil {
			return "", err
		}
	}
	if o.ConfigText != "" || o.SystemPath != "" {
		return o.ConfigText, nil
	}
	return ConfigText(name, o.Config, o.ConfigFile)
}

// reserve picks the name (NAME, or with EnsureUniqueName the first free NAME-N) and the
// addresses, and returns the conf file to write. The caller holds the address lock.
func (m *Manager) reserve(name string, o CreateOptions) (string, Conf, error) {
	taken := func(n string) bool {
		_, errConf := os.Lstat(m.l.ConfPath(n))
		_, errRoot := os.Lstat(m.l.RootPath(n))
		return errConf == nil || errRoot == nil || m.Exists(n)
	}
	if o.EnsureUniqueName {
		base := name
		for i := 0; taken(name); i++ {
			name = fmt.Sprintf("%s-%d", base, i)
			if err := ValidateName(name); err != nil {
				return "", Conf{}, err
			}
		}
	} else if taken(name) {
		return "", Conf{}, fmt.Errorf("%w: %s", ErrExists, name)
	}
	used, err := usedAddresses(m.l.ConfDir)
	if err != nil {
		return "", Conf{}, err
	}
	if err := checkAddressesFree(used, name, o.HostAddress, o.LocalAddress); err != nil {
		return "", Conf{}, err
	}
	forwards, _ := ParseHostPort(o.Port) // validate checked it
	if err := checkPortsFree(m.l.ConfDir, name, forwards); err != nil {
		return "", Conf{}, err
	}
	hostAddr, localAddr := o.HostAddress, o.LocalAddress
	if (hostAddr == "" || localAddr == "") && o.Bridge == "" {
		h, l, err := nextFreePair(used)
		if err != nil {
			return "", Conf{}, err
		}
		if hostAddr == "" {
			hostAddr = h
		}
		if localAddr == "" {
			localAddr = l
		}
	}
	conf := newConf(hostAddr, localAddr, o.Bridge, o.Port, o.AutoStart)
	if o.Flake != "" {
		conf.Set("FLAKE", o.Flake)
	}
	return name, conf, nil
}

// configHash is the hash of a container's first configuration.nix; "" for none (a
// prebuilt system).
func configHash(configText string) string {
	if configText == "" {
		return ""
	}
	return textHash([]byte(configText))
}

// markCreate takes the new container's operation lock and marks the intent to create
// it (with the hash of the text its first build builds), which a crash before its conf file is written leaves for the next start to undo.
// What nixcfs kept of an earlier container of that name, removed by another program,
// goes first.
func (m *Manager) markCreate(name, configText string) (*opLock, error) {
	op, ok, err := m.l.tryLockOp(name)
	if !ok {
		if err == nil {
			err = fmt.Errorf("%w: another process works on %s", ErrExists, name)
		}
		return nil, err
	}
	if err := m.l.clearData(name); err != nil {
		op.done()
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	// With the generation of a profile an earlier container of that name left: a
	// first build is done when the profile has a newer one.
	_, gen := systemGeneration(m.l.SystemLink(name))
	if err := op.mark(intentCreate, gen, configHash(configText)); err != nil {
		op.done()
		return nil, err
	}
	return op, nil
}

// writeContainer registers the container as creating, with its first build claimed,
// writes its files and then its conf file, which makes it a container for every other
// program, and announces it. On failure nothing is left in the registry, nor on disk
// but what the caller removes (nixcfs's own files).
func (m *Manager) writeContainer(name, configText string, conf Conf, op *opLock) (*record, *buildRun, error) {
	// Registered before the conf file appears, so that inotify finds it creating.
	c := newRecord(name)
	c.creating, c.conf = true, conf
	m.reg.mu.Lock()
	run := m.queueLocked(c)
	run.op, run.hash = op, configHash(configText)
	m.beginLocked(c, run)
	m.reg.records[name] = c
	m.reg.mu.Unlock()
	err := m.writeInitialFiles(name, configText)
	if err == nil && run.hash != "" {
		err = m.l.noteWritten(name, run.hash)
	}
	crash.At(crash.CreateFiles)
	if err == nil {
		err = writeFileAtomic(m.l.ConfPath(name), conf.Bytes(), 0o644)
	}
	if err != nil {
		for _, p := range []string{m.l.RootPath(name), m.l.ProfilePath(name), m.l.GCRootPath(name), m.l.ConfPath(name)} {
			os.RemoveAll(p)
		}
		run.cancel()
		m.reg.mu.Lock()
		m.reg.forgetLocked(c)
		m.reg.mu.Unlock()
		m.finishBuild(c, run, err, 0)
		return nil, nil, err
	}
	crash.At(crash.CreateConf)
	m.reg.mu.Lock()
	m.log.Info().Str("container", name).Str("host_address", conf.Get("HOST_ADDRESS")).
		Str("local_address", conf.Get("LOCAL_ADDRESS")).Msg("container created")
	m.reg.announceLocked(c)
	m.reg.publishLocked(name, EventState, StateCreating.String())
	m.reg.changed.Broadcast()
	m.reg.mu.Unlock()
	return c, run, nil
}

func (m *Manager) writeInitialFiles(name, configText string) error {
	for _, d := range []string{m.l.ProfilePath(name), m.l.GCRootPath(name), m.l.RootPath(name)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if configText == "" {
		return nil // --system-path: nothing to build from
	}
	return m.l.writeConfig(name, []byte(configText))
}
