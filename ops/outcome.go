package ops

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
)

// What every process (the mount, the command line, the next start) shows of a
// container's builds is kept in its data directory: the hash of the configuration text
// written last (written), and the outcome of the last build with the hash of the text
// it built (last-build). A text written and never built is a build that a crash cut
// off before it began or while it ran.

func (l Layout) writtenPath(name string) string { return filepath.Join(l.DataPath(name), "written") }
func (l Layout) outcomePath(name string) string { return filepath.Join(l.DataPath(name), "last-build") }

// outcomeIDPath holds the id of the build whose outcome last-build keeps: a file of its
// own, so that last-build reads the same to an older nixcfs (a rollback of it).
func (l Layout) outcomeIDPath(name string) string {
	return filepath.Join(l.DataPath(name), "last-build-id")
}

// textHash names a configuration text; "" for none.
func textHash(text []byte) string {
	if text == nil {
		return ""
	}
	sum := sha256.Sum256(text)
	return hex.EncodeToString(sum[:])
}

// noteWritten records the text just written as the one to build.
func (l Layout) noteWritten(name, hash string) error {
	if err := os.MkdirAll(l.DataPath(name), 0o700); err != nil {
		return err
	}
	return writeFileAtomic(l.writtenPath(name), []byte(hash+"\n"), 0o600)
}

// lastWritten is the hash of the text written last, "" when nixcfs wrote none.
func (l Layout) lastWritten(name string) string {
	data, _ := os.ReadFile(l.writtenPath(name))
	return strings.TrimSpace(string(data))
}

// saveBuildOutcome keeps the outcome of a build (id: its intent's, "" for none) of the
// text with that hash, and returns the reason it kept for a failure (read from the
// build log: so under the operation lock, before another build empties it).
func (l Layout) saveBuildOutcome(name, hash, id string, err error) string {
	text, reason := BuildBuilt.String()+" "+hash+"\n", ""
	if err != nil {
		reason = oneLine(buildError(l.BuildLogPath(name), err))
		text = BuildFailed.String() + " " + hash + "\n" + reason + "\n"
	}
	// The id first: a reader that finds the outcome of this build finds its id.
	writeFileAtomic(l.outcomeIDPath(name), []byte(id+"\n"), 0o600)
	writeFileAtomic(l.outcomePath(name), []byte(text), 0o600)
	return reason
}

// buildOutcome is what saveBuildOutcome kept: the state (BuildUnknown when nothing
// was), the reason of a failure, the text's hash and the build's id.
type buildOutcome struct {
	state            BuildState
	reason, hash, id string
}

// loadBuildOutcome reads what saveBuildOutcome kept.
func (l Layout) loadBuildOutcome(name string) buildOutcome {
	data, err := os.ReadFile(l.outcomePath(name))
	if err != nil {
		return buildOutcome{state: BuildUnknown}
	}
	first, reason, _ := strings.Cut(string(data), "\n")
	word, hash, _ := strings.Cut(first, " ")
	idText, _ := os.ReadFile(l.outcomeIDPath(name))
	id := strings.TrimSpace(string(idText))
	if word == BuildFailed.String() {
		return buildOutcome{BuildFailed, strings.TrimSpace(reason), hash, id}
	}
	return buildOutcome{BuildBuilt, "", hash, id}
}

// unbuilt tells whether the text written last was never built, and its hash.
func (l Layout) unbuilt(name string) (string, bool) {
	written := l.lastWritten(name)
	built := l.loadBuildOutcome(name).hash
	return written, written != "" && written != built
}
