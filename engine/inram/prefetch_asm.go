//go:build amd64 || arm64

package inram

import "unsafe"

// prefetch asks the CPU to start loading the three cache lines at p. It
// never faults, whatever p points at.
//
//go:noescape
func prefetch(p unsafe.Pointer)
