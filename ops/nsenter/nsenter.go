// Package nsenter runs a command inside a running container's namespaces, as
// nixos-container's `nsenter -t LEADER -m -u -i -n -p` does, without the nsenter binary.
//
// A Go process cannot join a mount namespace once its runtime has started threads, so
// the joining happens in C before the runtime starts: Exec re-executes this program as
// `PROG __nsenter PID PATHS ARGS...`; the constructor below sees that, joins PID's
// namespaces, forks (a new PID namespace applies to children only), and the child execs
// the first of PATHS that exists in the container, looked for there, never from the
// host through /proc/PID/root (where a guest's link would lead to the host's own
// files). The parent waits and exits with the child's status, so exit codes pass
// through.
//
// Before that, Exec moves the process into the leader's control groups, so that the
// command counts against the container's resource limits and in its stats.
package nsenter

/*
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void nixcfs_die(const char *what, const char *arg) {
	fprintf(stderr, "nixcfs: enter container: %s %s: %s\n", what, arg, strerror(errno));
	_exit(126);
}

__attribute__((constructor)) static void nixcfs_nsenter(int argc, char **argv, char **envp) {
	if (argc < 4 || strcmp(argv[1], "__nsenter") != 0)
		return;
	const char *pid = argv[2];
	// The mount namespace last: after it, /proc/PID is the container's view.
	static const char *kinds[] = {"cgroup", "ipc", "uts", "net", "pid", "mnt"};
	int fds[6];
	char path[64];
	for (int i = 0; i < 6; i++) {
		snprintf(path, sizeof path, "/proc/%s/ns/%s", pid, kinds[i]);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0 && !(errno == ENOENT && i == 0))
			nixcfs_die("open", path);
	}
	for (int i = 0; i < 6; i++) {
		if (fds[i] >= 0 && setns(fds[i], 0) < 0)
			nixcfs_die("join namespace", kinds[i]);
		if (fds[i] >= 0)
			close(fds[i]);
	}
	if (chdir("/") < 0)
		nixcfs_die("chdir", "/");
	pid_t child = fork();
	if (child < 0)
		nixcfs_die("fork", "");
	if (child == 0) {
		// argv[3] lists the program's possible paths, separated by ':', looked for
		// here, inside the container: the first that exists runs.
		char *all = strdup(argv[3]), *paths = strdup(argv[3]), *next = paths, *p;
		while ((p = strsep(&next, ":")) != NULL) {
			argv[3] = p;
			execve(p, argv + 3, envp);
			if (errno != ENOENT && errno != ENOTDIR)
				nixcfs_die("exec", p);
		}
		errno = ENOENT;
		nixcfs_die("exec: none of these exists in the container:", all);
	}
	// The terminal's job-control signals are for the command, not for this waiter.
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	int status;
	while (waitpid(child, &status, 0) < 0) {
		if (errno != EINTR)
			nixcfs_die("wait", "");
	}
	if (WIFEXITED(status))
		_exit(WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		_exit(128 + WTERMSIG(status));
	_exit(1);
}
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"nixcfs/internal/cgroup"
)

// Exec replaces this process with a program run inside the namespaces and control
// groups of pid: the first of paths (absolute, inside the container) that exists, with
// args. It returns only on failure.
func Exec(pid int, paths []string, args []string, env []string) error {
	for _, p := range paths {
		if !filepath.IsAbs(p) || strings.Contains(p, ":") {
			return fmt.Errorf("enter container: %q is no absolute path", p)
		}
	}
	if len(paths) == 0 {
		return fmt.Errorf("enter container: no program")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// What runs inside counts against the container's limits and usage, as the
	// processes of machinectl shell do; namespaces alone would leave it outside.
	if err := cgroup.Join(pid); err != nil {
		return fmt.Errorf("enter container: %w", err)
	}
	argv := append([]string{self, "__nsenter", strconv.Itoa(pid), strings.Join(paths, ":")}, args...)
	return syscall.Exec(self, argv, env)
}
