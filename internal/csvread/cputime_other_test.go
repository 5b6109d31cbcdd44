//go:build !unix

package csvread

import "time"

func cpuTime() (time.Duration, bool) { return 0, false }
