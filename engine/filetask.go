package engine

import (
	"bufio"
	"context"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mce-engine/mce/engine/inram"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/internal/hugemem"
)

// FeaturesSuffix ends the name of every features file.
const FeaturesSuffix = ".features.csv"

// OutputName returns the features file's name for an input path: its base
// name without .gz/.zst, then ".features.csv".
func OutputName(input string) string {
	b := filepath.Base(input)
	for _, ext := range []string{".gz", ".zst", ".zstd"} {
		b = strings.TrimSuffix(b, ext)
	}
	return b + FeaturesSuffix
}

// FileTasks plans one KindFile task per input, largest first (ties by
// path), with output names made unique: a second "jan.csv" from another
// folder writes "jan.csv-2.features.csv".
func FileTasks(inputs []csvread.Input) ([]Task, error) {
	in := append([]csvread.Input(nil), inputs...)
	sort.SliceStable(in, func(i, j int) bool {
		if in[i].Size != in[j].Size {
			return in[i].Size > in[j].Size
		}
		return in[i].Path < in[j].Path
	})
	used := make(map[string]bool, len(in))
	tasks := make([]Task, 0, len(in))
	for i, x := range in {
		abs, err := filepath.Abs(x.Path)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", x.Path, err)
		}
		name := OutputName(abs)
		for n := 2; used[name]; n++ {
			name = strings.TrimSuffix(OutputName(abs), FeaturesSuffix) + "-" + strconv.Itoa(n) + FeaturesSuffix
		}
		used[name] = true
		tasks = append(tasks, Task{ID: i, Kind: KindFile, Input: abs, Size: x.Size, Output: name})
	}
	return tasks, nil
}

// chooseMode decides how a file is reduced: ModeGroup or ModeStream. A
// non-mergeable feature set is always grouped. In ModeAuto a file is grouped
// when its rows (about its size, ten times that when compressed) fit in
// half of memLimit, the cluster's share of the RAM limit (its GOMEMLIMIT),
// and streamed otherwise, so that a file bigger than RAM still goes through.
func chooseMode(mode string, mergeable bool, input string, size, memLimit int64) string {
	switch {
	case !mergeable || mode == ModeGroup:
		return ModeGroup
	case mode == ModeStream:
		return ModeStream
	}
	need := rowsEstimate(input, size)
	if memLimit <= 0 || need <= memLimit/2 {
		return ModeGroup
	}
	return ModeStream
}

// rowsEstimate is about the RAM a grouped file takes: its rows, their
// index and the reader's buffers (ten times that for a compressed file,
// whose raw size is unknown).
func rowsEstimate(input string, size int64) int64 {
	need := size + size/4
	if OutputName(input) != filepath.Base(input)+FeaturesSuffix {
		need *= 10
	}
	return need
}

// rowArena holds the rows of the file a cluster is grouping: one task runs
// at a time in a cluster process.
var rowArena hugemem.Arena

// runFile is the KindFile handler: the whole map and reduce of one raw
// file inside one cluster. The file is read once, parsed on env.CPUs
// goroutines, grouped in RAM by the user's owning worker and reduced with
// work stealing (package inram).
func runFile(ctx context.Context, env *TaskEnv, t *Task) (*Result, error) {
	p := env.Progress
	p.Phase.Store("open")
	ropts := env.Reader
	ropts.Schema = env.Spec.Schema
	f, err := csvread.Open(t.Input, ropts)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The rows live in the cluster's arena until the output is written;
	// its regions stay mapped for the next file unless the cluster gives
	// its memory back between files.
	defer func() {
		if env.FreeBetweenTasks {
			rowArena.Release()
		} else {
			rowArena.Reset()
		}
	}()
	mode := chooseMode(env.Mode, env.Spec.Mergeable(), t.Input, t.Size, debug.SetMemoryLimit(-1))
	// Keep about what this file's rows need of the last file's arena.
	if mode == ModeGroup {
		rowArena.Trim(rowsEstimate(t.Input, t.Size))
	} else {
		rowArena.Trim(0)
	}
	job, err := inram.New(inram.Options{
		Spec: env.Spec, Params: env.Params, Workers: env.CPUs,
		File: filepath.Base(t.Input), Encoding: f.Encoding, Arena: &rowArena, Group: mode == ModeGroup,
	})
	if err != nil {
		return nil, err
	}

	// Copy the reader's and the job's counters into Progress until done.
	stop := make(chan struct{})
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			p.Bytes.Store(f.BytesRead())
			p.DiskBytes.Store(f.DiskBytesRead())
			p.UsersTotal.Store(job.UsersTotal())
			p.UsersDone.Store(job.UsersDone())
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); <-pumped }()

	p.Phase.Store("map")
	t0 := time.Now()
	stats, err := f.Scan(ctx, env.CPUs, func(b *csvread.Batch) error { return job.Add(b) })
	if err != nil {
		return nil, err
	}
	scan := time.Since(t0)
	env.Logger.Debug("file read", "file", t.Input, "rows", stats.Rows, "bad_rows", stats.BadRows, "seconds", scan.Seconds())

	p.Phase.Store("reduce")
	out, err := CreateOutput(env.OutputPath(t))
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	bw := bufio.NewWriterSize(out, 1<<20)
	js, err := job.Finish(ctx, bw)
	if err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("write %s: %w", out.Name(), err)
	}
	if err := out.Commit(); err != nil {
		return nil, err
	}
	mx, mean := js.BusyMaxMean()
	res := &Result{
		Mode:              mode,
		Bytes:             stats.Bytes,
		Rows:              stats.Rows,
		BadRows:           stats.BadRows,
		DroppedRows:       js.Dropped,
		Users:             js.Users,
		SplitUsers:        js.SplitUsers,
		MapSeconds:        (scan + js.IndexTime).Seconds(),
		ReduceSeconds:     (js.ReduceTime + js.WriteTime).Seconds(),
		WorkerMaxSeconds:  mx.Seconds(),
		WorkerMeanSeconds: mean.Seconds(),
	}
	for _, s := range stats.Samples {
		res.BadRowSamples = append(res.BadRowSamples, s.Error()+": "+s.Text)
	}
	return res, nil
}
