//go:build !linux

package annbench

import "time"

// CPU times are only measured on Linux; elsewhere they read 0 and the
// CPU-time columns are left out.
func threadCPU() time.Duration  { return 0 }
func processCPU() time.Duration { return 0 }
