package fs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nixcfs/ops"
)

const helloConfig = `{ config, lib, pkgs, ... }:
with lib;
{ boot.isContainer = true;
  networking.hostName = mkDefault "foo";
  networking.useDHCP = false;
  services.hello = { enable = true; message = "hi"; };
}
`

// Every way of editing config.nix commits the new text exactly once, and leaves no
// scratch file behind.
func TestConfigEditedWithTools(t *testing.T) {
	for _, tc := range []struct {
		tool, script string
		want         func(old string) string
	}{
		{"cat", `cat > $MNT/web/config.nix < $NEW`, nil},
		{"tee", `tee $MNT/web/config.nix < $NEW > /dev/null`, nil},
		{"cp", `cp $NEW $MNT/web/config.nix`, nil},
		{"python shutil.copy", `python3 -c 'import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])' $NEW $MNT/web/config.nix`, nil},
		{"echo builtin", `echo "$(cat $NEW)" > $MNT/web/config.nix`, nil},
		{"sed -i", `sed -i 's/useDHCP = false/useDHCP = true/' $MNT/web/config.nix`, dhcpOn},
		{"perl -pi", `perl -pi -e 's/useDHCP = false/useDHCP = true/' $MNT/web/config.nix`, dhcpOn},
		{"vim, backup by rename", vim("bkc=auto", "%s/useDHCP = false/useDHCP = true/"), dhcpOn},
		{"vim, backup by copy", vim("bkc=yes", "%s/useDHCP = false/useDHCP = true/"), dhcpOn},
		{"vim, no backup", vim("nowb", "%s/useDHCP = false/useDHCP = true/"), dhcpOn},
		{"append", `echo '# the end' >> $MNT/web/config.nix`, func(old string) string { return old + "# the end\n" }},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			f, mnt := mountFake(t)
			f.add("web", &fakeContainer{}, false)
			old := ops.DefaultConfig("web", "")
			want := helloConfig
			if tc.want != nil {
				want = tc.want(old)
			}
			newFile := filepath.Join(t.TempDir(), "new.nix")
			os.WriteFile(newFile, []byte(helloConfig), 0o644)
			mustSh(t, mnt, "NEW="+newFile+"; "+tc.script)
			if got := mustSh(t, mnt, `cat $MNT/web/config.nix`); got != want {
				t.Errorf("config.nix:\n%s\nwant\n%s", got, want)
			}
			f.set(func() {
				if len(f.commits) != 1 {
					t.Errorf("%d commits, want 1: %q", len(f.commits), f.commits)
				}
			})
			if got := strings.Fields(mustSh(t, mnt, `ls -A $MNT/web`)); len(got) != len(files) {
				t.Errorf("left behind: %v", got)
			}
		})
	}
}

// vim edits config.nix in ex mode. backupskip is emptied because its default skips
// files under /tmp, where the tests mount.
func vim(options, command string) string {
	return `$VIM -Es -u NONE -i NONE -N -c 'set bsk= ` + options + `' -c '` + command + `' -c wq $MNT/web/config.nix`
}

func dhcpOn(old string) string { return strings.Replace(old, "useDHCP = false", "useDHCP = true", 1) }

// A failed build fails the close (EIO) for tools that report it; the new text stays.
// A rename over config.nix (sed -i, perl -pi) returns before the build, because the
// kernel holds the directory's lock while it runs: those tools exit 0, and the status
// says the build failed.
func TestConfigFailedBuild(t *testing.T) {
	for _, tc := range []struct {
		tool, script string
		renames      bool
	}{
		{"cat", `printf '{ BROKEN }\n' > $NEW; cat $NEW > $MNT/web/config.nix`, false},
		{"tee", `printf '{ BROKEN }\n' | tee $MNT/web/config.nix`, false},
		{"sed -i", `sed -i 's/.*useDHCP.*/{ BROKEN }/' $MNT/web/config.nix`, true},
		{"perl -pi", `perl -pi -e 's/.*useDHCP.*/{ BROKEN }/' $MNT/web/config.nix`, true},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			f, mnt := mountFake(t)
			f.add("web", &fakeContainer{}, false)
			script := "NEW=" + filepath.Join(t.TempDir(), "new.nix") + "; " + tc.script
			if tc.renames {
				mustSh(t, mnt, script)
			} else {
				failSh(t, mnt, script, "Input/output error")
			}
			if got := mustSh(t, mnt, `cat $MNT/web/config.nix`); !strings.Contains(got, brokenMarker) {
				t.Errorf("the new text is lost:\n%s", got)
			}
			mustSh(t, mnt, `grep -q '^error build failed' $MNT/web/status`)
			if got := strings.Fields(mustSh(t, mnt, `ls -A $MNT/web`)); len(got) != len(files) {
				t.Errorf("left behind: %v", got)
			}
		})
	}
}

