package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Reduce's memory at half the data.
//
// Issue 13 asks for `mce reduce`'s peak RSS to be flat from 1 to 2 GB:
// what reduce holds must not grow with the rows. The bench checks it on
// its own data: it generates the same data at half the size (the same
// seed, files, heavy share and encoding: every file, and its heavy users,
// half as big), partitions it, and runs `mce reduce` on the half store
// and on the whole one in turn, Runs times each, so that both are
// measured in the same minutes. The target is met when the whole data's
// median peak RSS is at most flatGrowth times the half's.

// flatGrowth is how much more the whole data's reduce may hold than the
// half's and still count as flat: about the spread of one system's peak
// RSS from run to run, sampled every 50 ms.
const flatGrowth = 1.10

// flatFromBytes is the least half the target is judged at: it is stated
// from 1 to 2 GB. Below it reduce's buffers still grow to their caps (the
// merge's read buffers share at most 32 MiB, which a 300 MB store's part
// files do not fill), so the figure is shown without a verdict.
const flatFromBytes = 0.9e9

// Flat is `mce reduce` on half the data and on the whole, measured in
// turn.
type Flat struct {
	HalfBytes, FullBytes int64 // raw input bytes
	Half, Full           *Result
	Reason               string // why it was not measured
}

// OK says whether both were measured.
func (f *Flat) OK() bool { return f != nil && f.Half.OK() && f.Full.OK() }

// Growth is the whole data's median peak RSS over the half's.
func (f *Flat) Growth() float64 {
	return float64(f.Full.PeakRSSBytes) / float64(f.Half.PeakRSSBytes)
}

// measureFlat measures reduce on half the data against the whole (the
// store of this bench's partition); red is this bench's reduce.
func (r *runner) measureFlat(ctx context.Context, red *Result) *Flat {
	f := &Flat{FullBytes: r.data.RawBytes}
	switch {
	case !r.data.Generated:
		f.Reason = "the data was given (--data), so there is no half of it to generate"
		return f
	case !red.OK():
		f.Reason = "mce reduce was not measured"
		return f
	}
	size, err := ParseBytes(r.cfg.Size)
	if err != nil {
		f.Reason = err.Error()
		return f
	}
	dir := filepath.Join(r.cfg.Work, "half")
	if !r.cfg.KeepData {
		defer os.RemoveAll(dir)
	}
	if err := r.halfStore(ctx, dir, size/2); err != nil {
		f.Reason = err.Error()
		return f
	}
	if f.HalfBytes, err = dirBytes(filepath.Join(dir, "data")); err != nil {
		f.Reason = err.Error()
		return f
	}
	cpus := r.cfg.CPUs
	f.Half = &Result{System: SysReduce, CPUs: cpus, What: "mce reduce, half the data"}
	f.Full = &Result{System: SysReduce, CPUs: cpus, What: "mce reduce, the whole data"}
	type side struct {
		res   *Result
		store string
	}
	sides := []side{{f.Half, filepath.Join(dir, "store")}, {f.Full, r.storeDir()}}
	out := filepath.Join(dir, "out")
	for i := range r.cfg.Runs {
		for _, s := range sides {
			mk := func(int) (Command, func() error, error) {
				return Command{Args: r.mceArgsOn(SysReduce, out, cpus, s.store)}, nil, os.RemoveAll(out)
			}
			if !r.measureOnce(ctx, s.res, i, r.cfg.Runs, []string{s.store}, mk) {
				return f
			}
		}
		sides[0], sides[1] = sides[1], sides[0] // the other one first next time
	}
	os.RemoveAll(out)
	f.Half.setMedians()
	f.Full.setMedians()
	return f
}

// halfStore generates the bench's data at size bytes into dir/data (or
// reuses it, kept from an earlier bench, as prepareData does) and
// partitions it into a fresh dir/store.
func (r *runner) halfStore(ctx context.Context, dir string, size int64) error {
	data, store := filepath.Join(dir, "data"), filepath.Join(dir, "store")
	if err := os.RemoveAll(store); err != nil {
		return err
	}
	if _, err := generate(ctx, r.cfg, r.mce, strconv.FormatInt(size, 10), data, filepath.Join(dir, "truth")); err != nil {
		return fmt.Errorf("half the data: %w", err)
	}
	if _, err := Measure(ctx, Command{Args: r.partitionArgs(store, r.cfg.CPUs, []string{data})}); err != nil {
		return fmt.Errorf("partition half the data: %w", err)
	}
	return nil
}
