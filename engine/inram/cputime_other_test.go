//go:build !unix

package inram

import "time"

func cpuTime() (time.Duration, bool) { return 0, false }
