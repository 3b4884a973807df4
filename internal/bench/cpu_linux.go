package bench

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// canPin reports whether processes can be held to chosen CPUs here.
const canPin = true

// startOn starts cmd held to the given CPUs, or as it is if none are given.
// A child inherits the CPU set of the thread that forks it, so the fork runs
// on a thread that holds that set for the moment.
func startOn(cmd *exec.Cmd, cpus ...int) error {
	if len(cpus) == 0 {
		return cmd.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var was unix.CPUSet
	if err := unix.SchedGetaffinity(0, &was); err != nil {
		return fmt.Errorf("CPU set: %w", err)
	}
	if err := unix.SchedSetaffinity(0, cpuSet(cpus)); err != nil {
		return fmt.Errorf("CPU set %v: %w", cpus, err)
	}
	err := cmd.Start()
	if err2 := unix.SchedSetaffinity(0, &was); err == nil && err2 != nil {
		err = fmt.Errorf("CPU set: %w", err2)
	}
	return err
}

// pin holds every thread of process pid to the given CPUs (all the
// machine's CPUs if none are given). Threads started later inherit the set
// of the thread that starts them, and so the set too.
func pin(pid int, cpus ...int) error {
	set := cpuSet(cpus)
	if len(cpus) == 0 {
		set = new(unix.CPUSet)
		for i := range runtime.NumCPU() {
			set.Set(i)
		}
	}
	// Twice, for a thread started while the first round ran.
	for range 2 {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("CPU set of thread %d: %w", tid, err)
			}
		}
	}
	return nil
}

func cpuSet(cpus []int) *unix.CPUSet {
	set := new(unix.CPUSet)
	for _, c := range cpus {
		set.Set(c)
	}
	return set
}
