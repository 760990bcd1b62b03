package ops

import (
	"context"
	"fmt"

	"nixcfs/internal/crash"
)

// Edits of a container's conf file. Each runs under the address lock, which
// nixos-container also takes to write conf files, so that no two writers interleave
// and no address is handed out twice.

// SetAddresses changes HOST_ADDRESS and/or LOCAL_ADDRESS ("" keeps one) of a stopped
// container.
func (m *Manager) SetAddresses(ctx context.Context, name, hostAddr, localAddr string) error {
	return m.noted(name, m.setAddresses(ctx, name, hostAddr, localAddr))
}

func (m *Manager) setAddresses(ctx context.Context, name, hostAddr, localAddr string) error {
	if _, err := m.reg.lookupForChange(name); err != nil {
		return err
	}
	if err := validateAddresses(hostAddr, localAddr); err != nil {
		return err
	}
	lock, err := lockAddresses(ctx, m.l.LockFile)
	if err != nil {
		return err
	}
	defer lock.unlock()
	if st, _ := m.State(name); st.Busy() {
		return fmt.Errorf("%w: %s is %s; stop it to change its address", ErrBusy, name, st)
	}
	used, err := usedAddresses(m.l.ConfDir)
	if err != nil {
		return err
	}
	if err := checkAddressesFree(used, name, hostAddr, localAddr); err != nil {
		return err
	}
	conf, err := m.Conf(name)
	if err != nil {
		return err
	}
	newHost, newLocal := conf.Get("HOST_ADDRESS"), conf.Get("LOCAL_ADDRESS")
	if hostAddr != "" {
		newHost = hostAddr
	}
	if localAddr != "" {
		newLocal = localAddr
	}
	if err := distinctAddresses(newHost, newLocal); err != nil {
		return err
	}
	crash.At(crash.AddressChosen)
	return m.editConf(name, func(conf *Conf) {
		conf.Set("HOST_ADDRESS", newHost)
		conf.Set("LOCAL_ADDRESS", newLocal)
	})
}

// SetAutostart sets AUTO_START.
func (m *Manager) SetAutostart(ctx context.Context, name string, on bool) error {
	return m.noted(name, m.setAutostart(ctx, name, on))
}

func (m *Manager) setAutostart(ctx context.Context, name string, on bool) error {
	if _, err := m.reg.lookupForChange(name); err != nil {
		return err
	}
	lock, err := lockAddresses(ctx, m.l.LockFile)
	if err != nil {
		return err
	}
	defer lock.unlock()
	return m.editConf(name, func(conf *Conf) { conf.Set("AUTO_START", boolDigit(on)) })
}

// confEvents are the conf keys whose changes watchers hear of, by the kind named after
// the file that shows each (setConfLocked).
var confEvents = []struct {
	key  string
	kind EventKind
}{{"HOST_ADDRESS", EventHostAddress}, {"LOCAL_ADDRESS", EventAddress}, {"AUTO_START", EventAutostart},
	{"HOST_PORT", EventPorts}}

// editConf rewrites the conf file atomically and updates the in-memory copy. The
// caller holds the address lock.
func (m *Manager) editConf(name string, edit func(*Conf)) error {
	if _, err := m.reg.lookup(name); err != nil {
		return err // destroyed while the caller waited for the lock
	}
	path := m.l.ConfPath(name)
	m.confMu.Lock()
	defer m.confMu.Unlock()
	conf, err := ReadConf(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	edit(&conf)
	if err := writeFileAtomic(path, conf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	m.reg.mu.Lock()
	defer m.reg.mu.Unlock()
	if c := m.reg.records[name]; c != nil {
		m.reg.setConfLocked(c, conf)
	}
	m.reg.changed.Broadcast()
	return nil
}
