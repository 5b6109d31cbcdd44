package hugemem

import (
	"bytes"
	"sync"
	"testing"
)

func TestArena(t *testing.T) {
	var a Arena
	defer a.Release()
	// Buffers do not overlap, even across regions and for one bigger than
	// a region.
	sizes := []int{10, 1 << 20, RegionBytes - 100, 3, RegionBytes + 5, 7}
	var bufs [][]byte
	for i, n := range sizes {
		b := a.Alloc(n)
		if len(b) != 0 || cap(b) != n {
			t.Fatalf("Alloc(%d): len %d cap %d", n, len(b), cap(b))
		}
		b = append(b, bytes.Repeat([]byte{byte(i + 1)}, n)...)
		bufs = append(bufs, b)
	}
	for i, b := range bufs {
		if bytes.Count(b, []byte{byte(i + 1)}) != sizes[i] {
			t.Fatalf("buffer %d was overwritten", i)
		}
	}
	mapped := a.MappedBytes()
	if mapped < int64(2*RegionBytes) {
		t.Fatalf("mapped %d bytes", mapped)
	}
	// Reset reuses the regions: the same allocations map nothing new.
	a.Reset()
	for _, n := range sizes {
		a.Alloc(n)
	}
	if got := a.MappedBytes(); got != mapped {
		t.Errorf("after Reset the same allocations mapped %d bytes, had %d", got, mapped)
	}
	// Trim keeps the first regions that hold keep bytes.
	a.Trim(RegionBytes + 1)
	if got := a.MappedBytes(); got != 2*RegionBytes {
		t.Errorf("after Trim(RegionBytes+1) %d bytes mapped, want two regions", got)
	}
	a.Trim(0)
	if got := a.MappedBytes(); got != 0 {
		t.Errorf("after Trim(0) %d bytes mapped", got)
	}
	a.Alloc(10)
	a.Release()
	if got := a.MappedBytes(); got != 0 {
		t.Errorf("after Release %d bytes mapped", got)
	}
	// Usable again after Release.
	b := append(a.Alloc(5), "hello"...)
	if string(b) != "hello" {
		t.Fatal(string(b))
	}
}

func TestArena_concurrent(t *testing.T) {
	var a Arena
	defer a.Release()
	var wg sync.WaitGroup
	out := make([][][]byte, 8)
	for g := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sizes := []int{1000, 0, 5000, 123}
			for i := 0; i < 200; i++ {
				bufs := make([][]byte, len(sizes))
				a.AllocEach(sizes, bufs)
				for j, b := range bufs {
					if sizes[j] == 0 {
						if b != nil {
							t.Error("AllocEach gave a buffer for size 0")
						}
						continue
					}
					out[g] = append(out[g], append(b, bytes.Repeat([]byte{byte(g)}, sizes[j])...))
				}
			}
		}()
	}
	wg.Wait()
	for g, bufs := range out {
		for _, b := range bufs {
			if bytes.Count(b, []byte{byte(g)}) != len(b) {
				t.Fatalf("goroutine %d's buffer was overwritten", g)
			}
		}
	}
}
