package inram

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/internal/gen"
	"github.com/mce-engine/mce/internal/hugemem"
	"github.com/mce-engine/mce/internal/procfs"
)

// BenchmarkJob is the map and reduce of one generated file (13% of its
// rows from one bank) inside one cluster: read once, parsed on `workers`
// goroutines, and either aggregated as the rows come (stream) or grouped
// and reduced user by user (group), with the built-in invoice features. It
// reports MB/s of raw CSV, rows/s, the reduce skew (slowest worker over
// the mean) and the reduce wall time over the ideal (total reduce CPU over
// the workers).
func BenchmarkJob(b *testing.B) {
	dir := b.TempDir()
	ctx := context.Background()
	sum, err := gen.Run(ctx, gen.Options{
		Dir: dir, Seed: 1, Files: 1, Size: gen.Size{Bytes: 64 << 20}, HeavyShare: 0.13,
		NoSync: true, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, sum.Files[0].Name)
	ws := slices.Compact([]int{1, 2, runtime.GOMAXPROCS(0)})
	for _, mode := range []string{"stream", "group"} {
		for _, workers := range ws {
			b.Run(fmt.Sprintf("%s/workers=%d", mode, workers), func(b *testing.B) {
				b.SetBytes(sum.Bytes)
				b.ReportAllocs()
				var skew, overIdeal, rows float64
				var mapTime, reduceTime time.Duration
				cpu0, _ := procfs.CPUTime()
				for i := 0; i < b.N; i++ {
					st, n, scan := mapReduceFile(b, path, workers, mode == "group")
					skew += st.Skew()
					overIdeal += st.OverIdeal()
					rows += float64(n)
					mapTime += scan + st.IndexTime
					reduceTime += st.ReduceTime + st.WriteTime
				}
				n := float64(b.N)
				// CPU time is what a loaded machine's other processes
				// disturb least: compare it beside the wall time.
				if cpu1, ok := procfs.CPUTime(); ok {
					b.ReportMetric((cpu1-cpu0).Seconds()/n, "cpu-s/op")
				}
				b.ReportMetric(skew/n, "skew")
				b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(mapTime.Seconds()/n, "map-s/op")
				b.ReportMetric(reduceTime.Seconds()/n, "reduce-s/op")
				b.ReportMetric(overIdeal/n, "reduce-over-ideal")
			})
		}
	}
}

var benchArena hugemem.Arena

func mapReduceFile(b *testing.B, path string, workers int, group bool) (Stats, int64, time.Duration) {
	spec := feature.Invoice()
	if err := spec.Validate(); err != nil {
		b.Fatal(err)
	}
	// Read as mce run reads: amounts and dates checked, only the columns
	// the features read carried.
	f, err := csvread.Open(path, csvread.Options{Schema: spec.Schema, CheckValues: true, Reads: spec.Reads})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	// As in a cluster: grouped rows in the huge-page arena, reused from
	// run to run.
	defer benchArena.Reset()
	j, err := New(Options{Spec: &spec, Workers: workers, Group: group, Arena: &benchArena, File: filepath.Base(path), Encoding: f.Encoding})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	rs, err := f.Scan(context.Background(), workers, func(bt *csvread.Batch) error { return j.Add(bt) })
	if err != nil {
		b.Fatal(err)
	}
	scan := time.Since(t0)
	w := bufio.NewWriterSize(io.Discard, 1<<20)
	st, err := j.Finish(context.Background(), w)
	if err != nil {
		b.Fatal(err)
	}
	return st, rs.Rows, scan
}

// BenchmarkIndex is a grouped partition's index alone: one million rows
// of 200k users (one of them 13% of the rows) found by key, counted and
// placed, as Finish does before the users are reduced.
func BenchmarkIndex(b *testing.B) {
	rows := invoiceRows(1_000_000, 200_000, 0.13, 1)
	spec := feature.Invoice()
	j, err := New(Options{Spec: &spec, Workers: 1, Group: true})
	if err != nil {
		b.Fatal(err)
	}
	gj := j.(*groupJob)
	for _, bt := range batches(rows, 4096, 1) {
		if err := gj.Add(bt); err != nil {
			b.Fatal(err)
		}
	}
	p := gj.parts[0]
	chunks := p.chunks
	b.ResetTimer()
	for b.Loop() {
		p.chunks, p.users = slices.Clone(chunks), nil
		p.index(gj.userAt, len(gj.cols))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rows)), "ns/row")
}
