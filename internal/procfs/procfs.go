// Package procfs reads what mce needs of this process from Linux's /proc.
package procfs

import (
	"os"
	"strconv"
	"strings"
)

// PeakRSS returns this process's peak resident set size (VmHWM of
// /proc/self/status) in bytes, or 0 where there is no /proc.
func PeakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(ln, "VmHWM:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

// ResetPeakRSS sets this process's peak RSS back to its current RSS
// (/proc/self/clear_refs, value 5), so that PeakRSS measures what follows.
func ResetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
