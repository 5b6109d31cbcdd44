// Package hugemem hands out byte buffers from large memory regions mapped
// outside the Go heap and advised for transparent huge pages.
//
// A cluster holds a whole file's rows in RAM. From the Go heap, those
// buffers come in 4 KiB pages, each a page fault when first touched: on a
// 2-core VM the faults of a fresh cluster's first file were a third of its
// time (THP set to "madvise", the usual default, and the Go runtime does not
// ask for huge pages). An Arena maps regions of RegionBytes aligned to 2 MiB
// and advises them MADV_HUGEPAGE, so the kernel backs them with 2 MiB pages:
// 512 times fewer faults. Reset keeps the regions for the next file, so a
// cluster's later files fault nothing; Release unmaps them.
//
// The memory is not the Go heap's: the collector neither scans nor frees
// it, and it must hold no Go pointers. Slices from an Arena are valid until
// the next Reset or Release. On systems without mmap, or when mapping
// fails, an Arena falls back to make.
//
// Cleared, for the Go heap, makes a slice whose first touch is a write, for
// tables that are probed (read) before they are filled. AdviseHeap asks
// for huge pages for the Go heap itself.
//
// DisableEnv set to anything turns the advice off (Arena's and
// AdviseHeap's): the memory then comes in the system's pages.
package hugemem

import (
	"os"
	"sync"
)

// DisableEnv, when set, keeps hugemem from asking for huge pages.
const DisableEnv = "MCE_NO_HUGEPAGES"

// Disabled reports whether DisableEnv is set.
func Disabled() bool { return os.Getenv(DisableEnv) != "" }

// RegionBytes is the size of one mapped region.
const RegionBytes = 32 << 20

// hugePage is the huge page size regions are aligned to.
const hugePage = 2 << 20

// Arena is a bump allocator over mapped regions. Its methods are safe for
// concurrent use. The zero Arena is ready.
type Arena struct {
	mu      sync.Mutex
	regions []region
	cur     int // region being filled
	off     int // bytes used in regions[cur]
	noMap   bool
}

type region struct {
	buf   []byte // usable, aligned
	unmap func()
}

// Alloc returns a buffer of length 0 and capacity n. Its bytes are not
// zeroed (they may hold data of an earlier use of the Arena): callers
// append to it.
func (a *Arena) Alloc(n int) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.alloc(n)
}

// AllocEach sets bufs[i] to Alloc(sizes[i]) for every sizes[i] > 0 (nil
// for 0), under one lock.
func (a *Arena) AllocEach(sizes []int, bufs [][]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, n := range sizes {
		bufs[i] = nil
		if n > 0 {
			bufs[i] = a.alloc(n)
		}
	}
}

func (a *Arena) alloc(n int) []byte {
	if a.noMap || n <= 0 {
		return make([]byte, 0, n)
	}
	// Keep buffers 8-byte aligned.
	need := (n + 7) &^ 7
	for a.cur < len(a.regions) {
		r := a.regions[a.cur].buf
		if a.off+need <= len(r) {
			b := r[a.off : a.off : a.off+n]
			a.off += need
			return b
		}
		a.cur++
		a.off = 0
	}
	size := RegionBytes
	if need > size {
		size = (need + hugePage - 1) &^ (hugePage - 1)
	}
	buf, unmap, err := mapRegion(size)
	if err != nil {
		a.noMap = true
		return make([]byte, 0, n)
	}
	a.regions = append(a.regions, region{buf: buf, unmap: unmap})
	a.cur = len(a.regions) - 1
	b := buf[0:0:n]
	a.off = need
	return b
}

// Reset makes every region free for reuse, keeping it mapped. Every slice
// the Arena handed out is invalid afterwards.
func (a *Arena) Reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cur, a.off = 0, 0
}

// Trim resets the Arena and unmaps the regions beyond the first ones that
// hold keep bytes, so that an Arena sized by a big file does not hold that
// memory through smaller ones.
func (a *Arena) Trim(keep int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cur, a.off = 0, 0
	var n int64
	for i, r := range a.regions {
		if n >= keep {
			for _, r := range a.regions[i:] {
				r.unmap()
			}
			clear(a.regions[i:])
			a.regions = a.regions[:i]
			return
		}
		n += int64(len(r.buf))
	}
}

// Release unmaps every region. Every slice the Arena handed out is invalid
// afterwards (using one faults).
func (a *Arena) Release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.regions {
		r.unmap()
	}
	a.regions = nil
	a.cur, a.off = 0, 0
}

// MappedBytes returns the bytes of the regions mapped now.
func (a *Arena) MappedBytes() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var n int64
	for _, r := range a.regions {
		n += int64(len(r.buf))
	}
	return n
}
