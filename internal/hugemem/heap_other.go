//go:build !linux

package hugemem

// AdviseHeap does nothing here: huge pages are asked for on Linux only.
func AdviseHeap(reserve int64) int64 { return 0 }
