package filejob

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/inram"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/partition"
)

// diskSortShare is the part of the cluster's memory limit ModeDisk gives
// its sort buffers; the rest is the reader's batches, one user's rows per
// worker and the features lines.
const diskSortShare = 4

// runDisk is ModeDisk: the file's rows are keyed as the in-RAM jobs key
// them (inram.Keys: the Map step, UTF-8 keys), grouped by key through
// sorted runs on disk (partition.Grouper), and every key's rows, in file
// order, go through the feature function on the cluster's workers. Each
// hash shard's keys come out in byte order; the shards' lines are merged
// into one sorted table by output.WriteSorted, so the output is the same
// as grouping in RAM gives.
func runDisk(ctx context.Context, in Input, f *csvread.File, w io.Writer) (*engine.Result, error) {
	env := in.Env
	spec := env.Spec
	base := filepath.Base(in.Path)
	dir := in.ScratchDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "mce-spill-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = filepath.Join(tmp, "spill")
	}
	// Buffers as big as the rows need (no bigger: their index is Go
	// memory the collector zeroes), within a third of the cluster's limit.
	sortMem := max(rowsEstimate(in.Path, in.Size)+8<<20, 16<<20)
	if lim := memBudget(); lim > 0 && lim < 1<<50 {
		sortMem = min(sortMem, max(lim/diskSortShare, 16<<20))
		// NB: the sort buffers are mapped outside the Go heap, which
		// GOMEMLIMIT does not see: the heap gets the rest of the limit.
		prev := debug.SetMemoryLimit(max(lim-sortMem, lim/2))
		defer debug.SetMemoryLimit(prev)
	}
	g, err := partition.NewGrouper(partition.GroupOptions{
		Dir: dir, Schema: spec.Schema, Encoding: f.Encoding, MemBytes: sortMem, CPUs: env.CPUs, Logger: env.Logger,
	})
	if err != nil {
		return nil, err
	}
	defer g.Close()
	p := env.Progress
	var users atomic.Int64
	defer pumpProgress(p, f, func() (int64, int64) { return users.Load(), 0 })()

	p.Phase.Store("map")
	t0 := time.Now()
	var dropped atomic.Int64
	stats, err := f.Scan(ctx, env.CPUs, func(b *csvread.Batch) error {
		var row feature.Row
		rows := make([]partition.Row, 0, b.Len())
		var keys []byte
		err := inram.Keys(spec, env.Params, base, b, &row, func(i int, key []byte, keep bool) {
			if !keep {
				dropped.Add(1)
				return
			}
			b.Row(i, &row)
			at := len(keys)
			keys = append(keys, key...)
			rows = append(rows, partition.Row{Key: keys[at:len(keys):len(keys)], Line: b.Line(i), Fields: slices.Clone(row.Fields)})
		})
		if err != nil {
			return err
		}
		return g.Add(ctx, rows)
	})
	if err != nil {
		return nil, err
	}
	scan := time.Since(t0)
	tellTimes(w, in.Path, stats, env.Logger)

	p.Phase.Store("reduce")
	t1 := time.Now()
	red, err := reduceGroups(ctx, in, g, &users)
	if err != nil {
		return nil, err
	}
	if err := red.write(w, spec); err != nil {
		return nil, err
	}
	mx, mean := red.busyMaxMean()
	env.Logger.Debug("file through disk", "file", in.Path, "runs", g.Runs(), "users", users.Load())
	res := &engine.Result{
		Mode:              ModeDisk,
		Bytes:             stats.Bytes,
		Rows:              stats.Rows,
		BadRows:           stats.BadRows,
		BadValues:         stats.BadValues,
		BadValuesEmptied:  stats.EmptiedValues,
		DroppedRows:       dropped.Load(),
		Users:             users.Load(),
		MapSeconds:        scan.Seconds(),
		ReduceSeconds:     time.Since(t1).Seconds(),
		WorkerMaxSeconds:  mx.Seconds(),
		WorkerMeanSeconds: mean.Seconds(),
	}
	for _, s := range stats.Samples {
		res.BadRowSamples = append(res.BadRowSamples, s.Error()+": "+s.Text)
	}
	return res, nil
}

// diskLines holds the features lines of the keys of one hash shard, in
// key order.
type diskLines struct {
	keys  []string
	lines [][]byte
}

// diskReduce is the reduce of ModeDisk: the lines by shard and each
// worker's busy time.
type diskReduce struct {
	shards []diskLines
	busy   []time.Duration
}

// reduceGroups runs the feature function on every key of g.
func reduceGroups(ctx context.Context, in Input, g *partition.Grouper, users *atomic.Int64) (*diskReduce, error) {
	env := in.Env
	spec := env.Spec
	workers := max(env.CPUs, 1)
	red := &diskReduce{shards: make([]diskLines, partition.GroupShards), busy: make([]time.Duration, workers)}
	recs := make([]*feature.Record, workers)
	scratch := make([][]byte, workers)
	for i := range recs {
		recs[i] = spec.NewRecord()
	}
	base := filepath.Base(in.Path)
	err := g.Each(ctx, workers, func(w, shard int, key []byte, rows feature.Rows) error {
		t0 := time.Now()
		u := &feature.User{Key: key, File: base, Params: env.Params}
		if err := spec.ReduceUser(u, rows, recs[w]); err != nil {
			return &inram.UserError{File: base, User: string(key), Err: err}
		}
		var line []byte
		line, scratch[w] = output.AppendRecord(nil, scratch[w], key, recs[w])
		// A shard's keys are all reduced by one worker (Each hands out
		// shard ranges), so its lines need no lock.
		sh := &red.shards[shard]
		sh.keys = append(sh.keys, string(key))
		sh.lines = append(sh.lines, line)
		users.Add(1)
		red.busy[w] += time.Since(t0)
		return nil
	})
	return red, err
}

// write merges the shards' sorted lines into one table.
func (r *diskReduce) write(w io.Writer, spec *feature.Spec) error {
	return output.WriteSorted(w, spec, len(r.busy), len(r.shards),
		func(p int) int { return len(r.shards[p].keys) },
		func(p, i int) string { return r.shards[p].keys[i] },
		func(p, i int) []byte { return r.shards[p].lines[i] })
}

// busyMaxMean returns the busiest worker's time and the mean.
func (r *diskReduce) busyMaxMean() (maxBusy, mean time.Duration) {
	var sum time.Duration
	for _, b := range r.busy {
		maxBusy = max(maxBusy, b)
		sum += b
	}
	return maxBusy, sum / time.Duration(max(len(r.busy), 1))
}
