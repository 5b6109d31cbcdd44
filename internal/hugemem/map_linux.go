package hugemem

import (
	"syscall"
	"unsafe"
)

// mapRegion maps size bytes (a multiple of hugePage) of anonymous memory
// aligned to hugePage and advises it for huge pages.
func mapRegion(size int) ([]byte, func(), error) {
	raw, err := syscall.Mmap(-1, 0, size+hugePage, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, nil, err
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
	skip := int((hugePage - addr%hugePage) % hugePage)
	buf := raw[skip : skip+size : skip+size]
	// Not being able to advise (THP off or not built in) is fine: the
	// region still works with small pages.
	if !Disabled() {
		_ = syscall.Madvise(buf, syscall.MADV_HUGEPAGE)
	}
	return buf, func() { _ = syscall.Munmap(raw) }, nil
}
