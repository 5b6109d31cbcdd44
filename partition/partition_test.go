package partition

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/internal/e2etest"
	"github.com/mce-engine/mce/internal/gen"
	"github.com/mce-engine/mce/store"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// generate writes a dataset into a fresh directory.
func generate(t testing.TB, o gen.Options) string {
	t.Helper()
	if o.Dir == "" {
		o.Dir = filepath.Join(t.TempDir(), "raw")
	}
	o.Logger = quiet()
	o.NoSync = true
	if _, err := gen.Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	// The truth files sit beside the data; move them out of the input
	// directory into truthDir(o.Dir).
	if err := os.MkdirAll(truthDir(o.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{gen.TruthFile, gen.TruthFilesFile} {
		if err := os.Rename(filepath.Join(o.Dir, n), filepath.Join(truthDir(o.Dir), n)); err != nil {
			t.Fatal(err)
		}
	}
	return o.Dir
}

func truthDir(raw string) string { return raw + ".truth" }

// smallOpts partitions with a tiny memory budget, so that the sort spills
// many runs even on small data.
func smallOpts(raw, st string) Options {
	return Options{
		Inputs: []string{raw}, Store: st, CPUs: 2, MemBytes: MinMemBytes,
		HeavyMinRows: 100, Logger: quiet(), Shards: 16, BlockBytes: 8 << 10,
		Read: csvread.Options{MaxBadRowShare: 0.05},
	}
}

type fu struct{ file, user string }

type tally struct {
	rows, cents int64
}

// checkStore proves the store holds exactly the truth: every (file, user)
// with its rows and amount total, each row once, and each user's rows in
// file order, lines increasing within a file.
func checkStore(t *testing.T, storeDir string, truth []gen.Truth) {
	t.Helper()
	db, err := store.Open(storeDir, &store.Options{ReadOnly: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := tallyStore(t, db)
	want := map[fu]tally{}
	for _, tr := range truth {
		want[fu{tr.File, tr.User}] = tally{tr.Rows, tr.AmountCents}
	}
	bad := 0
	for k, w := range want {
		if g := got[k]; g != w && bad < 10 {
			bad++
			t.Errorf("%s %q: store has %d rows, %d cents; truth %d rows, %d cents", k.file, k.user, g.rows, g.cents, w.rows, w.cents)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && bad < 10 {
			bad++
			t.Errorf("%s %q: %d rows in the store, none in the truth", k.file, k.user, g.rows)
		}
	}
	rep, err := db.Verify(context.Background(), store.VerifyOptions{Decode: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Errorf("verify: %s", strings.Join(rep.Problems, "\n"))
	}
}

// tallyStore reads every row of the store and tallies its rows and
// amount by (file, user), checking that each user's rows come in file
// order and carry the user.
func tallyStore(t *testing.T, db *store.DB) map[fu]tally {
	t.Helper()
	names := map[store.FileID]string{}
	for _, f := range db.Files() {
		names[f.ID] = f.Name
	}
	amount := slices.Index(db.Config().Schema, feature.ColAmount)
	user := db.Config().UserIndex()
	got := map[fu]tally{}
	err := e2etest.EachUser(context.Background(), db, func() map[fu]tally { return map[fu]tally{} },
		func(local map[fu]tally, u *store.UserIter) error {
			rows := u.Rows()
			lastFile, lastLine := store.FileID(0), int64(-1)
			for rows.Next() {
				f := rows.File()
				if f < lastFile || (f == lastFile && rows.Line() <= lastLine) {
					return fmt.Errorf("user %q: file %d line %d after file %d line %d", u.User(), f, rows.Line(), lastFile, lastLine)
				}
				lastFile, lastLine = f, rows.Line()
				if feature.DecodeText(rows.Field(user), feature.EncodingAuto) != string(u.User()) {
					return fmt.Errorf("user %q has a row of %q", u.User(), rows.Field(user))
				}
				c, err := gen.ParseCents(string(rows.Field(amount)))
				if err != nil {
					return err
				}
				k := fu{names[f], string(u.User())}
				x := local[k]
				x.rows++
				x.cents += c
				local[k] = x
			}
			return rows.Err()
		},
		func(local map[fu]tally) error {
			for k, v := range local {
				if _, dup := got[k]; dup {
					return fmt.Errorf("%v read from two spans", k)
				}
				got[k] = v
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func readTruth(t testing.TB, dir string) []gen.Truth {
	t.Helper()
	tr, err := gen.ReadTruth(truthDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestRun_Truth(t *testing.T) {
	raw := generate(t, gen.Options{Seed: 7, Files: 4, Size: gen.Size{Rows: 60_000}, Messy: true})
	st := filepath.Join(t.TempDir(), "store")
	before := runtime.NumGoroutine()
	res, err := Run(context.Background(), smallOpts(raw, st))
	if err != nil {
		t.Fatal(err)
	}
	// Run leaves no goroutine behind.
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i == 100 {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Run, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if res.Ingested != 4 || res.Runs < 3 {
		t.Errorf("ingested %d files from %d runs; want 4 files and several runs", res.Ingested, res.Runs)
	}
	checkStore(t, st, readTruth(t, raw))

	// The bank is heavy and split into chunks.
	db, err := store.Open(st, &store.Options{ReadOnly: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hs := db.HeavyUsers()
	if len(hs) == 0 || hs[0].Share < 0.1 {
		t.Fatalf("heavy users %+v: want the bank first with ~13%%", hs)
	}
	if len(db.Chunks(hs[0], nil)) < 4 {
		t.Errorf("the bank has %d chunks", len(db.Chunks(hs[0], nil)))
	}
	// Reading one user with one bounded iterator yields its rows in file
	// order and its per-file counts.
	perFile := map[string]int64{}
	for _, tr := range readTruth(t, raw) {
		if tr.User == hs[0].User {
			perFile[tr.File] = tr.Rows
		}
	}
	names := map[store.FileID]string{}
	for _, f := range db.Files() {
		names[f.ID] = f.Name
	}
	u, err := db.Users(context.Background(), db.UserSpan([]byte(hs[0].User)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	got := map[string]int64{}
	groups := 0
	for u.Next() {
		groups++
		rows := u.Rows()
		for rows.Next() {
			got[names[rows.File()]]++
		}
	}
	if groups != 1 || fmt.Sprint(got) != fmt.Sprint(perFile) {
		t.Errorf("bank via UserSpan: %d groups, %v; truth %v", groups, got, perFile)
	}
}

// TestRun_HeavyFiles: with heavy users' files written by heavyFiles (in
// tables of their own), the store is exact and holds more tables than
// without: every heavy user's (1), or the bank's alone (1000: the other
// heavy users' blocks, in the same tasks, go into the heavy stream's
// tables, which must not overlap the bank's).
func TestRun_HeavyFiles(t *testing.T) {
	raw := generate(t, gen.Options{Seed: 11, Files: 4, Size: gen.Size{Rows: 20_000}})
	tables := map[int64]int{}
	for _, rows := range []int64{-1, 1, 1000} {
		st := filepath.Join(t.TempDir(), "store")
		o := smallOpts(raw, st)
		o.HeavyShare = 0.002
		o.heavyFileRows = rows
		if _, err := Run(context.Background(), o); err != nil {
			t.Fatalf("heavyFileRows %d: %v", rows, err)
		}
		checkStore(t, st, readTruth(t, raw))
		ssts, _ := filepath.Glob(filepath.Join(st, "db", "*.sst"))
		tables[rows] = len(ssts)
	}
	if tables[1] <= tables[1000] || tables[1000] < tables[-1]+4 {
		t.Errorf("tables: %d with every heavy user's files apart, %d with the bank's, %d with none", tables[1], tables[1000], tables[-1])
	}
}

// TestRun_Codecs: every compression gives an exact store, and the store
// records it.
func TestRun_Codecs(t *testing.T) {
	raw := generate(t, gen.Options{Seed: 9, Files: 2, Size: gen.Size{Rows: 20_000}, Messy: true})
	truth := readTruth(t, raw)
	for _, codec := range []string{"table-zstd", "table-minlz", "zstd", "s2", "none"} {
		t.Run(codec, func(t *testing.T) {
			st := filepath.Join(t.TempDir(), "store")
			o := smallOpts(raw, st)
			o.Codec = codec
			if _, err := Run(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			checkStore(t, st, truth)
			db, err := store.Open(st, &store.Options{ReadOnly: true, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if got := db.Config().Codec; got != codec {
				t.Errorf("store codec %q, want %q", got, codec)
			}
		})
	}
}

// TestRun_NarrowRuns: with more runs than the merge may open at once, the
// runs are first merged into fewer; the store is still exact.
func TestRun_NarrowRuns(t *testing.T) {
	raw := generate(t, gen.Options{Seed: 8, Files: 3, Size: gen.Size{Rows: 40_000}, Messy: true})
	st := filepath.Join(t.TempDir(), "store")
	o := smallOpts(raw, st)
	o.maxReaders = 3
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Runs <= 3 {
		t.Fatalf("%d runs; want more than the fan-in", res.Runs)
	}
	checkStore(t, st, readTruth(t, raw))
}

// TestRun_InMemory: input that fits the sort buffer is merged from memory
// with nothing spilled, the store is exact, and the Go memory limit that
// LimitHeap held during the run is given back as it was.
func TestRun_InMemory(t *testing.T) {
	raw := generate(t, gen.Options{Seed: 12, Files: 2, Size: gen.Size{Rows: 20_000}, Messy: true})
	st := filepath.Join(t.TempDir(), "store")
	o := smallOpts(raw, st)
	o.MemBytes, o.LimitHeap = 256<<20, true
	const limit = 3 << 30
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(limit))
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Runs != 1 || res.SpillBytes != 0 {
		t.Errorf("%d runs, %d bytes spilled; want one run in memory, nothing spilled", res.Runs, res.SpillBytes)
	}
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Errorf("memory limit %d after the run, want %d back", got, limit)
	}
	checkStore(t, st, readTruth(t, raw))
}

func TestRun_Incremental(t *testing.T) {
	raw := generate(t, gen.Options{Seed: 3, Files: 3, Size: gen.Size{Rows: 20_000}})
	files, _ := filepath.Glob(filepath.Join(raw, "invoices_*.csv"))
	sort.Strings(files)
	// Hold the newest month back.
	hold := filepath.Join(t.TempDir(), filepath.Base(files[len(files)-1]))
	if err := os.Rename(files[len(files)-1], hold); err != nil {
		t.Fatal(err)
	}
	st := filepath.Join(t.TempDir(), "store")
	res, err := Run(context.Background(), smallOpts(raw, st))
	if err != nil || res.Ingested != 2 {
		t.Fatalf("first run: %v, %+v", err, res)
	}
	// Rerun: nothing to do.
	res, err = Run(context.Background(), smallOpts(raw, st))
	if err != nil || res.Ingested != 0 || res.Skipped != 2 || res.Runs != 0 {
		t.Fatalf("rerun: %v, %+v", err, res)
	}
	// Add the month: only it is read.
	if err := os.Rename(hold, files[len(files)-1]); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	o := smallOpts(raw, st)
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	res, err = Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ingested != 1 || res.Skipped != 2 {
		t.Fatalf("after adding a month: %+v", res)
	}
	// The log shows that only the new file was read.
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "msg=reading") && !strings.Contains(l, "file="+filepath.Base(files[len(files)-1])) {
			t.Errorf("an old file was read: %s", l)
		}
	}
	if n := strings.Count(logs.String(), "msg=reading"); n != 1 {
		t.Errorf("%d files read, want 1:\n%s", n, logs.String())
	}
	for _, f := range res.Files {
		if (f.Status == StatusIngested) != (f.Name == filepath.Base(files[len(files)-1])) {
			t.Errorf("%s: %s", f.Name, f.Status)
		}
	}
	checkStore(t, st, readTruth(t, raw))

	// Change a file under the same name: an error that names it, and the
	// store keeps the old content.
	victim := files[0]
	b, _ := os.ReadFile(victim)
	lines := strings.SplitAfter(string(b), "\n")
	changed := strings.Join(append(lines[:1], lines[len(lines)/2:]...), "")
	if err := os.WriteFile(victim, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = Run(context.Background(), smallOpts(raw, st))
	var fe *FilesError
	if !errors.As(err, &fe) || len(fe.Failed) != 1 || !errors.Is(fe.Failed[0].Err, ErrChanged) ||
		!strings.Contains(err.Error(), filepath.Base(victim)) || !strings.Contains(err.Error(), "--replace") {
		t.Fatalf("changed file: %v", err)
	}
	if res.Ingested != 0 || res.Skipped != 2 {
		t.Errorf("changed file run: %+v", res)
	}
	// --replace swaps the content.
	o = smallOpts(raw, st)
	o.Replace = true
	res, err = Run(context.Background(), o)
	if err != nil || res.Ingested != 1 {
		t.Fatalf("--replace: %v %+v", err, res)
	}
	for _, f := range res.Files {
		if f.Name == filepath.Base(victim) && f.Status != StatusReplaced {
			t.Errorf("%s: %s", f.Name, f.Status)
		}
	}
	// The truth of the changed file is what the reader now reads in it.
	truth := readTruth(t, raw)
	var kept []gen.Truth
	for _, tr := range truth {
		if tr.File != filepath.Base(victim) {
			kept = append(kept, tr)
		}
	}
	kept = append(kept, truthOf(t, victim)...)
	checkStore(t, st, kept)
}

// truthOf computes a file's truth by reading it with csvread.
func truthOf(t *testing.T, path string) []gen.Truth {
	t.Helper()
	f, err := csvread.Open(path, csvread.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	amount := feature.InvoiceSchema.Index(feature.ColAmount)
	var mu sync.Mutex
	m := map[string]*gen.Truth{}
	_, err = f.Scan(context.Background(), 1, func(b *csvread.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		for i := 0; i < b.Len(); i++ {
			c, err := gen.ParseCents(string(b.Field(i, amount)))
			if err != nil {
				return err
			}
			u := string(b.User(i))
			if m[u] == nil {
				m[u] = &gen.Truth{File: filepath.Base(path), User: u}
			}
			m[u].Rows++
			m[u].AmountCents += c
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []gen.Truth
	for _, v := range m {
		out = append(out, *v)
	}
	return out
}

func TestRun_BadFileFailsAlone(t *testing.T) {
	raw := generate(t, gen.Options{Seed: 5, Files: 2, Size: gen.Size{Rows: 5_000}})
	// A file with too many bad rows, and a truncated gzip file.
	bad := "invoice_id,issuer,receiver,issued_at,amount,currency,description\n" + strings.Repeat("x,y\n", 50) + "a,b,c,d,1.00,MXN,e\n"
	if err := os.WriteFile(filepath.Join(raw, "bad.csv"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(raw, "cut.csv.gz"), []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 2}, 0o644); err != nil {
		t.Fatal(err)
	}
	st := filepath.Join(t.TempDir(), "store")
	res, err := Run(context.Background(), smallOpts(raw, st))
	var fe *FilesError
	if !errors.As(err, &fe) || len(fe.Failed) != 2 {
		t.Fatalf("want 2 failed files, got %v", err)
	}
	if res.Ingested != 2 {
		t.Errorf("ingested %d files, want 2", res.Ingested)
	}
	msg := err.Error()
	for _, want := range []string{"bad.csv", "cut.csv.gz"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %s: %s", want, msg)
		}
	}
	checkStore(t, st, readTruth(t, raw))
	db, err := store.Open(st, &store.Options{ReadOnly: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, ok := db.FileByName("bad.csv"); ok {
		t.Errorf("the bad file is recorded")
	}
}

// TestRun_ForcedHeavyMovesOldRows: a user forced heavy in a second run
// has its older rows moved to the heavy range; with its new files written
// by heavyFiles too (their tables must not overlap the moved blocks').
func TestRun_ForcedHeavyMovesOldRows(t *testing.T) {
	for _, rows := range []int64{-1, 1} {
		t.Run(fmt.Sprintf("heavyFileRows=%d", rows), func(t *testing.T) { forcedHeavyMovesOldRows(t, rows) })
	}
}

func forcedHeavyMovesOldRows(t *testing.T, heavyFileRows int64) {
	raw := generate(t, gen.Options{Seed: 9, Files: 2, Size: gen.Size{Rows: 8_000}, HeavyShare: -1})
	files, _ := filepath.Glob(filepath.Join(raw, "invoices_*.csv"))
	sort.Strings(files)
	hold := filepath.Join(t.TempDir(), filepath.Base(files[1]))
	os.Rename(files[1], hold)
	st := filepath.Join(t.TempDir(), "store")
	o := smallOpts(raw, st)
	o.HeavyShare = -1
	o.heavyFileRows = heavyFileRows
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	// Pick the user with most rows in the first file and force it heavy in
	// the second run.
	truth := readTruth(t, raw)
	top := truth[0]
	for _, tr := range truth {
		if tr.Rows > top.Rows {
			top = tr
		}
	}
	os.Rename(hold, files[1])
	o.HeavyUsers = []string{top.User}
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.NewHeavy, []string{top.User}) {
		t.Errorf("new heavy %v, want %q", res.NewHeavy, top.User)
	}
	checkStore(t, st, readTruth(t, raw))
	db, _ := store.Open(st, &store.Options{ReadOnly: true, Logger: quiet()})
	defer db.Close()
	hs := db.HeavyUsers()
	if len(hs) != 1 || len(hs[0].Files) != 2 {
		t.Errorf("heavy users %+v", hs)
	}
}

// BenchmarkPartition partitions a generated dataset (PARTITION_BENCH_SIZE,
// default 50MB) into a fresh store per iteration. MB/s is of raw
// (uncompressed) input; store% is the store's size on disk over the raw
// bytes.
func BenchmarkPartition(b *testing.B) {
	size := os.Getenv("PARTITION_BENCH_SIZE")
	if size == "" {
		size = "50MB"
	}
	sz, err := gen.ParseSize(size)
	if err != nil {
		b.Fatal(err)
	}
	for _, codec := range []string{"table-zstd", "zstd", "s2"} {
		b.Run("codec="+codec, func(b *testing.B) {
			raw := generate(b, gen.Options{Seed: 1, Files: 6, Size: sz})
			var res *Result
			var storeBytes int64
			for i := 0; i < b.N; i++ {
				st := filepath.Join(b.TempDir(), "store")
				o := Options{Inputs: []string{raw}, Store: st, MemBytes: 256 << 20, Codec: codec, Logger: quiet()}
				if res, err = Run(context.Background(), o); err != nil {
					b.Fatal(err)
				}
				storeBytes = dirBytes(b, st)
			}
			b.SetBytes(res.RawBytes)
			b.ReportMetric(100*float64(storeBytes)/float64(res.RawBytes), "store%")
			b.ReportMetric(float64(res.Runs), "runs")
		})
	}
}

func dirBytes(t testing.TB, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRun_olderStore adds a file to stores of format 1 (made by mce
// before blocks had a column directory; store/testdata/format1) and 2
// (before blocks had packed columns; store/testdata/format2), 3
// (before blocks had packed amounts; store/testdata/format3) and 4
// (before times were offsets from a block's earliest;
// store/testdata/format4): each store
// keeps its format, the new blocks are written in its layout (which
// Verify checks), and the store holds exactly the old rows and the new
// file's.
func TestRun_olderStore(t *testing.T) {
	for format, name := range map[int]string{1: "format1", 2: "format2", 3: "format3", 4: "format4"} {
		t.Run(name, func(t *testing.T) {
			st := filepath.Join(t.TempDir(), "store")
			if err := os.CopyFS(st, os.DirFS(filepath.Join("..", "store", "testdata", name, "store"))); err != nil {
				t.Fatal(err)
			}
			db, err := store.Open(st, &store.Options{ReadOnly: true, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			var truth []gen.Truth
			for k, v := range tallyStore(t, db) {
				truth = append(truth, gen.Truth{File: k.file, User: k.user, Rows: v.rows, AmountCents: v.cents})
			}
			db.Close()
			if len(truth) == 0 {
				t.Fatalf("the %s store reads empty", name)
			}
			// A month the store does not hold (it holds 2024_11 and 2024_12).
			raw := generate(t, gen.Options{Seed: 5, Files: 3, Size: gen.Size{Rows: 3000}})
			for _, n := range []string{"invoices_2024_11.csv", "invoices_2024_12.csv"} {
				if err := os.Remove(filepath.Join(raw, n)); err != nil {
					t.Fatal(err)
				}
			}
			o := smallOpts(raw, st)
			o.Shards, o.BlockBytes = 0, 0 // the store's own
			res, err := Run(context.Background(), o)
			if err != nil || res.Ingested != 1 {
				t.Fatalf("partition into the %s store: %v, %+v", name, err, res)
			}
			truth = append(truth, truthOf(t, filepath.Join(raw, "invoices_2024_10.csv"))...)
			checkStore(t, st, truth)
			db, err = store.Open(st, &store.Options{ReadOnly: true, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if f := db.Config().Format; f != format {
				t.Errorf("the store's format is %d after the partition, want %d", f, format)
			}
		})
	}
}

// TestAutoMemBytes: the sort buffer picked without --mem is the smallest
// (from MinAutoMemBytes, by 32 MiB, up to DefaultMemBytes) whose sort
// buffers each hold the longest row and whose runs the final merge reads
// at once on every CPU.
func TestAutoMemBytes(t *testing.T) {
	const row = 64 << 20 // csvread.DefaultMaxRowBytes
	for _, c := range []struct {
		raw         int64
		cpus, files int
		maxRow      int
		want        int64
	}{
		{0, 2, 6, 1 << 20, MinAutoMemBytes},
		{300e6, 2, 6, 1 << 20, MinAutoMemBytes},
		{300e6, 2, 6, row, 192 << 20}, // the row: arena 70 MiB
		{2e9, 2, 6, row, 192 << 20},
		{10e9, 2, 12, row, 192 << 20}, // 273 runs, 768 readers
		{100e9, 2, 12, row, 480 << 20},
		{10e9, 16, 16, row, 480 << 20},
		{100e9, 16, 16, row, DefaultMemBytes},
		{1 << 40, 2, 6, row, DefaultMemBytes},
	} {
		if got := AutoMemBytes(c.raw, c.cpus, c.files, c.maxRow); got != c.want {
			t.Errorf("AutoMemBytes(%d, %d CPUs, %d files, %d MiB rows) = %d MiB, want %d MiB", c.raw, c.cpus, c.files, c.maxRow>>20, got>>20, c.want>>20)
		}
	}
	// The two tests hold, and 32 MiB less fails one.
	for _, cpus := range []int{1, 2, 16, 64} {
		for _, files := range []int{1, 6, 64} {
			for _, raw := range []int64{0, 2 << 30, 8 << 30, 100 << 30, 1 << 40} {
				for _, maxRow := range []int{1 << 20, row} {
					m := AutoMemBytes(raw, cpus, files, maxRow)
					plan := planMemory(m, raw, cpus, files)
					runs := estimatedRuns(raw, plan.fillBytes)
					switch {
					case m < MinAutoMemBytes || m > DefaultMemBytes:
						t.Errorf("AutoMemBytes(%d, %d, %d, %d) = %d MiB, out of bounds", raw, cpus, files, maxRow, m>>20)
					case m < DefaultMemBytes && (plan.arenaBytes < int64(maxRow)+1<<20 || runs*int64(cpus) > int64(mergeReaders(m))):
						t.Errorf("AutoMemBytes(%d, %d, %d, %d) = %d MiB: buffers of %d MiB, %d runs on %d CPUs for %d readers", raw, cpus, files, maxRow, m>>20, plan.arenaBytes>>20, runs, cpus, mergeReaders(m))
					case m > MinAutoMemBytes && memFits(m-32<<20, raw, cpus, files, maxRow):
						t.Errorf("AutoMemBytes(%d, %d, %d, %d) = %d MiB: 32 MiB less would do", raw, cpus, files, maxRow, m>>20)
					}
				}
			}
		}
	}
}

// TestRun_autoMem: without MemBytes, Run picks autoMem of the inputs and
// says so in its Result, and a file with a row of 40 MiB is ingested;
// with a given MemBytes of 128 MiB (what a small input got before the longest row counted),
// whose buffers hold no such row, that file fails alone, saying to raise
// --mem.
func TestRun_autoMem(t *testing.T) {
	raw := generate(t, gen.Options{Seed: 13, Files: 2, Size: gen.Size{Rows: 5_000}})
	// One more file, of one long row.
	long := "D5D52874-096C-4AAE-A6A8-CB6DB09B54AF,LONG010101AB1,REC010101AB1,2024-07-21 06:34:38,40.55,MXN," +
		strings.Repeat("x", 40<<20) + "\n"
	if err := os.WriteFile(filepath.Join(raw, "long.csv"), []byte("invoice_id,issuer,receiver,issued_at,amount,currency,description\n"+long), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mem := range []int64{0, 128 << 20} {
		o := smallOpts(raw, filepath.Join(t.TempDir(), "store"))
		o.MemBytes = mem
		res, err := Run(context.Background(), o)
		if mem == 0 {
			if err != nil {
				t.Fatalf("MemBytes 0: %v", err)
			}
			if want := AutoMemBytes(res.RawBytes, o.CPUs, 3, csvread.DefaultMaxRowBytes); res.MemBytes != want {
				t.Errorf("MemBytes 0: the run used %d MiB, want %d MiB", res.MemBytes>>20, want>>20)
			}
			continue
		}
		var fe *FilesError
		if !errors.As(err, &fe) || res.Failed != 1 || res.Ingested != 2 || !strings.Contains(err.Error(), "long.csv") || !strings.Contains(err.Error(), "raise --mem") {
			t.Fatalf("MemBytes %d MiB: %d ingested, %d failed, error %v; want long.csv alone failed, saying to raise --mem", mem>>20, res.Ingested, res.Failed, err)
		}
		if res.MemBytes != mem {
			t.Errorf("MemBytes %d: the run used %d MiB", mem, res.MemBytes>>20)
		}
	}
}
