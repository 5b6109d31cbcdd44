package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/mce-engine/mce/partition"
)

// powerCut is an errorfs injector on a crashable MemFS that cuts the
// power at chosen operations: at each, it takes a crash clone of the
// filesystem (what a machine that lost its power at that moment would
// find on its disk) and notes which files the store's MANIFEST.json lists
// at that moment. It fails nothing.
type powerCut struct {
	mem  *vfs.MemFS
	st   string
	at   []int64 // operation numbers, increasing
	rng  *rand.Rand
	seen atomic.Int64

	mu   sync.Mutex
	cuts []cut
}

// cut is the state a power cut left.
type cut struct {
	op       int64
	fs       *vfs.MemFS
	unsynced int      // percent of unsynced writes the clone kept
	listed   []string // the files MANIFEST.json listed when the power went
}

func (p *powerCut) String() string { return "power cut" }

func (p *powerCut) MaybeError(op errorfs.Op) error {
	if op.Kind.ReadOrWrite() != errorfs.OpIsWrite {
		return nil
	}
	n := p.seen.Add(1) - 1
	if !slices.Contains(p.at, n) {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// NB: the injector runs before the operation, outside the MemFS's
	// locks: CrashClone waits for the operations under way to end.
	c := cut{op: n, listed: manifestFiles(p.mem, p.st)}
	// Every other cut keeps half of the writes that were not synced, in a
	// random order (a disk cache that wrote some of them back): what was
	// synced must be there either way.
	cfg := vfs.CrashCloneCfg{}
	if len(p.cuts)%2 == 1 {
		cfg = vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(p.rng.Uint64(), uint64(n)))}
		c.unsynced = 50
	}
	c.fs = p.mem.CrashClone(cfg)
	p.cuts = append(p.cuts, c)
	return nil
}

// manifestFiles returns the names of the files the store's MANIFEST.json
// on fs lists, none when it cannot be read.
func manifestFiles(fs vfs.FS, st string) []string {
	f, err := fs.Open(st + "/MANIFEST.json")
	if err != nil {
		return nil
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil
	}
	var m struct {
		Files []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"files"`
	}
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	var out []string
	for _, f := range m.Files {
		if f.State == "" {
			out = append(out, f.Name)
		}
	}
	sort.Strings(out)
	return out
}

// writeOps counts the write operations of a clean partition of x (a new
// store, or the second run on a store of the first files) on a MemFS.
func (x *ioData) writeOps(t *testing.T, second bool) int64 {
	t.Helper()
	mem := vfs.NewCrashableMem()
	const st = "/store"
	if second {
		if _, err := partition.Run(context.Background(), x.opts(st, false, mem, quiet())); err != nil {
			t.Fatal(err)
		}
	}
	pc := &powerCut{mem: mem, st: st}
	if _, err := partition.Run(context.Background(), x.opts(st, true, errorfs.Wrap(mem, pc), quiet())); err != nil {
		t.Fatal(err)
	}
	return pc.seen.Load()
}

// TestPowerCut_partition cuts the power at seeded moments of a partition
// (a new store, and two files added to a store of two with a user moved
// to the heavy range) on pebble's crashable in-memory filesystem, which
// keeps only what was synced (or, on every other cut, half of the rest):
// every file that MANIFEST.json listed when the power went (all of them
// for a cut right after partition returned) must be in the store after
// it, exactly; every file the store records must be exact; others absent.
// Then partition on what the cut left must finish the store exactly.
func TestPowerCut_partition(t *testing.T) {
	row := record(t, "power cut at seeded moments (pebble's crashable in-memory FS: only synced writes survive, or half the others), then a rerun", "partition")
	x := newIOData(t, 54)
	const st = "/store"
	rng := killRand(54)
	var notes []string
	for _, second := range []bool{false, true} {
		total := x.writeOps(t, second)
		mem := vfs.NewCrashableMem()
		if second {
			if _, err := partition.Run(context.Background(), x.opts(st, false, mem, quiet())); err != nil {
				t.Fatal(err)
			}
		}
		pc := &powerCut{mem: mem, st: st, at: ioPoints(rng, total, points()), rng: rng}
		if _, err := partition.Run(context.Background(), x.opts(st, true, errorfs.Wrap(mem, pc), quiet())); err != nil {
			t.Fatal(err)
		}
		// The run itself: its store must be whole, and the power cut right
		// after it said it was done must find all of it.
		if _, l, du := checkStoreFS(t, mem, st, x.dataset, x.names()); l+du > 0 {
			t.Fatal("the partition that was cut differs from the truth")
		}
		pc.cuts = append(pc.cuts, cut{op: total, fs: mem.CrashClone(vfs.CrashCloneCfg{}), listed: x.names()})
		kept := map[int]int{}
		for _, c := range pc.cuts {
			what := fmt.Sprintf("cut at write %d of %d (%d%% of unsynced writes kept)", c.op, total, c.unsynced)
			if c.op == total {
				what = "cut right after partition returned"
			}
			want := c.listed
			if second {
				want = union(want, x.first) // the first run's files were synced long before
			}
			recorded, lost, dup := checkStoreFS(t, c.fs, st, x.dataset, want)
			kept[len(recorded)]++
			if _, err := partition.Run(context.Background(), x.opts(st, true, c.fs, quiet())); err != nil {
				t.Errorf("%s: rerun: %v", what, err)
				row.add(x.rows(), 0)
				continue
			}
			_, l, du := checkStoreFS(t, c.fs, st, x.dataset, x.names())
			row.add(lost+l, dup+du)
			t.Logf("%s: MANIFEST.json listed %d files, the store then recorded %d; rerun exact", what, len(c.listed), len(recorded))
		}
		stage := "new store"
		if second {
			stage = "adding 2 files to 2"
		}
		var counts []string
		for n := 0; n <= len(x.names()); n++ {
			if kept[n] > 0 {
				counts = append(counts, fmt.Sprintf("%d files %d times", n, kept[n]))
			}
		}
		notes = append(notes, fmt.Sprintf("%s: %d cuts (the last right after partition returned), store then held %s", stage, len(pc.cuts), strings.Join(counts, ", ")))
	}
	row.notef("%s; every listed file there and exact, reruns exact", strings.Join(notes, "; "))
}

// union returns the sorted union of a and b.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
