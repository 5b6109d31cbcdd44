package partition

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// TestArenaLess checks that the entries' numeric sort key orders records
// exactly as (shard, user bytes, file, line) do, for users shorter and
// longer than what an entry holds, with zero bytes, and lines too big for
// the entry.
func TestArenaLess(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{0, 1, 'A', 'B', 0xc3, 0xd1, 0xff}
	type rec struct {
		shard int
		user  []byte
		file  uint32
		line  int64
	}
	var recs []rec
	for range 3000 {
		u := make([]byte, rng.IntN(20))
		for i := range u {
			u[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if rng.IntN(4) == 0 && len(recs) > 0 { // many rows of one user
			u = recs[rng.IntN(len(recs))].user
		}
		line := int64(rng.IntN(1000))
		if rng.IntN(20) == 0 {
			line = 1<<40 + int64(rng.IntN(3))
		}
		recs = append(recs, rec{shard: rng.IntN(3), user: u, file: uint32(rng.IntN(3)), line: line})
	}
	var sl slab
	for _, r := range recs {
		sl.add(r.shard, r.file, r.line, r.user, nil, [][]byte{[]byte("x")})
	}
	a := &arena{buf: sl.buf, entries: sl.entries}
	want := func(x, y rec) int {
		if c := cmp.Compare(x.shard, y.shard); c != 0 {
			return c
		}
		if c := bytes.Compare(x.user, y.user); c != 0 {
			return c
		}
		if c := cmp.Compare(x.file, y.file); c != 0 {
			return c
		}
		return cmp.Compare(x.line, y.line)
	}
	for range 20000 {
		i, j := rng.IntN(len(recs)), rng.IntN(len(recs))
		got, w := a.less(a.entries[i], a.entries[j]), want(recs[i], recs[j])
		if got != w {
			t.Fatalf("less(%s, %s) = %d, want %d", show(recs[i].shard, recs[i].user, recs[i].line),
				show(recs[j].shard, recs[j].user, recs[j].line), got, w)
		}
		gw := cmp.Compare(recs[i].shard, recs[j].shard)
		if gw == 0 {
			gw = bytes.Compare(recs[i].user, recs[j].user)
		}
		if g := groupCmp(a, a.entries[i], a.entries[j]); g != gw {
			t.Fatalf("groupCmp(%q, %q) = %d, want %d", recs[i].user, recs[j].user, g, gw)
		}
	}
	es := slices.Clone(a.entries)
	slices.SortFunc(es, a.less)
	if !slices.IsSortedFunc(es, a.less) {
		t.Fatal("not sorted")
	}
	// The radix sort gives the same order, from any starting order.
	for trial := range 5 {
		rs := slices.Clone(a.entries)
		rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		if trial == 0 {
			rs = rs[:100] // below the radix sort's cut-off
		}
		par := slices.Clone(rs)
		sortEntries(a, rs, make([]entry, len(rs)))
		want := slices.Clone(rs)
		slices.SortFunc(want, a.less)
		for i := range rs {
			if a.less(rs[i], want[i]) != 0 {
				t.Fatalf("trial %d: sortEntries differs from a.less at %d of %d", trial, i, len(rs))
			}
		}
		// On several goroutines, cut by shard: the same order.
		for _, cpus := range []int{2, 3, 7} {
			got := sortEntriesParallel(a, slices.Clone(par), make([]entry, len(par)), 3, cpus)
			if len(got) != len(want) {
				t.Fatalf("trial %d, %d cpus: %d entries, want %d", trial, cpus, len(got), len(want))
			}
			for i := range got {
				if a.less(got[i], want[i]) != 0 {
					t.Fatalf("trial %d, %d cpus: sortEntriesParallel differs from a.less at %d of %d", trial, cpus, i, len(got))
				}
			}
		}
	}
}

// spillEntries makes an arena of n entries as partition fills one: RFC-like
// users over 256 shards, one user with 13% of the rows, from two readers
// of one file whose batches of 1024 rows arrive interleaved.
func spillEntries(n int) (*arena, int) {
	rng := rand.New(rand.NewPCG(3, 4))
	var sl slab
	users := make([][]byte, 60_000)
	for i := range users {
		users[i] = fmt.Appendf(nil, "%c%c%c%06d%c%c%c", 'A'+rng.IntN(26), 'A'+rng.IntN(26), 'A'+rng.IntN(26), rng.IntN(1_000_000), 'A'+rng.IntN(26), 'A'+rng.IntN(26), '0'+rng.IntN(10))
	}
	for i := range n {
		u := users[rng.IntN(len(users))]
		if rng.IntN(100) < 13 {
			u = users[0]
		}
		line := int64(i/2048*1024 + i%1024) // first reader: lines 0-1023, 2048-...
		if i/1024%2 == 1 {
			line += int64(n) // second reader: the file's second half
		}
		sl.add(int(u[3])%256, 1, line, u, nil, [][]byte{[]byte("x")})
	}
	return &arena{buf: sl.buf, entries: sl.entries}, n
}

// BenchmarkSortEntries sorts one spill's entries as partition makes them:
// RFC-like users over 256 shards, one user with 13% of the rows, filled by
// two readers in batches.
func BenchmarkSortEntries(b *testing.B) {
	a, rows := spillEntries(400_000)
	es, tmp := make([]entry, rows), make([]entry, rows)
	for _, alg := range []string{"radix", "radix-parallel", "pdq"} {
		b.Run(alg, func(b *testing.B) {
			b.SetBytes(int64(rows) * entryBytes)
			for b.Loop() {
				copy(es, a.entries)
				switch alg {
				case "radix":
					sortEntries(a, es, tmp)
				case "radix-parallel":
					sortEntriesParallel(a, es, tmp, 256, runtime.GOMAXPROCS(0))
				default:
					slices.SortFunc(es, a.less)
				}
			}
		})
	}
}

func show(shard int, user []byte, line int64) string {
	return fmt.Sprintf("(%d %q %d)", shard, user, line)
}

// TestShardCuts checks that a spill's pieces cover its entries in order,
// each piece non-empty, and never cut a shard.
func TestShardCuts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shards []int // entries per shard 0, 1, …
		n      int
	}{
		{"one shard", []int{1000}, 8},
		{"even", []int{10, 10, 10, 10, 10, 10, 10, 10}, 4},
		{"more pieces than shards", []int{3, 5, 2}, 16},
		{"a heavy shard", []int{1, 2, 900, 3, 4, 5, 6}, 8},
		{"one piece", []int{4, 4}, 1},
		{"empty shards", []int{0, 7, 0, 0, 9, 0}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var es []entry
			for sh, n := range tc.shards {
				for range n {
					es = append(es, entry{pfx: uint64(sh) << 48})
				}
			}
			cuts := shardCuts(es, tc.n)
			if cuts[0] != 0 || cuts[len(cuts)-1] != len(es) {
				t.Fatalf("cuts %v do not run from 0 to %d", cuts, len(es))
			}
			if len(cuts)-1 > tc.n {
				t.Errorf("%d pieces, want at most %d", len(cuts)-1, tc.n)
			}
			for k := 1; k < len(cuts); k++ {
				if cuts[k] <= cuts[k-1] {
					t.Fatalf("cuts %v: piece %d is empty", cuts, k-1)
				}
				if c := cuts[k]; c < len(es) && es[c].pfx>>48 == es[c-1].pfx>>48 {
					t.Errorf("cuts %v: shard %d cut at %d", cuts, es[c].pfx>>48, c)
				}
			}
			if tc.name == "even" && len(cuts)-1 != tc.n {
				t.Errorf("%d pieces of 8 even shards, want %d", len(cuts)-1, tc.n)
			}
		})
	}
}

