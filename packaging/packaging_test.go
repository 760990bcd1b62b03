package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repo is the repository's top directory (tests run in their package's directory).
var repo = func() string { d, _ := filepath.Abs(".."); return d }()

func needTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("needs %s (make deps installs it)", tool)
	}
}

// run runs a command in the repository, and returns its stdout; it fails t unless the
// command succeeds.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = repo
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// cleanEnv is the environment without what an outer make hands its children: a
// make started by a test has its own jobs.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKE_TERMOUT", "MAKE_TERMERR":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// installed are the files make install puts under PREFIX.
func installed(prefix string) []string {
	return []string{
		prefix + "/bin/nixcfs",
		prefix + "/lib/systemd/system/nixcfs.service",
		prefix + "/share/man/man1/nixcfs.1",
		prefix + "/share/man/man5/nixcfs.5",
		prefix + "/share/bash-completion/completions/nixcfs",
		prefix + "/share/zsh/site-functions/_nixcfs",
		prefix + "/share/fish/vendor_completions.d/nixcfs.fish",
	}
}

// make install into a DESTDIR, with PREFIX, and make uninstall from it.
func TestMakeInstallDestdir(t *testing.T) {
	needTool(t, "make")
	for _, prefix := range []string{"/usr/local", "/usr", "/opt/nixcfs"} {
		destdir := t.TempDir()
		vars := []string{"DESTDIR=" + destdir}
		if prefix != "/usr/local" {
			vars = append(vars, "PREFIX="+prefix)
		}
		run(t, nil, "make", append([]string{"--no-print-directory", "install"}, vars...)...)
		for _, f := range installed(prefix) {
			fi, err := os.Stat(destdir + f)
			if err != nil {
				t.Errorf("PREFIX=%s: %v", prefix, err)
				continue
			}
			mode := os.FileMode(0o644)
			if strings.HasSuffix(f, "/bin/nixcfs") {
				mode = 0o755
			}
			if fi.Mode().Perm() != mode {
				t.Errorf("%s: mode %v, want %v", f, fi.Mode().Perm(), mode)
			}
		}
		unit, _ := os.ReadFile(destdir + prefix + "/lib/systemd/system/nixcfs.service")
		if want := "\nExecStart=" + prefix + "/bin/nixcfs mount "; !strings.Contains(string(unit), want) {
			t.Errorf("PREFIX=%s: the unit lacks %q:\n%s", prefix, want, unit)
		}
		// What was installed is what was built.
		for _, p := range [][2]string{
			{"build/nixcfs", prefix + "/bin/nixcfs"},
			{"build/man/man5/nixcfs.5", prefix + "/share/man/man5/nixcfs.5"},
			{"build/completions/nixcfs.bash", prefix + "/share/bash-completion/completions/nixcfs"},
		} {
			built, _ := os.ReadFile(filepath.Join(repo, p[0]))
			got, _ := os.ReadFile(destdir + p[1])
			if len(built) == 0 || !bytes.Equal(built, got) {
				t.Errorf("%s is not %s", p[1], p[0])
			}
		}
		run(t, nil, "make", append([]string{"--no-print-directory", "uninstall"}, vars...)...)
		for _, f := range installed(prefix) {
			if _, err := os.Stat(destdir + f); err == nil {
				t.Errorf("PREFIX=%s: make uninstall left %s", prefix, f)
			}
		}
	}
}

