package bench

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cachedBytes returns how many of the first size bytes of f the page
// cache holds (mincore(2) of a read-only mapping); false when it cannot
// tell.
func cachedBytes(f *os.File, size int64) (int64, bool) {
	if size <= 0 || size != int64(int(size)) {
		return 0, false
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, false
	}
	defer unix.Munmap(m)
	page := int64(os.Getpagesize())
	vec := make([]byte, (size+page-1)/page)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		return 0, false
	}
	var n int64
	for i, v := range vec {
		if v&1 != 0 {
			n += min(page, size-int64(i)*page)
		}
	}
	return n, true
}