// TestPlanMemory_fill: a sort buffer is spilled once fillCapBytes of it
// are filled when the input spills anyway, more when the final merge
// could not read the runs that would make at once, and whole when the
// input fits one buffer or its size is not known.
func TestPlanMemory_fill(t *testing.T) {
	for _, c := range []struct {
		mem, raw    int64
		cpus, files int
		arena, fill int64 // MiB
	}{
		{256 << 20, 300e6, 2, 6, 98, 64},   // the bench's partition
		{1 << 30, 2e9, 2, 6, 482, 64},      // a big budget: the same fill
		{256 << 20, 40e6, 2, 6, 98, 98},    // fits one buffer: never spilled
		{256 << 20, 0, 2, 6, 98, 98},       // size not known
		{64 << 20, 300e6, 2, 6, 14, 14},    // a buffer under the cap
		{256 << 20, 2e9, 16, 16, 84, 64},   // 60 runs × 16 CPUs, 1024 readers
		{256 << 20, 2.3e9, 16, 16, 84, 72}, // 69 runs would be too many: 61
		{256 << 20, 10e9, 16, 16, 84, 84},  // too many at any fill: whole
	} {
		p := planMemory(c.mem, c.raw, c.cpus, c.files)
		if p.arenaBytes>>20 != c.arena || p.fillBytes>>20 != c.fill {
			t.Errorf("planMemory(%d MiB, %d, %d CPUs, %d files): buffers of %d MiB filled to %d MiB, want %d and %d",
				c.mem>>20, c.raw, c.cpus, c.files, p.arenaBytes>>20, p.fillBytes>>20, c.arena, c.fill)
		}
		if p.fillBytes < p.arenaBytes && estimatedRuns(c.raw, p.fillBytes)*int64(c.cpus) > int64(mergeReaders(c.mem)) {
			t.Errorf("planMemory(%d MiB, %d, %d CPUs): filled to %d MiB, %d runs on %d CPUs for %d readers",
				c.mem>>20, c.raw, c.cpus, p.fillBytes>>20, estimatedRuns(c.raw, p.fillBytes), c.cpus, mergeReaders(c.mem))
		}
	}
}

