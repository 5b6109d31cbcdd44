package filejob

import (
	"math"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/mce-engine/mce/internal/csvread"
)

func TestPlan(t *testing.T) {
	tasks, err := PlanInputs([]csvread.Input{
		{Path: "/a/jan.csv", Size: 10},
		{Path: "/b/jan.csv.gz", Size: 30},
		{Path: "/c/feb.tsv", Size: 20},
		{Path: "/d/jan.csv", Size: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, tk := range tasks {
		if tk.ID != i || tk.Kind != Kind {
			t.Errorf("task %d: %+v", i, tk)
		}
		got = append(got, tk.Input+" "+tk.Output)
	}
	want := []string{
		"/b/jan.csv.gz jan.csv.features.csv",
		"/c/feb.tsv feb.tsv.features.csv",
		"/a/jan.csv jan.csv-2.features.csv",
		"/d/jan.csv jan.csv-3.features.csv",
	}
	if !slices.Equal(got, want) {
		t.Errorf("tasks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestChooseMode(t *testing.T) {
	const gib = 1 << 30
	f := func(c modeChoice, want string) {
		t.Helper()
		if got, why := chooseMode(c); got != want || why == "" {
			t.Errorf("chooseMode(%+v) = %s (%s), want %s", c, got, why, want)
		}
	}
	// A mergeable set takes the one pass whatever the size: its RAM is the users'.
	f(modeChoice{mode: ModeAuto, mergeable: true, input: "/d/jan.csv", size: 1 * gib, memLimit: 8 * gib}, ModeStream)
	f(modeChoice{mode: ModeAuto, mergeable: true, input: "/d/jan.csv.gz", size: 1 * gib, memLimit: 8 * gib}, ModeStream)
	f(modeChoice{mode: ModeAuto, mergeable: true, input: "/d/jan.csv", size: 40 * gib, memLimit: math.MaxInt64}, ModeStream)
	f(modeChoice{mode: ModeAuto, mergeable: true, input: "/d/jan.csv", size: 40 * gib, memLimit: 8 * gib, perByte: 1.5}, ModeStream)
	// Any other set is grouped when its rows fit, else it goes through disk.
	f(modeChoice{mode: ModeAuto, mergeable: false, input: "/d/jan.csv", size: 1 * gib, memLimit: 8 * gib}, ModeGroup)
	f(modeChoice{mode: ModeAuto, mergeable: false, input: "/d/jan.csv", size: 4 * gib, memLimit: 8 * gib}, ModeDisk)    // 5 GiB of rows > half of 8
	f(modeChoice{mode: ModeAuto, mergeable: false, input: "/d/jan.csv.gz", size: 1 * gib, memLimit: 8 * gib}, ModeDisk) // ~10 GiB once decompressed
	f(modeChoice{mode: ModeAuto, mergeable: false, input: "/d/jan.csv.zst", size: 100 << 20, memLimit: 8 * gib}, ModeGroup)
	f(modeChoice{mode: ModeAuto, mergeable: false, input: "/d/jan.csv", size: 40 * gib, memLimit: 8 * gib}, ModeDisk)
	f(modeChoice{mode: ModeAuto, mergeable: false, input: "/d/jan.csv", size: 40 * gib, memLimit: math.MaxInt64}, ModeGroup) // no limit
	f(modeChoice{mode: ModeGroup, mergeable: true, input: "/d/jan.csv", size: 40 * gib, memLimit: 8 * gib}, ModeGroup)
	f(modeChoice{mode: ModeStream, mergeable: true, input: "/d/jan.csv", size: 1, memLimit: 8 * gib}, ModeStream)
	f(modeChoice{mode: ModeStream, mergeable: false, input: "/d/jan.csv", size: 1, memLimit: 8 * gib}, ModeGroup)
	f(modeChoice{mode: ModeDisk, mergeable: true, input: "/d/jan.csv", size: 1, memLimit: 8 * gib}, ModeDisk)
	// A retry after a RAM kill takes the low-memory path whatever --mode.
	f(modeChoice{mode: ModeGroup, mergeable: true, input: "/d/jan.csv", size: 1, memLimit: 8 * gib, lowMemory: true}, ModeDisk)
	f(modeChoice{mode: ModeAuto, mergeable: false, input: "/d/jan.csv", size: 1, memLimit: 8 * gib, lowMemory: true}, ModeDisk)
	// Measured: 1.5 bytes of RAM per byte; 5 GiB fits 80% of 8 GiB, 6 does not.
	f(modeChoice{mode: ModeAuto, mergeable: false, input: "/d/jan.csv", size: 4 * gib, memLimit: 8 * gib, perByte: 1.5}, ModeGroup)
	f(modeChoice{mode: ModeAuto, mergeable: false, input: "/d/jan.csv", size: 5 * gib, memLimit: 8 * gib, perByte: 1.5}, ModeDisk)
}

// TestStreamGC checks that the one pass's GOGC is set only when the user
// set none, and set back after.
func TestStreamGC(t *testing.T) {
	for _, tc := range []struct {
		env        string
		want, back int
	}{
		{env: "", want: streamGCPercent, back: 100},
		{env: "50", want: 50, back: 50},
		{env: "off", want: 50, back: 50},
	} {
		t.Run("GOGC="+tc.env, func(t *testing.T) {
			t.Setenv("GOGC", tc.env)
			start := 100
			if tc.env != "" {
				start = 50 // the runtime read the user's GOGC at start
			}
			defer debug.SetGCPercent(debug.SetGCPercent(start))
			restore := streamGC()
			if got := debug.SetGCPercent(tc.want); got != tc.want {
				t.Errorf("during the file: GOGC %d, want %d", got, tc.want)
			}
			restore()
			if got := debug.SetGCPercent(start); got != tc.back {
				t.Errorf("after the file: GOGC %d, want %d", got, tc.back)
			}
		})
	}
}

// TestOutgrowGuard feeds the guard a sequence of (collections, live heap,
// users) as a one pass would see them and checks its projections: the
// live heap alone until two collections with users apart are known, then
// the cost of a user between them times the users made since the last.
func TestOutgrowGuard(t *testing.T) {
	const mib = 1 << 20
	type step struct {
		cycles      uint64
		live, users int64
		want        int64
		over        bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"one collection: live as found, nothing projected", []step{
			{1, 30 * mib, 1000, 30 * mib, false},
			{1, 30 * mib, 5000, 30 * mib, false}, // the buffers are not a cost per user
		}},
		{"fixed memory cancels out", []step{
			{1, 30 * mib, 1000, 30 * mib, false},  // buffers + 1000 users
			{2, 40 * mib, 11000, 40 * mib, false}, // 1 MiB per 1000 users
			{2, 40 * mib, 31000, 60 * mib, false}, // 20000 users made since
			{2, 40 * mib, 61000, 90 * mib, false},
			{2, 40 * mib, 73000, 102 * mib, true},           // over 100 MiB
			{3, 95 * mib, 73000, 95 * mib, false},           // collected: as found
			{3, 95 * mib, 74000, 95*mib + 55*mib/62, false}, // the last two collections' cost
		}},
		{"a collection with no new user keeps the earlier one to compare", []step{
			{1, 10 * mib, 1000, 10 * mib, false},
			{2, 20 * mib, 2000, 20 * mib, false},
			{3, 19 * mib, 2000, 19 * mib, false}, // garbage collected, no new user
			{3, 19 * mib, 3000, 28 * mib, false}, // 9 MiB per 1000 users since cycle 1
		}},
		{"over by the live heap alone", []step{
			{1, 101 * mib, 10, 101 * mib, true},
		}},
		{"a shrinking heap projects no growth", []step{
			{1, 50 * mib, 1000, 50 * mib, false},
			{2, 40 * mib, 2000, 40 * mib, false},
			{2, 40 * mib, 9000, 40 * mib, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &outgrowGuard{limit: 100 * mib} // no collection seen yet
			for i, s := range tc.steps {
				got, over := g.observe(s.cycles, s.live, s.users)
				if got != s.want || over != s.over {
					t.Errorf("step %d: %d users: projected %d (over %v), want %d (%v)", i, s.users, got, over, s.want, s.over)
				}
			}
		})
	}
}

// TestOutgrowGuard_check reads the runtime's own figures: a collection
// before the guard was made is not counted; a heap kept live through one
// after is seen, and is over a bound below it.
func TestOutgrowGuard_check(t *testing.T) {
	keep := make([]byte, 64<<20)
	for i := range keep {
		keep[i] = byte(i)
	}
	runtime.GC() // a collection of before the guard, not its figures
	g := newOutgrowGuard(32 << 20)
	if got, over := g.check(1); over {
		t.Errorf("no collection since the guard was made: projected %d MiB, over", got>>20)
	}
	runtime.GC()
	got, over := g.check(1)
	runtime.KeepAlive(keep)
	if got < 64<<20 || !over {
		t.Errorf("projected %d MiB (over %v), want at least 64 MiB, over", got>>20, over)
	}
}