// vim, when the close fails, puts its backup back in place (that commits the old text
// again) and keeps the new text in its buffer.
func TestConfigFailedBuildWithVim(t *testing.T) {
	for _, bkc := range []string{"bkc=auto", "bkc=yes"} {
		t.Run(bkc, func(t *testing.T) {
			f, mnt := mountFake(t)
			f.add("web", &fakeContainer{}, false)
			failSh(t, mnt, vim(bkc, "%s/useDHCP = false/BROKEN/"), "")
			if got := mustSh(t, mnt, `cat $MNT/web/config.nix`); got != ops.DefaultConfig("web", "") {
				t.Errorf("config.nix:\n%s", got)
			}
			f.set(func() {
				if len(f.commits) != 2 || !strings.Contains(f.commits[0], brokenMarker) {
					t.Errorf("commits: %q", f.commits)
				}
			})
		})
	}
}

// Opening config.nix for writing and closing it without writing commits nothing:
// echo > sends SETATTR size 0 and a FLUSH before its data.
func TestConfigTruncateAloneCommitsNothing(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	mustSh(t, mnt, `: > $MNT/web/config.nix; truncate -s 0 $MNT/web/config.nix; exec 3>>$MNT/web/config.nix; exec 3>&-`)
	if n := f.commitCount(); n != 0 {
		t.Errorf("%d commits", n)
	}
	if got := mustSh(t, mnt, `cat $MNT/web/config.nix`); got != ops.DefaultConfig("web", "") {
		t.Errorf("config changed:\n%s", got)
	}
}

// Scratch files behave as files: vim's swap file, a copy kept next to config.nix.
func TestScratchFiles(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	mustSh(t, mnt, `cd $MNT/web && echo draft > notes && echo more >> notes && chmod 600 notes &&
		test "$(cat notes)" = "draft
more" && test "$(stat -c %a:%s notes)" = 600:11 && mv notes notes2 && cp config.nix old.nix &&
		cmp config.nix old.nix && rm notes2 old.nix && ! test -e notes2`)
	if n := f.commitCount(); n != 0 {
		t.Errorf("%d commits", n)
	}
}

// config.nix and scratch files are kept in the daemon's memory, so they stop at
// maxConfigSize: a huge truncate or a write far out fails with EFBIG, and the daemon
// goes on serving, with nothing committed.
func TestConfigTooLarge(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	mustSh(t, mnt, `echo draft > $MNT/web/notes`)
	for _, file := range []string{"config.nix", "notes"} {
		failSh(t, mnt, `truncate -s 100G $MNT/web/`+file, "File too large")
		failSh(t, mnt, `dd if=/dev/zero of=$MNT/web/`+file+` bs=1M seek=100000 count=1 conv=notrunc status=none`, "File too large")
	}
	mustSh(t, mnt, `cd $MNT/web && test "$(cat notes)" = draft &&
		truncate -s 16M notes && test "$(stat -c %s notes)" = 16777216 &&
		dd if=/dev/zero of=notes bs=1M seek=15 count=1 conv=notrunc status=none &&
		! truncate -s 16777217 notes && test "$(stat -c %s notes)" = 16777216 && rm notes &&
		cat state > /dev/null`)
	if got := mustSh(t, mnt, `cat $MNT/web/config.nix`); got != ops.DefaultConfig("web", "") {
		t.Errorf("config changed:\n%s", got)
	}
	if n := f.commitCount(); n != 0 {
		t.Errorf("%d commits", n)
	}
	mustSh(t, mnt, `cp $MNT/web/config.nix $MNT/web/config.nix.new && mv $MNT/web/config.nix.new $MNT/web/config.nix`)
	if n := f.commitCount(); n != 1 {
		t.Errorf("%d commits after a rename over config.nix, want 1", n)
	}
}