// TestArena_fits: an arena takes records up to its fill limits, and an
// empty one a record up to its capacity.
func TestArena_fits(t *testing.T) {
	a := newArena(1000, 10, 100, 4)
	defer a.mem.Release()
	for _, c := range []struct {
		used, entries int // in the arena already
		n, k          int // what is added
		want          bool
	}{
		{0, 0, 100, 1, true},
		{0, 0, 1000, 1, true}, // empty: up to the capacity
		{0, 0, 1001, 1, false},
		{0, 0, 10, 10, true},
		{0, 0, 10, 11, false},
		{50, 1, 50, 1, true},
		{50, 1, 51, 1, false}, // past the fill limit of the buffer
		{10, 3, 10, 1, true},
		{10, 3, 10, 2, false}, // past the fill limit of the entries
	} {
		a.buf, a.entries = a.buf[:c.used], a.entries[:c.entries]
		if got := a.fits(c.n, c.k); got != c.want {
			t.Errorf("%d bytes in %d records, add %d in %d: fits = %v, want %v", c.used, c.entries, c.n, c.k, got, c.want)
		}
	}
}

// TestSpillFill: mce run's disk path (Grouper) fills its buffers as
// partition does: whole when the rows fit one or their size is not known,
// to fillCapBytes when they spill anyway, more when the runs would be
// more than the merge's readers.
func TestSpillFill(t *testing.T) {
	for _, c := range []struct {
		arena, mem, raw int64
		cpus            int
		want            int64 // MiB
	}{
		{150 << 20, 300 << 20, 375e6, 2, 64}, // a 300 MB file through disk, rows+8 MiB of buffers
		{29 << 20, 58 << 20, 62e6, 2, 29},    // a buffer under the cap
		{150 << 20, 300 << 20, 0, 2, 150},    // size not known
		{150 << 20, 300 << 20, 60e6, 2, 150}, // fits one buffer
		{64 << 20, 128 << 20, 20e9, 16, 64},  // too many runs at any fill: whole
		{256 << 20, 512 << 20, 5e9, 16, 80},  // 16 CPUs, 2048 readers: 150 runs at 64 MiB, 120 at 80
	} {
		got := spillFill(c.arena, c.mem, c.raw, c.cpus)
		if got>>20 != c.want {
			t.Errorf("spillFill(%d MiB, %d MiB, %d, %d CPUs) = %d MiB, want %d", c.arena>>20, c.mem>>20, c.raw, c.cpus, got>>20, c.want)
		}
	}
}
