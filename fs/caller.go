package fs

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// killedCaller tells whether the process that made this request is being killed by a
// signal: the kernel flushes a process's open files as it exits, and a writer killed
// half-way (kill -9, a crash) must not commit the half it wrote. A process that exits
// normally without closing its files has finished writing, and does commit.
func killedCaller(ctx context.Context) (pid uint32, killed bool) {
	caller, ok := fuse.FromContext(ctx)
	if !ok || caller.Pid == 0 {
		return 0, false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", caller.Pid))
	if err != nil {
		return caller.Pid, false
	}
	return caller.Pid, exitingBySignal(string(data))
}

// The task's flags (field 9 of /proc/PID/stat) and exit code (field 52), counted from
// the state (field 3), the first after the command name's closing parenthesis.
const (
	statFlags    = 9 - 3
	statExitCode = 52 - 3
	pfExiting    = 0x4 // PF_EXITING: the task is in do_exit
)

// exitingBySignal reads /proc/PID/stat: the task is exiting, and its exit code (set
// before its files are closed) carries a signal number, not an exit status.
func exitingBySignal(stat string) bool {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return false
	}
	fields := strings.Fields(stat[i+1:])
	if len(fields) <= statExitCode {
		return false
	}
	flags, err1 := strconv.ParseUint(fields[statFlags], 10, 64)
	code, err2 := strconv.ParseInt(fields[statExitCode], 10, 64)
	return err1 == nil && err2 == nil && flags&pfExiting != 0 && code&0x7f != 0
}