// A writer killed before it closes config.nix (kill -9 half-way through its text, or
// a signal it does not catch) commits nothing: the kernel flushes its file as the
// task exits, and a flush from a task dying by a signal is no close. The previous
// text stays, and status says whose text was discarded.
func TestConfigWriterKilled(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	old := ops.DefaultConfig("web", "")
	// The writer opens config.nix (O_TRUNC), writes half a text and is killed before
	// it closes its one descriptor. (A shell's `printf ... >&3` is no such writer: the
	// shell closes the copy of fd 3 it made for printf, and that close commits.)
	killed := `import os, signal, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
os.write(fd, b"{ boot.isContainer = ")
os.kill(os.getpid(), getattr(signal, sys.argv[2]))`
	for _, sig := range []string{"KILL", "TERM"} {
		out, ok := sh(t, mnt, `python3 -c '`+killed+`' $MNT/web/config.nix SIG`+sig)
		if ok {
			t.Fatalf("SIG%s: the writer exited 0:\n%s", sig, out)
		}
		if got := mustSh(t, mnt, `cat $MNT/web/config.nix`); got != old {
			t.Errorf("SIG%s: config.nix after a killed writer:\n%s\nwant the previous text", sig, got)
		}
		if got := mustSh(t, mnt, `cat $MNT/web/status`); !strings.Contains(got, "was killed before closing it; its text was discarded") {
			t.Errorf("SIG%s: status does not say the text was discarded:\n%s", sig, got)
		}
		if n := f.commitCount(); n != 0 {
			t.Errorf("SIG%s: %d commits", sig, n)
		}
	}
	// The same writer that closes commits its text.
	mustSh(t, mnt, `python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC); os.write(fd, b"{ boot.isContainer = true; }\n")' $MNT/web/config.nix`)
	if got := mustSh(t, mnt, `cat $MNT/web/config.nix`); got != "{ boot.isContainer = true; }\n" {
		t.Errorf("config.nix after a writer that closed: %q", got)
	}
	if n := f.commitCount(); n != 1 {
		t.Errorf("%d commits after a writer that closed, want 1", n)
	}
}

// A writer whose write failed commits nothing when it closes (h.failed): neither
// `head -c 17M /dev/zero > config.nix`, whose first 16 MiB were taken before a write
// failed with EFBIG, nor a writer that wrote a whole valid text and then a write past
// 16 MiB. The previous text stays, and status says why.
func TestConfigFailedWriteCommitsNothing(t *testing.T) {
	f, mnt := mountFake(t)
	f.add("web", &fakeContainer{}, false)
	old := ops.DefaultConfig("web", "")
	validPrefix := `python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
os.write(fd, b"{ boot.isContainer = true; }\n")
try:
    os.pwrite(fd, b"x", 17 << 20)
except OSError as e:
    print("pwrite:", e.strerror)
os.close(fd)' $MNT/web/config.nix`
	for _, tc := range []struct{ writer, want string }{
		{`head -c 17M /dev/zero > $MNT/web/config.nix`, "File too large"},
		{validPrefix, "pwrite: File too large"},
	} {
		f.NoteError("web", errors.New("marker"))
		if out, ok := sh(t, mnt, tc.writer); ok || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit 0 is %v, output %q; want a failure, %q", tc.writer, ok, out, tc.want)
		}
		if n := f.commitCount(); n != 0 {
			t.Errorf("%s: %d commits", tc.writer, n)
		}
		if got := mustSh(t, mnt, `cat $MNT/web/config.nix`); got != old {
			t.Errorf("%s: config.nix is now\n%.200q\nwant the previous text", tc.writer, got)
		}
		if st, _ := f.Status("web"); !strings.Contains(st.Error, "config.nix: a write past 16 MiB was refused") {
			t.Errorf("%s: status error %q", tc.writer, st.Error)
		}
	}
}
