//go:build !linux

package bench

import (
	"errors"
	"os/exec"
)

// canPin reports whether processes can be held to chosen CPUs here: only on
// Linux; elsewhere the write-cost figure runs on shared CPUs.
const canPin = false

var errNoPin = errors.New("holding a process to chosen CPUs is only supported on Linux")

func startOn(cmd *exec.Cmd, cpus ...int) error {
	if len(cpus) == 0 {
		return cmd.Start()
	}
	return errNoPin
}

func pin(pid int, cpus ...int) error { return errNoPin }
