//go:build amd64 || arm64

package prefetch

import "unsafe"

// Lines asks the CPU to start loading the three cache lines at p. It never
// faults, whatever p points at.
//
//go:noescape
func Lines(p unsafe.Pointer)
