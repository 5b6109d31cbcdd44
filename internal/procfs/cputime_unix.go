//go:build unix

package procfs

import (
	"syscall"
	"time"
)

// CPUTime returns the CPU time (user and system) this process has used,
// and false where the system cannot say. The benchmarks report CPU
// seconds per operation with it.
func CPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
