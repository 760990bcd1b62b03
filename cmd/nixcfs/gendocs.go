package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"nixcfs/docs"
)

// gen-docs writes what `make install` and the Nix package install besides the binary:
// the man pages, nixcfs(1) from this command tree and nixcfs(5) from docs/filesystem.md,
// and the completion scripts, so that none of them can drift from the program.
func genDocsCmd() *cobra.Command {
	var manDir, complDir string
	c := newVerb("gen-docs", "[--man DIR] [--completions DIR]", "write the man pages and shell completions", func(c *cobra.Command, args []string) int {
		if len(args) > 0 || manDir == "" && complDir == "" {
			return fail("gen-docs: want --man DIR and/or --completions DIR")
		}
		if manDir != "" {
			for _, p := range []struct {
				path string
				text []byte
			}{
				{filepath.Join(manDir, "man1", "nixcfs.1"), manPage1(c.Root())},
				{filepath.Join(manDir, "man5", "nixcfs.5"), manPage5()},
			} {
				if err := writeFile(p.path, p.text); err != nil {
					return fail("gen-docs: %v", err)
				}
			}
		}
		if complDir != "" {
			for _, sh := range shells {
				var b strings.Builder
				if err := sh.gen(c.Root(), &b); err != nil {
					return fail("gen-docs: %v", err)
				}
				if err := writeFile(filepath.Join(complDir, sh.file), []byte(b.String())); err != nil {
					return fail("gen-docs: %v", err)
				}
			}
		}
		return 0
	})
	c.Hidden = true
	c.Flags().StringVar(&manDir, "man", "", "write man1/nixcfs.1 and man5/nixcfs.5 under DIR")
	c.Flags().StringVar(&complDir, "completions", "", "write "+shellFiles()+" into DIR")
	return c
}

