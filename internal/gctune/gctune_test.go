package gctune

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live, headroom int64
		want           int
	}{
		{live: 0, headroom: 64 * mib, want: 1000},       // read as 1 MiB: capped
		{live: 16 * mib, headroom: 64 * mib, want: 400}, // goal 80 MiB
		{live: 32 * mib, headroom: 64 * mib, want: 200},
		{live: 64 * mib, headroom: 64 * mib, want: 100},
		{live: 512 * mib, headroom: 64 * mib, want: 100}, // never below the default
		{live: 4 * mib, headroom: 2 * mib, want: 100},
	} {
		if got := percent(tc.live, tc.headroom); got != tc.want {
			t.Errorf("percent(%d MiB, %d MiB) = %d, want %d", tc.live/mib, tc.headroom/mib, got, tc.want)
		}
	}
}

func TestHeadroomFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct{ limit, want int64 }{
		{math.MaxInt64, MaxHeadroomBytes}, // no GOMEMLIMIT
		{0, MaxHeadroomBytes},
		{16 << 30, MaxHeadroomBytes},
		{512 * mib, 64 * mib},
		{256 * mib, 32 * mib},
	} {
		if got := headroomFor(tc.limit); got != tc.want {
			t.Errorf("headroomFor(%d) = %d, want %d", tc.limit, got, tc.want)
		}
	}
}

// TestStart checks that GOGC is tuned only when the user set none, and
// set back to what it was after.
func TestStart(t *testing.T) {
	for _, tc := range []struct {
		env     string
		changed bool
	}{
		{env: "", changed: true},
		{env: "50", changed: false},
		{env: "off", changed: false},
	} {
		t.Run("GOGC="+tc.env, func(t *testing.T) {
			t.Setenv("GOGC", tc.env)
			const start = 77 // what the process had before
			defer debug.SetGCPercent(debug.SetGCPercent(start))
			// A headroom far over any test's live heap: the goal is capped at 1000.
			stop := startWith(1 << 40)
			during := debug.SetGCPercent(-1)
			debug.SetGCPercent(during)
			if tc.changed && during != 1000 {
				t.Errorf("during: GOGC %d, want 1000", during)
			}
			if !tc.changed && during != start {
				t.Errorf("during: GOGC %d, want the user's %d", during, start)
			}
			stop()
			stop() // a second call does nothing
			if got := debug.SetGCPercent(start); got != start {
				t.Errorf("after: GOGC %d, want %d back", got, start)
			}
		})
	}
}

// TestStartWith checks that StartWith's headroom caps Start's: with the
// same live heap, a smaller headroom sets a lower GOGC.
func TestStartWith(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	live := make([]byte, 8<<20) // a live heap of some 8 MiB, over percent's 1 MiB floor
	for i := range live {
		live[i] = byte(i)
	}
	runtime.GC() // the live heap as the next tuning reads it
	gogc := func(start func() func()) int {
		stop := start()
		defer stop()
		g := debug.SetGCPercent(-1)
		debug.SetGCPercent(g)
		return g
	}
	small := gogc(func() func() { return StartWith(SmallHeadroomBytes) })
	large := gogc(Start)
	runtime.KeepAlive(live)
	if small >= large {
		t.Errorf("GOGC %d with a headroom of %d MiB, %d with %d MiB: want the smaller headroom's lower",
			small, SmallHeadroomBytes>>20, large, Headroom()>>20)
	}
	if small > 300 {
		t.Errorf("GOGC %d with a headroom of %d MiB over about 8 MiB live: want at most 300", small, SmallHeadroomBytes>>20)
	}
}
