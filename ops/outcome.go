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

// saveBuildOutcome keeps the outcome of a build of the text with that hash, and
// returns the reason it kept for a failure (read from the build log: so under the
// operation lock, before another build empties it).
func (l Layout) saveBuildOutcome(name, hash string, err error) string {
	text, reason := BuildBuilt.String()+" "+hash+"\n", ""
	if err != nil {
		reason = oneLine(buildError(l.BuildLogPath(name), err))
		text = BuildFailed.String() + " " + hash + "\n" + reason + "\n"
	}
	writeFileAtomic(l.outcomePath(name), []byte(text), 0o600)
	return reason
}

// loadBuildOutcome reads what saveBuildOutcome kept: BuildUnknown when nothing was.
func (l Layout) loadBuildOutcome(name string) (state BuildState, reason, hash string) {
	data, err := os.ReadFile(l.outcomePath(name))
	if err != nil {
		return BuildUnknown, "", ""
	}
	first, reason, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	word, hash, _ := strings.Cut(first, " ")
	if word == BuildFailed.String() {
		return BuildFailed, reason, hash
	}
	return BuildBuilt, "", hash
}

// unbuilt tells whether the text written last was never built, and its hash.
func (l Layout) unbuilt(name string) (string, bool) {
	written := l.lastWritten(name)
	_, _, built := l.loadBuildOutcome(name)
	return written, written != "" && written != built
}
