package hugemem

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"unsafe"
)

func TestBuffers(t *testing.T) {
	const size = 4096
	p := NewBuffers(size, func() int { return 3 })
	var got [][]byte
	for range 5 {
		b := p.Get()
		if len(b) != 0 || cap(b) != size {
			t.Fatalf("Get: len %d cap %d, want 0 and %d", len(b), cap(b), size)
		}
		got = append(got, b)
	}
	// The region holds three; the other two come from the heap.
	for i, b := range got {
		if want := i < 3; owns(p, b) != want {
			t.Errorf("buffer %d: Owns %v, want %v", i, !want, want)
		}
	}
	// They do not overlap.
	for i := range got {
		got[i] = append(got[i], bytes.Repeat([]byte{byte(i + 1)}, size)...)
	}
	for i, b := range got {
		if bytes.Count(b, []byte{byte(i + 1)}) != size {
			t.Fatalf("buffer %d was overwritten", i)
		}
	}

	// A slice of a buffer, from anywhere in it, puts the whole back; a
	// heap one is left to the collector.
	p.Put(got[1][100:200])
	p.Put(got[4])
	p.Put(nil)
	if n := len(p.free); n != 1 {
		t.Fatalf("%d buffers free, want 1", n)
	}
	b := p.Get()
	if unsafe.SliceData(b) != unsafe.SliceData(got[1]) || len(b) != 0 || cap(b) != size {
		t.Errorf("Get after Put: not buffer 1 whole (len %d cap %d)", len(b), cap(b))
	}
	// All three are out again: the next comes from the heap.
	if h := p.Get(); owns(p, h) {
		t.Errorf("a fourth buffer from a region of three")
	}
}

func TestBuffers_putTwice(t *testing.T) {
	p := NewBuffers(64, func() int { return 2 })
	b := p.Get()
	p.Put(b)
	defer func() {
		if recover() == nil {
			t.Error("a buffer put back twice: no panic")
		}
	}()
	p.Put(b[8:])
}

// TestBuffers_concurrent has goroutines take, fill, check and give back
// buffers: no two ever hold the same one (run it with -race).
func TestBuffers_concurrent(t *testing.T) {
	p := NewBuffers(256, func() int { return 4 })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				b := p.Get()
				mark := byte(g*31 + i)
				b = append(b, bytes.Repeat([]byte{mark}, cap(b))...)
				runtime.Gosched()
				if bytes.Count(b, []byte{mark}) != len(b) {
					t.Errorf("goroutine %d: a buffer it held was written by another", g)
					return
				}
				p.Put(b)
			}
		}()
	}
	wg.Wait()
	if len(p.free) > 4 {
		t.Errorf("%d buffers free, the region has 4", len(p.free))
	}
}

// owns reports whether b is (a slice of) one of p's region's buffers.
func owns(p *Buffers, b []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.index(b)
	return cap(b) > 0 && ok
}
