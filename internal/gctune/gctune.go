// Package gctune keeps a cluster's garbage collector at a fixed headroom
// over its live heap, for the phases whose live heap is small and whose
// garbage is the feature code's: a user's Reduce makes maps, strings and
// slices for every user and drops them at the next. At the default GOGC
// of 100 the collector then runs after every few MiB of that garbage,
// and the heap it frees is handed back to the OS and faulted in afresh;
// with a fixed headroom the collections are as many per MiB of garbage
// whatever the data size, and the heap stays at live + headroom. A
// phase whose garbage is little and mce's own takes a smaller headroom
// (StartWith, SmallHeadroomBytes), and its heap stays nearer its live
// size.
//
// A GOGC the user set is always left as it is.
package gctune

import (
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// MaxHeadroomBytes is the most garbage a cluster lets pile up between
// collections.
const MaxHeadroomBytes = 64 << 20

// SmallHeadroomBytes is the headroom of a phase whose garbage is little
// and mce's own (StartWith): `mce reduce` with the built-in features. On
// the bench's 2 GB store it held the reduce's peak RSS to 122–130 MiB
// against 151–154, for at most 1% more CPU; with the Reduce-form f.go,
// whose Reduce makes maps for every user, the same headroom cost 8–11%
// more CPU in one sitting, 2% at 300 MB and 6% at 2 GB in another.
const SmallHeadroomBytes = 16 << 20

// retuneEvery is how often the heap goal follows the live heap.
const retuneEvery = 50 * time.Millisecond

// Headroom returns the headroom for this process: MaxHeadroomBytes, or
// an eighth of its memory limit (GOMEMLIMIT, the cluster's share of the
// RAM limit) when that is less, so that a cluster on a small share keeps
// the default collector's pace.
func Headroom() int64 {
	return headroomFor(debug.SetMemoryLimit(-1))
}

func headroomFor(limit int64) int64 {
	if limit <= 0 || limit == math.MaxInt64 {
		return MaxHeadroomBytes
	}
	return min(MaxHeadroomBytes, limit/8)
}

// percent returns the GOGC that puts the heap goal at live + headroom,
// between 100 (never less eager than the default) and 1000.
func percent(live, headroom int64) int {
	live = max(live, 1<<20)
	return int(min(max(headroom*100/live, 100), 1000))
}

// Start sets GOGC so that the heap goal is the live heap plus Headroom,
// again every retuneEvery as the live heap changes, until the returned
// function is called; that sets GOGC back to what it was. It does nothing
// when the user set GOGC.
func Start() (stop func()) { return startWith(Headroom()) }

// StartWith is Start with a headroom of at most max bytes.
func StartWith(max int64) (stop func()) { return startWith(min(max, Headroom())) }

func startWith(headroom int64) (stop func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := func() int {
		metrics.Read(sample)
		var live int64
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live = int64(sample[0].Value.Uint64())
		}
		return debug.SetGCPercent(percent(live, headroom))
	}
	old := set()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(retuneEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				set()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			debug.SetGCPercent(old)
		})
	}
}
