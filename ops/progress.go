package ops

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// BuildProgress is how far a running build is, read from nix's own lines as they go
// to the build log (nixProgress): nix says what it will build and fetch, then begins
// each derivation and copies each path.
type BuildProgress struct {
	Built    int       `json:"built"`    // derivations built: each counts once nix begins another, or ends
	ToBuild  int       `json:"to_build"` // derivations nix said it will build
	Fetched  int       `json:"fetched"`  // paths copied from a binary cache
	ToFetch  int       `json:"to_fetch"` // paths nix said it will fetch
	Building string    `json:"building"` // the derivation nix began last, by name (no hash, no .drv)
	Since    time.Time `json:"since"`    // when the build began
}

// Derivations is "BUILT/TO_BUILD"; TO_BUILD is "?" when nix did not say (`nix build`
// of a flake says nothing before it builds).
func (p BuildProgress) Derivations() string {
	total := strconv.Itoa(p.ToBuild)
	if p.begun() > p.ToBuild {
		total = "?"
	}
	return fmt.Sprintf("%d/%s", p.Built, total)
}

// Paths is "FETCHED/TO_FETCH".
func (p BuildProgress) Paths() string { return fmt.Sprintf("%d/%d", p.Fetched, p.ToFetch) }

// String is the value of a build-progress event: "BUILT/TO_BUILD fetched
// FETCHED/TO_FETCH", then "building NAME" while nix builds one.
func (p BuildProgress) String() string {
	s := p.Derivations() + " fetched " + p.Paths()
	if p.Building != "" {
		s += " building " + p.Building
	}
	return s
}

func (p BuildProgress) begun() int {
	if p.Building != "" {
		return p.Built + 1
	}
	return p.Built
}

// nixProgress reads nix's lines, as nix-build and nix-env print them without a
// terminal (nix 2.3 and later):
//
//	these 4 derivations will be built:      (nix 2.3: "these derivations will be
//	this derivation will be built:           built:", then one indented line each)
//	these 3 paths will be fetched (0.00 MiB download, 0.00 MiB unpacked):
//	this path will be fetched (...):
//	building '/nix/store/HASH-NAME.drv'...  (remote builds add " on 'ssh://...'")
//	copying path '/nix/store/HASH-NAME' from 'https://cache.nixos.org'...
//
// Every other line (the builders' own output, errors) leaves it as it is.
type nixProgress struct {
	p BuildProgress
	// listing is what the indented lines below a header without a count add to:
	// &p.ToBuild or &p.ToFetch; nil outside such a list.
	listing *int
}

// line reads one line (without its newline) and tells whether the progress moved.
func (n *nixProgress) line(s string) bool {
	if n.listing != nil {
		if strings.HasPrefix(s, "  /") {
			*n.listing++
			return true
		}
		n.listing = nil
	}
	switch {
	case strings.HasPrefix(s, "building '"):
		drv, ok := quoted(s, "building '")
		if !ok || !strings.HasSuffix(drv, ".drv") {
			return false
		}
		if n.p.Building != "" {
			n.p.Built++
		}
		n.p.Building = drvName(drv)
		return true
	case strings.HasPrefix(s, "copying path '"):
		if _, ok := quoted(s, "copying path '"); ok && strings.Contains(s, "' from '") {
			n.p.Fetched++
			return true
		}
		return false
	}
	if count, list, ok := announced(s, "will be built:", "derivation"); ok {
		return n.add(&n.p.ToBuild, count, list)
	}
	if count, list, ok := announced(s, "will be fetched", "path"); ok {
		return n.add(&n.p.ToFetch, count, list)
	}
	return false
}

func (n *nixProgress) add(total *int, count int, list bool) bool {
	if list {
		n.listing = total
		return false
	}
	*total += count
	return true
}

// end is the progress once nix ended: the derivation it built last is built.
func (n *nixProgress) end() BuildProgress {
	p := n.p
	if p.Building != "" {
		p.Built++
		p.Building = ""
	}
	return p
}

// announced reads "these N WHATs EVENT", "this WHAT EVENT" and nix 2.3's "these
// WHATs EVENT" (list: count the indented lines that follow).
func announced(s, event, what string) (count int, list, ok bool) {
	if !strings.Contains(s, " "+event) {
		return 0, false, false
	}
	if strings.HasPrefix(s, "this "+what+" "+event) {
		return 1, false, true
	}
	rest, found := strings.CutPrefix(s, "these ")
	if !found {
		return 0, false, false
	}
	if strings.HasPrefix(rest, what+"s "+event) {
		return 0, true, true
	}
	num, rest, _ := strings.Cut(rest, " ")
	count, err := strconv.Atoi(num)
	if err != nil || !strings.HasPrefix(rest, what+"s "+event) {
		return 0, false, false
	}
	return count, false, true
}

// quoted is the text between prefix (which ends in a quote) and the next quote.
func quoted(s, prefix string) (string, bool) {
	rest := strings.TrimPrefix(s, prefix)
	v, _, ok := strings.Cut(rest, "'")
	return v, ok && strings.HasPrefix(v, "/")
}

// drvName is a derivation's name: its store path without the directory, the hash
// and ".drv".
func drvName(drv string) string {
	base := strings.TrimSuffix(path.Base(drv), ".drv")
	if _, name, ok := strings.Cut(base, "-"); ok && name != "" {
		return name
	}
	return base
}
