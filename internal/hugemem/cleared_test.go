package hugemem

import (
	"runtime"
	"testing"
)

// TestCleared checks that Cleared gives n zero values, of small and large
// types, in memory the heap takes fresh and in memory it reuses after
// other slices of the same size were filled and dropped.
func TestCleared(t *testing.T) {
	type slot struct {
		p *int
		k [2]uint64
		n uint8
	}
	for _, n := range []int{0, 1, 7, 100, 4096, 1 << 16, 1<<20 + 3} {
		for round := range 3 {
			b := Cleared[byte](n)
			s := Cleared[slot](n)
			if len(b) != n || len(s) != n {
				t.Fatalf("n %d: lengths %d and %d", n, len(b), len(s))
			}
			for i := range b {
				if b[i] != 0 {
					t.Fatalf("n %d, round %d: byte %d is %#x", n, round, i, b[i])
				}
			}
			for i := range s {
				if s[i] != (slot{}) {
					t.Fatalf("n %d, round %d: slot %d is %+v", n, round, i, s[i])
				}
			}
			// Dirty them, drop them, and let the next round's come from
			// the same memory.
			for i := range b {
				b[i] = 0xff
			}
			x := 1
			for i := range s {
				s[i] = slot{p: &x, k: [2]uint64{^uint64(0), 1}, n: 9}
			}
			runtime.GC()
		}
	}
}