// The unit passes systemd-analyze verify (its man pages are not on this machine's
// MANPATH: --man=no; the test host's install test verifies them installed).
func TestUnitVerifies(t *testing.T) {
	needTool(t, "systemd-analyze")
	dir := t.TempDir()
	unit, _ := os.ReadFile(filepath.Join(repo, "packaging", "nixcfs.service.in"))
	text := strings.ReplaceAll(string(unit), "@bindir@", filepath.Join(repo, "build"))
	path := filepath.Join(dir, "nixcfs.service")
	os.WriteFile(path, []byte(text), 0o644)
	cmd := exec.Command("systemd-analyze", "verify", "--man=no", path)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The binary make builds carries the version and the commit git gave it.
func TestVersionFromMake(t *testing.T) {
	version, err := os.ReadFile(filepath.Join(repo, "build", "version"))
	if err != nil {
		t.Fatalf("build/version: %v (make build writes it)", err)
	}
	m := regexp.MustCompile(`-X main.version=(\S+) -X main.commit=(\S+)`).FindStringSubmatch(string(version))
	if m == nil {
		t.Fatalf("build/version: %q", version)
	}
	out := run(t, nil, filepath.Join(repo, "build", "nixcfs"), "--version")
	want := regexp.MustCompile(`^nixcfs ` + regexp.QuoteMeta(m[1]) + ` \(commit ` + regexp.QuoteMeta(m[2]) + `, go1\.\d+[^ ]* linux/\w+\)\n$`)
	if !want.MatchString(out) {
		t.Errorf("build/nixcfs --version: %q, want %s", out, want)
	}
}

// Each prerequisite a machine lacks is one line, and make stops.
func TestPrereqs(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("runs as root, to check the root test as another user")
	}
	needTool(t, "setpriv")
	// A copy other users may read.
	dir, err := os.MkdirTemp("", "nixcfs-prereqs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	os.MkdirAll(filepath.Join(dir, "packaging"), 0o755)
	for _, f := range []string{"go.mod", "packaging/prereqs.sh"} {
		data, _ := os.ReadFile(filepath.Join(repo, f))
		os.WriteFile(filepath.Join(dir, f), data, 0o755)
	}
	script := filepath.Join(dir, "packaging", "prereqs.sh")
	prereqs := func(env []string, asNobody bool, needs ...string) (string, int) {
		args := append([]string{script, "test"}, needs...)
		if asNobody {
			args = append([]string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}, args...)
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(cleanEnv(), env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stderr.String(), code
	}

	if out, code := prereqs(nil, false, "go", "root", "fuse", "testhost", "apt"); code != 0 || out != "" {
		t.Errorf("on this machine: exit %d\n%s", code, out)
	}

	pid1, _ := os.ReadFile("/proc/1/comm")
	wantLines := []string{
		`^make test: needs Go 1\.\d+(\.\d+)? or later, and there is no /nonexistent/go: .*go\.dev/dl.*Debian 12's golang-go is Go 1\.19, too old`,
		`^make test: needs root: run it as root`,
		`^make test: needs /nonexistent/fuse: load the fuse module`,
	}
	if strings.TrimSpace(string(pid1)) != "systemd" {
		wantLines = append(wantLines, `^make test: needs systemd as PID 1 to run nixcfs.service \(PID 1 here is `)
	}
	out, code := prereqs([]string{"GO=/nonexistent/go", "FUSE_DEVICE=/nonexistent/fuse"}, true, "go", "root", "fuse", "systemd")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 1 || len(lines) != len(wantLines) {
		t.Fatalf("missing go, root, fuse: exit %d, %d lines, want %d:\n%s", code, len(lines), len(wantLines), out)
	}
	for i, re := range wantLines {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d: %q, want %s", i+1, lines[i], re)
		}
	}

	// A Go too old for go.mod: this stands for Debian 12's, which says go1.19.8.
	oldGo := filepath.Join(dir, "go")
	os.WriteFile(oldGo, []byte("#!/bin/sh\n[ \"$1 $2\" = 'env GOVERSION' ] && echo go1.19.8\n"), 0o755)
	out, code = prereqs([]string{"GO=" + oldGo}, false, "go")
	if code != 1 || !regexp.MustCompile(`^make test: needs Go 1\.\d+(\.\d+)? or later \(go\.mod\), and .*/go is go1\.19\.8: unpack a release from https://go.dev/dl/ into /usr/local/go \(Debian 12's golang-go is Go 1\.19, too old\)\n$`).MatchString(out) {
		t.Errorf("old go: exit %d\n%s", code, out)
	}

	// What nixcfs.service runs, missing: one line for Nix, one for systemd-nspawn.
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	bare := t.TempDir() // a PATH with what the script itself uses, and nothing else
	for _, tool := range []string{"dirname", "cat"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		os.Symlink(p, filepath.Join(bare, tool))
	}
	cmd := exec.Command(bash, script, "install", "runtime")
	cmd.Env = []string{"PATH=" + bare}
	got, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !regexp.MustCompile("^"+
		`make install: needs nix-build nix-env to build the containers' systems: install Nix \(Debian's nix-bin, .*\)\n`+
		`make install: needs systemd-nspawn to run the containers: install systemd-container\n$`).Match(got) {
		t.Errorf("no nix-build, nix-env, systemd-nspawn: exit %d, %v\n%s", code, err, got)
	}

	// make install checks before it builds: as another user it stops at root, and
	// nothing is built.
	build := filepath.Join(dir, "build") // in the copy other users may read: nobody may write it
	os.Mkdir(build, 0o777)
	os.Chmod(build, 0o777)
	cmd = exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"make", "--no-print-directory", "-C", repo, "install", "BUILD="+build)
	cmd.Env = cleanEnv()
	got, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(got), "make install: needs root") || strings.Contains(string(got), " build ") {
		t.Errorf("make install as another user: %v\n%s", err, got)
	}
	if entries, _ := os.ReadDir(build); len(entries) > 0 {
		t.Errorf("make install as another user built %v before it stopped", entries)
	}

	// make stops at the check, before doing anything else.
	cmd = exec.Command("make", "--no-print-directory", "-C", repo, "prereqs-test", "GO=/nonexistent/go")
	cmd.Env = cleanEnv()
	got, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(got), "make test: needs Go") {
		t.Errorf("make prereqs-test with no Go: %v\n%s", err, got)
	}
}
