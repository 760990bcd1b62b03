package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	nixfs "nixcfs/fs"
	"nixcfs/ops"
)

// Shell completion: cobra completes verbs and flags from the command tree; container
// names come from the conf directory, read directly, so that completion needs neither
// root nor a D-Bus connection and answers at once.

// completeNames completes the container NAME a verb takes, in the layout the flags
// typed so far select (--layout, --conf-dir).
func completeNames(lf *layoutFlags, want names) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		switch {
		case want == noName:
			return nil, cobra.ShellCompDirectiveNoFileComp
		case len(args) > 0 && want == nameAndArgs:
			// run's COMMAND runs inside the container: no names to offer from here.
			return nil, cobra.ShellCompDirectiveDefault
		case len(args) > 0:
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return containerNames(lf, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// containerNames lists the NAME.conf files of the conf directory that start with
// prefix.
func containerNames(lf *layoutFlags, prefix string) []string {
	l, err := lf.resolve()
	if err != nil {
		return nil
	}
	confs, _ := filepath.Glob(filepath.Join(l.ConfDir, "*.conf"))
	var names []string
	for _, c := range confs {
		name := strings.TrimSuffix(filepath.Base(c), ".conf")
		if strings.HasPrefix(name, prefix) && ops.ValidateName(name) == nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// registerFlagCompletions completes the values of the flags c has.
func registerFlagCompletions(c *cobra.Command) {
	words := func(w ...string) cobra.CompletionFunc {
		return cobra.FixedCompletions(w, cobra.ShellCompDirectiveNoFileComp)
	}
	dirs := func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	}
	files := func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveDefault
	}
	for flag, f := range map[string]cobra.CompletionFunc{
		"layout":      words("auto", "new", "old"),
		"log-level":   words("debug", "info", "warn", "error"),
		"conf-dir":    dirs,
		"state-dir":   dirs,
		"profile-dir": dirs,
		"gcroot-dir":  dirs,
		"nixos-path":  files,
		"config-file": files,
		"system-path": dirs,
		"flake":       files,
		"bridge":      hostBridges,
	} {
		if c.Flags().Lookup(flag) != nil {
			c.RegisterFlagCompletionFunc(flag, f)
		}
	}
}

// hostBridges completes --bridge with the host's bridges (sysfs, no netlink needed).
func hostBridges(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	found, _ := filepath.Glob("/sys/class/net/*/bridge")
	var names []string
	for _, b := range found {
		names = append(names, filepath.Base(filepath.Dir(b)))
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// shells are the completion scripts nixcfs generates: cobra's, then the state-file
// words, and where `make install` puts each (under PREFIX/share).
var shells = []struct {
	name, file, installDir string
	gen                    func(root *cobra.Command, w io.Writer) error
}{
	{"bash", "nixcfs.bash", "bash-completion/completions", bashCompletion},
	{"zsh", "_nixcfs", "zsh/site-functions", zshCompletion},
	{"fish", "nixcfs.fish", "fish/vendor_completions.d", fishCompletion},
}

func completionCmd() *cobra.Command {
	c := newVerb("completion", "bash|zsh|fish", "print the shell completion script (make install installs them)", func(c *cobra.Command, args []string) int {
		if len(args) != 1 {
			return fail("completion: which shell? bash, zsh or fish")
		}
		for _, sh := range shells {
			if sh.name == args[0] {
				if err := sh.gen(c.Root(), os.Stdout); err != nil {
					return fail("%v", err)
				}
				return 0
			}
		}
		return fail("completion: no completion for %q: bash, zsh or fish", args[0])
	})
	c.ValidArgs = []string{"bash", "zsh", "fish"}
	c.ValidArgsFunction = nil
	return c
}

func bashCompletion(root *cobra.Command, w io.Writer) error {
	var b bytes.Buffer
	if err := root.GenBashCompletionV2(&b, true); err != nil {
		return err
	}
	b.WriteString(fmt.Sprintf(bashStateWords, strings.Join(nixfs.StateWords(), " ")))
	_, err := w.Write(b.Bytes())
	return err
}

func zshCompletion(root *cobra.Command, w io.Writer) error {
	var b bytes.Buffer
	if err := root.GenZshCompletion(&b); err != nil {
		return err
	}
	// The file is an autoloaded function: its body runs when nixcfs is first
	// completed. The hook goes before the last lines, which call _nixcfs.
	text := b.String()
	hook := fmt.Sprintf(zshStateWords, strings.Join(nixfs.StateWords(), " "))
	const tail = "# don't run the completion function when being source-ed or eval-ed"
	if i := strings.LastIndex(text, tail); i >= 0 {
		text = text[:i] + hook + "\n" + text[i:]
	} else {
		text += hook
	}
	_, err := io.WriteString(w, text)
	return err
}

func fishCompletion(root *cobra.Command, w io.Writer) error {
	var b bytes.Buffer
	if err := root.GenFishCompletion(&b, true); err != nil {
		return err
	}
	b.WriteString(fmt.Sprintf(fishStateWords, strings.Join(nixfs.StateWords(), " ")))
	_, err := w.Write(b.Bytes())
	return err
}

// The state words in each shell: completed as echo's or printf's argument when the
// command line writes to a file named state in a directory whose parent holds the
// mount's events file (`echo > /mnt/nixc/foo/state st<TAB>`; in bash and zsh also a
// word before the redirection, as in a line from history, while fish shows its
// completions only the line up to the cursor). They take effect once the nixcfs
// completion is loaded, and leave echo's own completion, if the shell has one, alone.

const bashStateWords = `
# The words a nixcfs state file takes, after echo or printf writing to one.
__nixcfs_state_file()
{
    local re='>[[:space:]]*([^[:space:]<>|;&]*/state)([[:space:]]|$)'
    [[ $COMP_LINE =~ $re ]] || return 1
    local f=${BASH_REMATCH[1]}
    f=${f/#\~/$HOME}
    [[ $f == /* ]] || f=$PWD/$f
    local d=${f%%/state}
    [[ -e ${d%%/*}/events ]]
}

__nixcfs_echo()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    COMPREPLY=()
    case $prev in
        '>'|'>>'|'<'|'>|') return ;;
    esac
    __nixcfs_state_file || return
    COMPREPLY=($(compgen -W '%s' -- "$cur"))
}

for __nixcfs_cmd in echo printf; do
    case $(complete -p "$__nixcfs_cmd" 2>/dev/null) in
        ''|*' _minimal '*) complete -o default -o bashdefault -F __nixcfs_echo "$__nixcfs_cmd" ;;
    esac
done
unset __nixcfs_cmd
`

const zshStateWords = `# The words a nixcfs state file takes, after echo or printf writing to one.
__nixcfs_state_file()
{
    [[ $BUFFER =~ '>[[:space:]]*([^[:space:]<>|;&]*/state)([[:space:]]|$)' ]] || return 1
    local f=${match[1]/#\~/$HOME}
    [[ $f == /* ]] || f=$PWD/$f
    local d=${f%%/state}
    [[ -e ${d%%/*}/events ]]
}

__nixcfs_echo()
{
    if (( CURRENT > 1 )) && __nixcfs_state_file; then
        compadd -- %s
    else
        _default "$@"
    fi
}

(( ${+_comps[echo]} )) || compdef __nixcfs_echo echo
(( ${+_comps[printf]} )) || compdef __nixcfs_echo printf
`

const fishStateWords = `
# The words a nixcfs state file takes, after echo or printf writing to one.
function __nixcfs_state_file
    set -l m (string match -r -- '>\s*([^\s<>|;&]*/state)(\s|$)' (commandline))
    or return 1
    set -l f $m[2]
    string match -q -- '~*' $f; and set f (string replace -r '^~' $HOME $f)
    string match -q -- '/*' $f; or set f $PWD/$f
    set -l d (string replace -r '/state$' '' $f)
    test -e (string replace -r '/[^/]*$' '' $d)/events
end

complete -c echo -n __nixcfs_state_file -f -a '%[1]s'
complete -c printf -n __nixcfs_state_file -f -a '%[1]s'
`