func shellFiles() string {
	var names []string
	for _, sh := range shells {
		names = append(names, sh.file)
	}
	return strings.Join(names, ", ")
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// titleBlock is the man page's .TH line, in go-md2man's form.
func titleBlock(section int, manual string) string {
	line := fmt.Sprintf("nixcfs %d \"\" \"nixcfs %s\" %q", section, versionOnly(), manual)
	return line + "\n" + strings.Repeat("=", len(line)) + "\n\n"
}

func manPage5() []byte {
	return md2man.Render([]byte(titleBlock(5, "File Formats Manual") + docs.Filesystem))
}

// manPage1 is nixcfs(1): every verb that is not hidden, with its usage, its text and
// its flags, as `nixcfs VERB --help` shows them.
func manPage1(root *cobra.Command) []byte {
	var b strings.Builder
	b.WriteString(titleBlock(1, "User Commands"))
	fmt.Fprintf(&b, "# NAME\n\nnixcfs - %s\n\n", mdEscape(root.Short))
	b.WriteString("# SYNOPSIS\n\n")
	for _, c := range root.Commands() {
		if !c.Hidden {
			fmt.Fprintf(&b, "**nixcfs %s** %s  \n", c.Name(), mdUsage(strings.TrimPrefix(c.Use, c.Name())))
		}
	}
	b.WriteString("**nixcfs --version**\n\n")
	fmt.Fprintf(&b, "# DESCRIPTION\n\n%s\n", mdText(root.Long))
	b.WriteString(manDescription)
	b.WriteString("# VERBS\n\n")
	var common *cobra.Command // a verb that has the common flags
	for _, c := range root.Commands() {
		if c.Hidden {
			continue
		}
		fmt.Fprintf(&b, "### nixcfs %s %s\n\n", c.Name(), mdEscape(strings.TrimSpace(strings.TrimPrefix(c.Use, c.Name()))))
		if c.Long != "" {
			b.WriteString(mdText(c.Long))
		} else {
			fmt.Fprintf(&b, "%s.\n\n", mdEscape(upperFirst(c.Short)))
		}
		own := mdFlags(c.LocalFlags(), false)
		switch {
		case hasCommon(c) && own == "":
			b.WriteString("It takes the common flags (COMMON FLAGS).\n\n")
		case hasCommon(c):
			b.WriteString("It takes the common flags (COMMON FLAGS) and these:\n\n")
		}
		b.WriteString(own)
		if common == nil && hasCommon(c) {
			common = c
		}
	}
	if common != nil {
		b.WriteString("# COMMON FLAGS\n\n")
		b.WriteString("Every verb but **completion** takes these, and **-h**, **--help**.\n\n")
		b.WriteString(mdFlags(common.LocalFlags(), true))
	}
	b.WriteString("# OPTIONS\n\n")
	b.WriteString(mdFlags(root.LocalFlags(), false))
	b.WriteString(manRest)
	return md2man.Render([]byte(b.String()))
}

// The parts of nixcfs(1) that are prose rather than the command tree.
const manDescription = `Flags may come before or after *NAME*, as with nixos-container; everything after
**--** is an argument (run's *COMMAND*). Messages and exit statuses are
nixos-container's, so scripts written for it work with nixcfs.

`

const manRest = `# ENVIRONMENT

**NIXCFS_NIXOS_PATH**
:   The NixOS entry point builds use when **--nixos-path** is not given (by default
    *\<nixpkgs/nixos\>*, found through **NIX_PATH**).

# EXIT STATUS

0 on success; 1 on any error, with a message on standard error
("nixcfs: container 'foo' does not exist"). **nixcfs run** exits with the
status of its *COMMAND*. **nixcfs status** exits 1 for a container that does not
exist, after printing **gone**.

# SHELL COMPLETION

**make install** installs completions for bash (verbs, flags, container names),
zsh and fish; **nixcfs completion** *SHELL* prints them. Container names come
from the conf directory, so completion needs neither root nor a running daemon.
After **echo** or **printf** writing to a container's **state** file
(**echo > /mnt/nixc/foo/state st**\<TAB\>), the words that file takes are offered,
once the nixcfs completion is loaded; bash and zsh also offer them for a word before
the redirection (a line from history, edited), fish only after it.

# FILES

nixcfs works on nixos-container's files: */etc/nixos-containers/NAME.conf*, the root
trees in */var/lib/nixos-containers*, the profiles in
*/nix/var/nix/profiles/per-container*. **nixcfs**(5) describes them, and the files of
the mount.

The unit *nixcfs.service* mounts */mnt/nixc* at boot once enabled
(**systemctl enable --now nixcfs**); on NixOS, **services.nixcfs.enable** does that.

# SEE ALSO

**nixcfs**(5), **nixos-container**(8), **systemd-nspawn**(1), **machinectl**(1)
`

func hasCommon(c *cobra.Command) bool {
	f := c.Flags().Lookup("layout")
	return f != nil && f.Annotations[commonFlag] != nil
}

// placeholders name the values of flags in the man page.
var placeholders = map[string]string{
	"layout": "LAYOUT", "conf-dir": "DIR", "state-dir": "DIR", "profile-dir": "DIR",
	"gcroot-dir": "DIR", "nixos-path": "PATH", "log-level": "LEVEL", "config": "TEXT",
	"config-file": "FILE", "system-path": "PATH", "host-address": "ADDRESS",
	"local-address": "ADDRESS", "bridge": "BRIDGE", "port": "PORTS", "flake": "FLAKE",
}

// mdFlags is a definition list of the common flags, or of the others, as `--help`
// lists them.
func mdFlags(fs *pflag.FlagSet, common bool) string {
	var b strings.Builder
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || (f.Annotations[commonFlag] != nil) != common || f.Name == "help" {
			return
		}
		name, usage := pflag.UnquoteUsage(f)
		if p, ok := placeholders[f.Name]; ok && name != "" {
			name = p
		}
		term := "**--" + f.Name + "**"
		if f.Shorthand != "" {
			term = "**-" + f.Shorthand + "**, " + term
		}
		if name != "" {
			term += " *" + mdEscape(strings.ToUpper(name)) + "*"
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" {
			def = fmt.Sprintf(" (default %s)", mdEscape(f.DefValue))
		}
		fmt.Fprintf(&b, "%s\n:   %s%s\n\n", term, mdEscape(upperFirst(usage)), def)
	})
	return b.String()
}

// mdText turns a help text into markdown: indented lines are a preformatted block,
// the others paragraphs.
func mdText(text string) string {
	var b strings.Builder
	for _, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		lines := strings.Split(para, "\n")
		indented := true
		for _, l := range lines {
			indented = indented && strings.HasPrefix(l, "  ")
		}
		if indented {
			b.WriteString("```\n")
			for _, l := range lines {
				b.WriteString(strings.TrimPrefix(l, "  ") + "\n")
			}
			b.WriteString("```\n\n")
			continue
		}
		b.WriteString(mdEscape(para) + "\n\n")
	}
	return b.String()
}

// mdUsage sets a usage line's placeholders (NAME, FILE) in italics.
func mdUsage(usage string) string {
	var words []string
	for _, w := range strings.Fields(usage) {
		core := strings.Trim(w, "[]|.")
		if core != "" && strings.ToUpper(core) == core && strings.Trim(core, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "" {
			w = strings.Replace(mdEscape(w), core, "*"+core+"*", 1)
		} else {
			w = mdEscape(w)
		}
		words = append(words, w)
	}
	return strings.Join(words, " ")
}

var mdSpecial = strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`, "<", `\<`, ">", `\>`, "`", "\\`", "#", `\#`)

func mdEscape(s string) string { return mdSpecial.Replace(s) }

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
