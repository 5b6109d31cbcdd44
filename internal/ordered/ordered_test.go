package ordered

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

// TestDo checks that every piece is used once, in order, on any number
// of workers, with at most 2·workers made and not used.
func TestDo(t *testing.T) {
	for _, tc := range []struct{ workers, n int }{{1, 0}, {1, 5}, {2, 1}, {3, 50}, {8, 200}, {64, 10}} {
		t.Run(fmt.Sprintf("workers=%d/n=%d", tc.workers, tc.n), func(t *testing.T) {
			var pending, most atomic.Int64
			var got []int
			err := Do(tc.workers, tc.n, func(k int) (int, error) {
				p := pending.Add(1)
				for m := most.Load(); p > m && !most.CompareAndSwap(m, p); m = most.Load() {
				}
				time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
				return k * k, nil
			}, func(k, v int) error {
				pending.Add(-1)
				if v != k*k {
					t.Errorf("piece %d: got %d", k, v)
				}
				got = append(got, k)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.n {
				t.Fatalf("used %d pieces, want %d", len(got), tc.n)
			}
			for i, k := range got {
				if i != k {
					t.Fatalf("piece %d used as the %dth", k, i)
				}
			}
			if m := most.Load(); m > int64(2*tc.workers) {
				t.Errorf("%d pieces made and not used at once, want at most %d", m, 2*tc.workers)
			}
		})
	}
}

// TestDo_Error checks that an error of produce or of use stops the pieces
// after it and is returned.
func TestDo_Error(t *testing.T) {
	boom := errors.New("boom")
	for _, where := range []string{"make", "use"} {
		for _, workers := range []int{1, 4} {
			var made, used atomic.Int64
			err := Do(workers, 1000, func(k int) (int, error) {
				made.Add(1)
				if where == "make" && k == 10 {
					return 0, boom
				}
				return k, nil
			}, func(k, v int) error {
				used.Add(1)
				if where == "use" && k == 10 {
					return boom
				}
				return nil
			})
			if !errors.Is(err, boom) {
				t.Errorf("%s, %d workers: got %v, want %v", where, workers, err, boom)
			}
			if used.Load() > 11 || made.Load() > int64(11+2*workers) {
				t.Errorf("%s, %d workers: %d made and %d used after the error at 10", where, workers, made.Load(), used.Load())
			}
		}
	}
}
