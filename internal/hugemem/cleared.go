package hugemem

import "unsafe"

// Cleared returns a slice of n zero values whose memory has been written
// before anything reads it: for a hash table whose first touch would be a
// probe (a read). Memory the Go heap takes fresh from the OS is not
// zeroed by Go, and a page whose first touch is a read is mapped to the
// kernel's zero page; the write that follows copies it and flushes the
// page from the TLB of every CPU the process runs on, which in a VM is an
// interrupt to each of them (a tenth of `mce run`'s CPU time on 2 CPUs,
// the heavy user's receivers growing). A write first just gets its page.
//
// One write a page is enough: the kernel gives the page zeroed, and
// memory the heap had already was zeroed by make. Clearing the whole
// slice again, as Cleared once did, went over every byte a second time.
func Cleared[T any](n int) []T {
	s := make([]T, n)
	size := int(unsafe.Sizeof(*new(T))) * n
	if size == 0 {
		return s
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), size)
	for i := 0; i < size; i += touchStride {
		b[i] = 0
	}
	return s
}

// touchStride is the smallest page size of the platforms mce runs on.
const touchStride = 4096
