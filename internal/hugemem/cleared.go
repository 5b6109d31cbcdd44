package hugemem

// Cleared returns a slice of n zero values whose memory has been written
// before anything reads it: for a hash table whose first touch would be a
// probe (a read). Memory the Go heap takes fresh from the OS is not
// zeroed by Go, and a page whose first touch is a read is mapped to the
// kernel's zero page; the write that follows copies it and flushes the
// page from the TLB of every CPU the process runs on, which in a VM is an
// interrupt to each of them (a tenth of `mce run`'s CPU time on 2 CPUs,
// the heavy user's receivers growing). A write first just gets its page;
// clearing memory that is already the process's costs a memset.
func Cleared[T any](n int) []T {
	s := make([]T, n)
	clear(s)
	return s
}
