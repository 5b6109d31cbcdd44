//go:build !linux

package bench

import "os"

// cachedBytes cannot tell here: warmFile reads every file.
func cachedBytes(*os.File, int64) (int64, bool) { return 0, false }
