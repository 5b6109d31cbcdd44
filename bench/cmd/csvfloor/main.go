// Command csvfloor is the benchmark's second floor: it reads files with
// mce's own CSV reader (internal/csvread: quotes, delimiter and encoding
// sniffing, column mapping, decompression) and hands every batch to a
// callback that only counts rows. The difference from the plain floor
// (split on '\n' and ',') is the reader's own cost; the difference from
// `mce run` is grouping and the features.
//
//	csvfloor --threads N FILE...
//
// It reads the files one after another, each with N parser goroutines, and
// prints one JSON line: {"bytes":…,"rows":…,"bad_rows":…}.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"

	"github.com/mce-engine/mce/internal/csvread"
)

func main() {
	threads := flag.Int("threads", 1, "parser goroutines per file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *threads, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "csvfloor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, threads int, paths []string) error {
	var out struct {
		Bytes   int64 `json:"bytes"`
		Rows    int64 `json:"rows"`
		BadRows int64 `json:"bad_rows"`
	}
	for _, p := range paths {
		f, err := csvread.Open(p, csvread.Options{MaxBadRowShare: -1})
		if err != nil {
			return err
		}
		var rows atomic.Int64
		st, err := f.Scan(ctx, threads, func(b *csvread.Batch) error {
			rows.Add(int64(b.Len()))
			return nil
		})
		f.Close()
		if err != nil {
			return err
		}
		out.Bytes += st.Bytes
		out.Rows += rows.Load()
		out.BadRows += st.BadRows
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
