//go:build !unix

package procfs

import "time"

// CPUTime returns false: this system's CPU time is not read.
func CPUTime() (time.Duration, bool) { return 0, false }
