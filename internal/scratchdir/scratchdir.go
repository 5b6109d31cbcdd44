// Package scratchdir holds the directory where a process's feature code
// writes what it cannot keep in memory (a heavy user's receivers:
// engine/feature). A cluster sets its run directory; otherwise it is the
// system's temporary directory. It is internal so that it is no part of
// the API a features file sees.
package scratchdir

import (
	"os"
	"sync/atomic"
)

var dir atomic.Pointer[string]

// Set sets the directory; "" is os.TempDir().
func Set(d string) { dir.Store(&d) }

// Get returns the directory.
func Get() string {
	if d := dir.Load(); d != nil && *d != "" {
		return *d
	}
	return os.TempDir()
}
