package filejob

import (
	"bufio"
	"context"
	"fmt"
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
	"github.com/mce-engine/mce/internal/keyruns"
	"github.com/mce-engine/mce/internal/procfs"
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
	rowBytes := rowsEstimate(in.Path, in.Size)
	sortMem := max(rowBytes+8<<20, 16<<20)
	if lim := memBudget(); lim > 0 && lim < 1<<50 {
		sortMem = min(sortMem, max(lim/diskSortShare, 16<<20))
		// NB: the sort buffers are mapped outside the Go heap, and so
		// are the executable's pages: GOMEMLIMIT sees neither, while
		// the RAM monitor's RSS counts both (the executable alone is
		// ~30 MiB, a third of a 96 MiB limit). The heap gets the rest.
		heap := lim - sortMem - procfs.FileRSS()
		prev := debug.SetMemoryLimit(max(heap, lim/3))
		defer debug.SetMemoryLimit(prev)
	}
	g, err := partition.NewGrouper(partition.GroupOptions{
		Dir: dir, Schema: spec.Schema, Encoding: f.Encoding, MemBytes: sortMem, CPUs: env.CPUs, Logger: env.Logger,
		InputBytes: rowBytes,
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
	red, err := reduceGroups(ctx, in, g, dir, &users, output.LinesFor(w))
	defer red.close()
	if err != nil {
		return nil, err
	}
	if err := red.write(ctx, w, spec); err != nil {
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

// lineSeg is where one hash shard's features lines are: a stretch of one
// worker's lines file, in key order.
type lineSeg struct {
	w          int
	start, end int64 // end 0: the shard has no key
}

// diskReduce is the reduce of ModeDisk. Every key's features line goes to
// its worker's lines file as a record (package keyruns), and each shard's
// records are one stretch of one file, a run in key order (a shard is
// reduced by one worker); write merges the runs by key into the table. So the lines are on disk, not in RAM,
// and a file of many users keeps ModeDisk's memory bounded.
type diskReduce struct {
	segs  []lineSeg // by shard
	files []*os.File
	bufs  []*bufio.Writer
	at    []int64 // bytes written to each worker's file
	busy  []time.Duration
}

// linesBuffer is the buffer of each worker's lines file while it is
// written; stretchBuffer that of each shard's stretch when the stretches
// are merged (up to partition.GroupShards of them at once: 4 MiB).
const (
	linesBuffer   = 64 << 10
	stretchBuffer = 16 << 10
)

// reduceGroups runs the feature function on every key of g, its lines
// going to files in dir; the caller closes the result.
func reduceGroups(ctx context.Context, in Input, g *partition.Grouper, dir string, users *atomic.Int64, lf output.LineFormat) (*diskReduce, error) {
	env := in.Env
	spec := env.Spec
	workers := max(env.CPUs, 1)
	red := &diskReduce{
		segs: make([]lineSeg, partition.GroupShards), busy: make([]time.Duration, workers),
		files: make([]*os.File, workers), bufs: make([]*bufio.Writer, workers), at: make([]int64, workers),
	}
	for w := range workers {
		f, err := os.CreateTemp(dir, "lines-*")
		if err != nil {
			return red, fmt.Errorf("features lines: %w", err)
		}
		red.files[w], red.bufs[w] = f, bufio.NewWriterSize(f, linesBuffer)
	}
	recs := make([]*feature.Record, workers)
	reducers := make([]*feature.Reducer, workers)
	lines := make([][]byte, workers)
	records := make([][]byte, workers)
	scratch := make([][]byte, workers)
	for i := range recs {
		recs[i] = spec.NewRecord()
		reducers[i] = spec.NewReducer()
	}
	base := filepath.Base(in.Path)
	err := g.Each(ctx, workers, func(w, shard int, key []byte, rows feature.Rows) error {
		t0 := time.Now()
		u := &feature.User{Key: key, File: base, Params: env.Params}
		if err := reducers[w].ReduceUser(u, rows, recs[w]); err != nil {
			return &inram.UserError{File: base, User: string(key), Err: err}
		}
		lines[w], scratch[w] = lf.AppendRecord(lines[w][:0], scratch[w], key, recs[w])
		// A shard's keys are all reduced by one worker (Each hands out
		// shard ranges), one after the other: its records are one
		// stretch of that worker's file.
		seg := &red.segs[shard]
		switch {
		case seg.end == 0:
			*seg = lineSeg{w: w, start: red.at[w]}
		case seg.w != w || seg.end != red.at[w]:
			return fmt.Errorf("BUG: features lines: shard %d's keys not one stretch", shard)
		}
		records[w] = keyruns.Append(records[w][:0], key, lines[w])
		if _, err := red.bufs[w].Write(records[w]); err != nil {
			return fmt.Errorf("features lines: %w", err)
		}
		red.at[w] += int64(len(records[w]))
		seg.end = red.at[w]
		users.Add(1)
		red.busy[w] += time.Since(t0)
		return nil
	})
	if err != nil {
		return red, err
	}
	for _, b := range red.bufs {
		if err := b.Flush(); err != nil {
			return red, fmt.Errorf("features lines: %w", err)
		}
	}
	return red, nil
}

// close closes and removes the lines files.
func (r *diskReduce) close() {
	for _, f := range r.files {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
}

// write writes the header and every shard's lines, merged by key, to w.
func (r *diskReduce) write(ctx context.Context, w io.Writer, spec *feature.Spec) error {
	if _, err := io.WriteString(w, output.Header(spec)); err != nil {
		return err
	}
	var runs []*keyruns.Reader
	for _, s := range r.segs {
		if s.end > 0 {
			runs = append(runs, keyruns.NewReader(r.files[s.w], "features lines", [][2]int64{{s.start, s.end - s.start}}, stretchBuffer))
		}
	}
	_, err := keyruns.Merge(ctx, func(_, line []byte) error {
		_, err := w.Write(line)
		return err
	}, runs, func(int64) {})
	return err
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
