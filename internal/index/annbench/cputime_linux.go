package annbench

import (
	"syscall"
	"time"
)

// rusageThread is RUSAGE_THREAD, which package syscall does not name.
const rusageThread = 1

// threadCPU returns the CPU time the calling OS thread has used; the caller
// must hold runtime.LockOSThread. On a shared machine this is steadier than
// wall time: it leaves out the time other processes held the core.
func threadCPU() time.Duration { return rusage(rusageThread) }

// processCPU returns the CPU time the whole process has used.
func processCPU() time.Duration { return rusage(syscall.RUSAGE_SELF) }

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(who, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
