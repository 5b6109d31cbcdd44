package hugemem

import (
	"runtime"
	"sync"
	"unsafe"
)

// Buffers hands out byte buffers of one size from a region mapped outside
// the Go heap (in huge pages, as an Arena's), and takes them back for the
// next use.
//
// A cluster works file after file, and every file needs the same few
// buffers: the CSV reader's blocks, a job's output lines, the output
// writer's. Made anew for each file in the Go heap, they were new memory
// each time: the collector freed the last file's, the scavenger gave their
// pages back to the OS and the next file's faulted them in again, zeroed
// (on a 2-core VM, 500 files of 2,000 rows: a third of a cluster's CPU in
// memclr, madvise and faults). Kept in a free list in the Go heap instead,
// they count as live heap, which the collector lets grow to a multiple of
// itself before it runs: the cluster's peak RSS grew by 11 MiB at 300 MB.
// Mapped outside the heap, they are faulted in once and count once: in
// the same rounds the peak grew by 4 MiB (by 10 against an older binary
// in other rounds: the region sits beside the heap, whose free memory
// these buffers were taken from before).
//
// The region holds at most max buffers; when all are out, Get makes one in
// the Go heap, which Put leaves to the collector. Its methods are safe for
// concurrent use.
type Buffers struct {
	size int
	max  func() int

	mu     sync.Mutex
	region []byte   // mapped at the first Get that needs it
	tried  bool     // the region was mapped, or failed to be
	count  int      // the region's buffers
	next   int      // the region's buffers handed out so far, once each
	free   [][]byte // the region's buffers put back
}

// NewBuffers returns Buffers of size bytes, at most max() of them in the
// region (max is asked once, when the region is mapped).
func NewBuffers(size int, max func() int) *Buffers {
	return &Buffers{size: size, max: max}
}

// MiB is the process's Buffers of 1 MiB, up to four per CPU and eight:
// a CPU's share of the CSV reader's blocks, of a job's output lines and of
// the buffers of the tables written at once.
var MiB = NewBuffers(1<<20, func() int { return 4*runtime.GOMAXPROCS(0) + 8 })

// Size returns the size of the buffers.
func (p *Buffers) Size() int { return p.size }

// Get returns an empty buffer of capacity Size. Its bytes are not zeroed
// (they may hold an earlier use's): callers append to it.
func (p *Buffers) Get() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		return b
	}
	if !p.tried {
		p.tried = true
		n := p.max()
		size := (n*p.size + hugePage - 1) &^ (hugePage - 1)
		if buf, _, err := mapRegion(size); err == nil {
			p.region, p.count = buf, n // mapped for the process's life
		}
	}
	if p.next < p.count {
		b := p.region[p.next*p.size : p.next*p.size : (p.next+1)*p.size]
		p.next++
		return b
	}
	return make([]byte, 0, p.size)
}

// Put takes back a buffer Get returned (any slice of it), which the caller
// must not use afterwards, and reports whether it did: a buffer Get made
// in the Go heap, or any other slice, is not the region's and is left to
// the caller (or the collector).
func (p *Buffers) Put(b []byte) (kept bool) {
	if cap(b) == 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.index(b)
	if !ok {
		return false
	}
	buf := p.region[i*p.size : i*p.size : (i+1)*p.size]
	for _, f := range p.free {
		if unsafe.SliceData(f) == unsafe.SliceData(buf) {
			panic("BUG: hugemem: a buffer put back twice")
		}
	}
	p.free = append(p.free, buf)
	return true
}

// index returns which of the region's buffers b starts in.
func (p *Buffers) index(b []byte) (int, bool) {
	if len(p.region) == 0 {
		return 0, false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(p.region)))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if at < lo || at >= lo+uintptr(p.next*p.size) {
		return 0, false
	}
	return int(at-lo) / p.size, true
}
