package fs

// statusFile is NAME/status: flat `key value` lines (ops.Status.Text), among them
// `error`, the readable reason of the last failure.
type statusFile struct{ valueFile }

func newStatusFile(c *container) *statusFile {
	n := &statusFile{valueFile{c: c, mode: modeRO}}
	n.value = func() (string, error) {
		st, err := c.b.Status(c.name)
		return st.Text(), err
	}
	return n
}
