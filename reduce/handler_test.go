package reduce_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/internal/fileid"
	"github.com/mce-engine/mce/internal/gen"
	"github.com/mce-engine/mce/partition"
	"github.com/mce-engine/mce/reduce"
	"github.com/mce-engine/mce/store"
)

// countSpec is a feature set that is not mergeable: rows and amount in
// cents per user.
func countSpec() feature.Spec {
	amount := feature.InvoiceSchema.Index(feature.ColAmount)
	return feature.Spec{
		Name:    "count",
		Columns: []feature.Column{{Name: "invoice_count", Type: feature.TypeInt}, {Name: "cents", Type: feature.TypeInt}},
		Reduce: func(u *feature.User, rows feature.Rows, out *feature.Record) error {
			var n, c int64
			for rows.Next() {
				if v, err := feature.ParseDecimal(rows.Row().Fields[amount], 2); err == nil {
					c += v
				}
				n++
			}
			out.SetIntAt(0, n)
			out.SetIntAt(1, c)
			return nil
		},
	}
}

// genStore generates invoice files (g's Dir, NoSync and Logger are set
// here) and partitions them, read with read, into a store of shards
// shards, 1 KiB blocks and heavy users from 100 rows; it returns the data
// folder, the store and the generator's summary.
func genStore(t *testing.T, g gen.Options, shards int, read csvread.Options) (data, st string, s *gen.Summary) {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	data = filepath.Join(t.TempDir(), "data")
	g.Dir, g.NoSync, g.Logger = data, true, quiet
	s, err := gen.Run(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	st = filepath.Join(t.TempDir(), "store")
	if _, err := partition.Run(ctx, partition.Options{Inputs: []string{data}, Store: st, CPUs: 2,
		MemBytes: partition.MinMemBytes, HeavyMinRows: 100, Shards: shards, BlockBytes: 1 << 10, Logger: quiet,
		Read: read}); err != nil {
		t.Fatal(err)
	}
	return data, st, s
}

// TestHandlers_inProcess runs a planned job's tasks through the handlers
// in this process, in phase order, on 4 workers (so that -race sees the
// shard workers, the heavy chunks and their in-order merge), and checks
// every features file against the generator's truth, for a mergeable and
// a non-mergeable feature set, per file and across files.
func TestHandlers_inProcess(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	data, st, s := genStore(t, gen.Options{Seed: 5, Files: 3, Size: gen.Size{Rows: 20000}}, 8, csvread.Options{})
	truth, err := gen.ReadTruth(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name          string
		spec          feature.Spec
		count, amount string
		cents, across bool
	}{
		{"invoice", feature.Invoice(), "invoice_count", "amount_total", false, false},
		{"invoice-across", feature.Invoice(), "invoice_count", "amount_total", false, true},
		{"count", countSpec(), "invoice_count", "cents", true, false},
		{"count-across", countSpec(), "invoice_count", "cents", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := c.spec
			if err := spec.Validate(); err != nil {
				t.Fatal(err)
			}
			db, err := store.Open(st, &store.Options{ReadOnly: true, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			tasks, err := reduce.Plan(ctx, db, &spec, nil, c.across, engine.Options{Clusters: []int{4}, Logger: quiet}, reduce.Outputs{})
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			sort.SliceStable(tasks, func(i, j int) bool {
				if tasks[i].Phase != tasks[j].Phase {
					return tasks[i].Phase < tasks[j].Phase
				}
				return tasks[i].Size > tasks[j].Size
			})
			dir := t.TempDir()
			hs := reduce.Handlers()
			split := 0
			for i := range tasks {
				tk := &tasks[i]
				env := &engine.TaskEnv{Spec: &spec, RunDir: dir, CPUs: 4, Progress: &engine.Progress{}, Logger: quiet}
				res, err := hs[tk.Kind].Run(ctx, env, tk)
				if err != nil {
					t.Fatalf("task %s %s: %v", tk.Kind, tk.Input, err)
				}
				split += res.SplitUsers
			}
			if spec.Mergeable() && split == 0 {
				t.Error("no heavy user was split")
			}
			if c.across {
				checkTally(t, c.name, readAcross(t, filepath.Join(dir, reduce.AcrossFilesOutput), c.count, c.amount, c.cents), truthAcross(truth))
				return
			}
			for _, f := range s.Files {
				checkTally(t, c.name+" "+f.Name, readAcross(t, filepath.Join(dir, fileid.FeaturesName(f.Name)), c.count, c.amount, c.cents), truthAcross(truth, f.Name))
			}
		})
	}
}

// TestHandlers_localLines: the read tasks write the lines of files of
// local times without their "Z" and say so in their part files, and the
// merges give the same features files whether every part file says so,
// none does (part files of an older mce, left for --resume) or some do.
func TestHandlers_localLines(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	_, st, s := genStore(t, gen.Options{Seed: 9, Files: 2, Size: gen.Size{Rows: 5000}}, 32, csvread.Options{CheckValues: true})
	spec := feature.Invoice()
	db, err := store.Open(st, &store.Options{ReadOnly: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := reduce.Plan(ctx, db, &spec, nil, false, engine.Options{Clusters: []int{2, 2}, Logger: quiet}, reduce.Outputs{})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var reads int
	for _, tk := range tasks {
		if tk.Kind == reduce.KindRead {
			reads++
		}
	}
	if reads < 2 {
		t.Fatalf("%d read tasks, want 2 or more", reads)
	}
	// run runs the tasks with the read tasks' local lines dropped where
	// zoned says, and returns the features files.
	run := func(zoned func(read int) bool) map[string][]byte {
		dir := t.TempDir()
		hs := reduce.Handlers()
		read := 0
		for _, tk := range tasks {
			if tk.Kind == reduce.KindRead {
				var args map[string]any
				if err := json.Unmarshal(tk.Args, &args); err != nil {
					t.Fatal(err)
				}
				if args["local_lines"] == nil {
					t.Fatalf("read task %s: no local lines; the generated times have no zone", tk.Name)
				}
				if zoned(read) {
					delete(args, "local_lines")
					tk.Args, _ = json.Marshal(args)
				}
				read++
			}
			env := &engine.TaskEnv{Spec: &spec, RunDir: dir, CPUs: 2, Progress: &engine.Progress{}, Logger: quiet}
			if _, err := hs[tk.Kind].Run(ctx, env, &tk); err != nil {
				t.Fatalf("task %s %s: %v", tk.Kind, tk.Name, err)
			}
		}
		out := map[string][]byte{}
		for _, f := range s.Files {
			b, err := os.ReadFile(filepath.Join(dir, fileid.FeaturesName(f.Name)))
			if err != nil {
				t.Fatal(err)
			}
			if zonedTime.Match(b) || !localTime.Match(b) {
				t.Fatalf("%s: times with a zone, or none:\n%.300s", f.Name, b)
			}
			out[f.Name] = b
		}
		return out
	}
	want := run(func(int) bool { return false })
	for name, zoned := range map[string]func(int) bool{
		"no part file with local lines": func(int) bool { return true },
		"the first part file without":   func(i int) bool { return i == 0 },
	} {
		got := run(zoned)
		for f, b := range want {
			if !bytes.Equal(got[f], b) {
				t.Errorf("%s: %s differs", name, f)
			}
		}
	}
}

var (
	zonedTime = regexp.MustCompile(`T\d\d:\d\d:\d\d(\.\d+)?Z`)
	localTime = regexp.MustCompile(`T\d\d:\d\d:\d\d(\.\d+)?,`)
)

// TestLastLine words the outcome in output files, not tasks.
func TestLastLine(t *testing.T) {
	f := func(s *engine.Summary, want string) {
		t.Helper()
		if got := reduce.LastLine(s); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	task := func(out string, st engine.TaskStatus) engine.TaskSummary {
		return engine.TaskSummary{Output: out, Status: st}
	}
	part := filepath.Join(reduce.PartsDir, "shards-00000-00127.part")
	f(&engine.Summary{Tasks: []engine.TaskSummary{task(part, engine.TaskDone), task("a.features.csv", engine.TaskDone), task("b.features.csv", engine.TaskSkipped)}}, "all 2 files ok")
	f(&engine.Summary{Tasks: []engine.TaskSummary{task(part, engine.TaskDone), task("a.features.csv", engine.TaskFailed), task("b.features.csv", engine.TaskDone)}}, "1 of 2 files failed")
	f(&engine.Summary{Tasks: []engine.TaskSummary{task(part, engine.TaskFailed), task("a.features.csv", engine.TaskFailed)}}, "1 of 1 files failed (1 store read tasks failed)")
	f(&engine.Summary{Interrupted: true, Tasks: []engine.TaskSummary{task(part, engine.TaskDone), task("a.features.csv", engine.TaskPending)}}, "interrupted: 0 of 1 files done, 0 failed")
}

// TestHandlers_parsedTimes: the rows a feature set sees from a store
// carry the seconds of their packed times in Row.Parsed, and those are
// what the text reads as; the built-in features then read them there. A
// feature set whose schema orders the store's columns otherwise (a
// subset, the time first) finds them at its own column. With
// Spec.TimesRead, the packed times have no text, and Row.Time reads the
// same times from their seconds.
func TestHandlers_parsedTimes(t *testing.T) {
	_, st, s := genStore(t, gen.Options{Seed: 7, Files: 2, Size: gen.Size{Rows: 5000}}, 4, csvread.Options{})
	for _, schema := range []*feature.Schema{
		feature.InvoiceSchema,
		feature.MustSchema([]string{feature.ColIssuedAt, feature.ColIssuer, feature.ColAmount}, feature.ColIssuer),
	} {
		issued := schema.Index(feature.ColIssuedAt)
		var timeSums [2]int64 // of Row.Time's Unix seconds, without and with TimesRead
		for k, timesRead := range []bool{false, true} {
			var rowsSeen, parsed, timeSum atomic.Int64
			spec := feature.Spec{
				Name:      "parsed",
				Schema:    schema,
				Columns:   []feature.Column{{Name: "invoice_count", Type: feature.TypeInt}},
				TimesRead: timesRead,
				Reduce: func(u *feature.User, rows feature.Rows, out *feature.Record) error {
					var n int64
					for rows.Next() {
						r := rows.Row()
						n++
						rowsSeen.Add(1)
						if len(r.Fields) != schema.Len() {
							return fmt.Errorf("%d fields, the schema has %d", len(r.Fields), schema.Len())
						}
						tm, err := r.Time(issued)
						if err != nil {
							return err
						}
						timeSum.Add(tm.Unix())
						for j := range 64 {
							if r.Parsed.Times>>j&1 == 0 {
								continue
							}
							if j != issued {
								return fmt.Errorf("column %d parsed as a time", j)
							}
							parsed.Add(1)
							if timesRead {
								if r.Fields[j] != nil {
									return fmt.Errorf("TimesRead, yet the packed time has its text %q", r.Fields[j])
								}
							} else if sec, ok := feature.LocalSeconds(r.Fields[j]); !ok || sec != r.Parsed.Values[j] {
								return fmt.Errorf("%q parsed as %d; it reads as %d, %v", r.Fields[j], r.Parsed.Values[j], sec, ok)
							}
						}
					}
					out.SetIntAt(0, n)
					return nil
				},
			}
			if err := runPlanned(t, st, &spec); err != nil {
				t.Fatalf("%v, TimesRead %v: %v", schema.Columns(), timesRead, err)
			}
			if rowsSeen.Load() != s.Rows || parsed.Load() != s.Rows {
				t.Fatalf("%v, TimesRead %v: %d rows seen, %d with a parsed time; the files have %d", schema.Columns(), timesRead, rowsSeen.Load(), parsed.Load(), s.Rows)
			}
			timeSums[k] = timeSum.Load()
		}
		if timeSums[0] != timeSums[1] {
			t.Errorf("%v: the times sum to %d, and to %d with TimesRead", schema.Columns(), timeSums[0], timeSums[1])
		}
	}
}

// TestHandlers_parsedAmounts: the workers hand the amounts a store keeps
// packed (format 4) to the rows' Parsed, and Row.Decimal reads them as it
// reads their text; with Spec.DecimalsRead the text is left out (nil), and
// the amounts sum the same.
func TestHandlers_parsedAmounts(t *testing.T) {
	_, st, s := genStore(t, gen.Options{Seed: 8, Files: 2, Size: gen.Size{Rows: 5000}}, 4, csvread.Options{})
	schema := feature.InvoiceSchema
	amount := schema.Index(feature.ColAmount)
	var sums [2]int64
	for k, decimalsRead := range [][]string{nil, {feature.ColAmount}} {
		var rowsSeen, parsed, sum atomic.Int64
		spec := feature.Spec{
			Name:         "parsed",
			Schema:       schema,
			Columns:      []feature.Column{{Name: "invoice_count", Type: feature.TypeInt}},
			DecimalsRead: decimalsRead,
			Reduce: func(u *feature.User, rows feature.Rows, out *feature.Record) error {
				var n int64
				for rows.Next() {
					r := rows.Row()
					n++
					rowsSeen.Add(1)
					v, err := r.Decimal(amount, feature.AmountDigits)
					if err != nil {
						return err
					}
					sum.Add(v)
					for j := range 64 {
						if r.Parsed.Decimals>>j&1 == 0 {
							continue
						}
						if j != amount {
							return fmt.Errorf("column %d parsed as a decimal: %q", j, r.Fields[j])
						}
						parsed.Add(1)
						if decimalsRead != nil {
							if r.Fields[j] != nil {
								return fmt.Errorf("DecimalsRead, yet the packed amount has its text %q", r.Fields[j])
							}
						} else if w, err := feature.ParseDecimal(r.Fields[j], feature.AmountDigits); err != nil || w != v {
							return fmt.Errorf("%q read as %d from Parsed; it reads as %d, %v", r.Fields[j], v, w, err)
						}
					}
				}
				out.SetIntAt(0, n)
				return nil
			},
		}
		if err := runPlanned(t, st, &spec); err != nil {
			t.Fatalf("DecimalsRead %v: %v", decimalsRead, err)
		}
		if rowsSeen.Load() != s.Rows || parsed.Load() != s.Rows {
			t.Fatalf("DecimalsRead %v: %d rows seen, %d with a parsed amount; the files have %d", decimalsRead, rowsSeen.Load(), parsed.Load(), s.Rows)
		}
		sums[k] = sum.Load()
	}
	if sums[0] != sums[1] {
		t.Errorf("the amounts sum to %d, and to %d with DecimalsRead", sums[0], sums[1])
	}
}

// TestHandlers_mapLine: a Map that fails on a row names the row's line
// in its input file: the workers decode the rows' lines when the feature
// set has a Map (without one they leave them out, store.IterOptions.NoLines).
func TestHandlers_mapLine(t *testing.T) {
	data, st, _ := genStore(t, gen.Options{Seed: 9, Files: 1, Size: gen.Size{Rows: 3000}}, 4, csvread.Options{})
	files, err := filepath.Glob(filepath.Join(data, "invoices_*.csv"))
	if err != nil || len(files) != 1 {
		t.Fatalf("data files %v, %v", files, err)
	}
	// The invoice of line 1500 (line 1 is the header), and its id.
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	const wantLine = 1500
	lines := bytes.Split(raw, []byte("\n"))
	id := string(bytes.SplitN(lines[wantLine-1], []byte(","), 2)[0])
	idCol := feature.InvoiceSchema.Index(feature.ColInvoiceID)
	spec := countSpec()
	spec.Map = func(row *feature.Row, _ feature.Params) ([]byte, bool) {
		if string(row.Fields[idCol]) == id {
			panic("map refuses this invoice")
		}
		return nil, true
	}
	failed := runPlanned(t, st, &spec)
	var te *engine.TaskError
	if !errors.As(failed, &te) {
		t.Fatalf("the tasks gave %v, want a TaskError", failed)
	}
	if te.Line != wantLine || !strings.Contains(te.Message, "map refuses this invoice") {
		t.Errorf("the failure names line %d (%s), want line %d", te.Line, te.Message, wantLine)
	}
}

// runPlanned validates spec, plans its reduce job on the store st for one
// cluster of 2 CPUs, and runs the tasks through the handlers in this
// process, in phase order, in a run folder of its own. It returns the
// first task's error, naming the task.
func runPlanned(t *testing.T, st string, spec *feature.Spec) error {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(st, &store.Options{ReadOnly: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := reduce.Plan(ctx, db, spec, nil, false, engine.Options{Clusters: []int{2}, Logger: quiet}, reduce.Outputs{})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	sort.SliceStable(tasks, func(i, j int) bool { return tasks[i].Phase < tasks[j].Phase })
	dir := t.TempDir()
	hs := reduce.Handlers()
	for i := range tasks {
		tk := &tasks[i]
		env := &engine.TaskEnv{Spec: spec, RunDir: dir, CPUs: 2, Progress: &engine.Progress{}, Logger: quiet}
		if _, err := hs[tk.Kind].Run(ctx, env, tk); err != nil {
			return fmt.Errorf("task %s %s: %w", tk.Kind, tk.Input, err)
		}
	}
	return nil
}
