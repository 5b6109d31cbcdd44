package bench

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testRunner is a runner over fixture files, with no mce binary.
func testRunner(t *testing.T, paths []string) *runner {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	src, err := findModuleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Src: src, Work: t.TempDir(), Runs: 2, SortMem: "64M", Encoding: "utf8",
		Self: []string{testExe(t)}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	data := &Dataset{Dir: filepath.Dir(paths[0]), Files: paths, Plain: true}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		data.RawBytes += st.Size()
	}
	return &runner{cfg: cfg, mce: probeMCE(context.Background(), filepath.Join(cfg.Work, "no-mce")), data: data}
}

func TestRunner_Unix(t *testing.T) {
	paths := writeInvoices(t, t.TempDir(), 3, 2000, 1)
	r := testRunner(t, paths)
	res := r.runUnix(context.Background(), 2)
	if !res.OK() {
		t.Fatalf("unix: %v: %s", res.Status, res.Reason)
	}
	want := oracle(t, paths)
	got := firstFeatures(t, res, want)
	if len(got.Rows) != len(want.Rows) {
		t.Errorf("unix has %d rows, oracle %d", len(got.Rows), len(want.Rows))
	}
	// The tie rule: the smallest receiver name wins.
	if v := got.Rows[Key{File: "invoices_2024_12", User: "SOLO010101ZZ9"}]; v == nil || v.Top != "CLI010101AA1" {
		t.Errorf("tie: top receiver %+v, want CLI010101AA1", v)
	}
}

// firstFeatures reads back the features res kept of its first run, after
// every run (the later ones replace the output), and checks them against
// want and its rows count against want's.
func firstFeatures(t *testing.T, res *Result, want *Features) *Features {
	t.Helper()
	if len(res.Runs) < 2 {
		t.Fatalf("%s: %d runs, want several, so that a later one could replace the first's output", res.System, len(res.Runs))
	}
	if res.Features == nil {
		t.Fatalf("%s kept no features", res.System)
	}
	got, err := res.Features.All()
	if err != nil {
		t.Fatal(err)
	}
	if err := Compare(want, got, DefaultRelTol); err != nil {
		t.Fatal(err)
	}
	var rows int64
	for _, v := range want.Rows {
		rows += v.Count
	}
	if res.Rows != rows {
		t.Errorf("%s: Rows %d, want %d", res.System, res.Rows, rows)
	}
	return got
}

func TestRunner_DuckDB(t *testing.T) {
	if testing.Short() {
		t.Skip("installs DuckDB with npm; skipped with -short")
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	paths := writeInvoices(t, t.TempDir(), 2, 3000, 2)
	r := testRunner(t, paths)
	if err := installDuckDB(context.Background(), r.duckDBDir()); err != nil {
		t.Skipf("DuckDB cannot be installed here (no network?): %v", err)
	}
	res := r.runDuckDB(context.Background(), 2)
	if !res.OK() {
		t.Fatalf("duckdb: %v: %s", res.Status, res.Reason)
	}
	firstFeatures(t, res, oracle(t, paths))
	if !strings.HasPrefix(res.Note, "DuckDB v") {
		t.Errorf("note %q, want the DuckDB version", res.Note)
	}
}

func TestRunner_Floor(t *testing.T) {
	paths := writeInvoices(t, t.TempDir(), 2, 1000, 3)
	r := testRunner(t, paths)
	res := r.runFloor(context.Background(), 2)
	if !res.OK() {
		t.Fatalf("floor: %v: %s", res.Status, res.Reason)
	}
	// 2 files of a header, 1000 rows and the 3 tie rows.
	if !strings.HasPrefix(res.Note, "2008 lines,") {
		t.Errorf("floor note %q, want 2008 lines", res.Note)
	}
}

func TestRunner_MCEUnavailable(t *testing.T) {
	paths := writeInvoices(t, t.TempDir(), 1, 10, 4)
	r := testRunner(t, paths)
	for _, sys := range []string{SysRun, SysReduce, SysPartition} {
		res := r.measure(context.Background(), sys, 1)
		if res.Status != StatusUnavailable || !strings.Contains(res.Reason, "no mce binary") {
			t.Errorf("%s: %v %q, want not available for lack of mce", sys, res.Status, res.Reason)
		}
	}
}

func TestParseCommands(t *testing.T) {
	help := `NAME:
   mce - map-reduce of per-user features

USAGE:
   mce [global options] command [command options]

COMMANDS:
   gen       generate realistic monthly invoice files
   run       compute per-user features for every input file
             on clusters of CPUs
   store:
     info    what a store holds
   help, h   Shows a list of commands or help for one command

GLOBAL OPTIONS:
   --log-level value   debug, info, warn or error (default: "info")
`
	got := parseCommands(help)
	for _, want := range []string{"gen", "run", "info", "help", "h"} {
		if !got[want] {
			t.Errorf("command %q not found in %v", want, got)
		}
	}
	for _, not := range []string{"on", "--log-level", "store", "mce"} {
		if got[not] {
			t.Errorf("%q taken for a command", not)
		}
	}
}

func TestReadTimings(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "timings.csv")
	body := "file,cluster,bytes,rows,bad_rows,users,map_seconds,reduce_seconds,peak_rss_mib,worker_max_seconds,worker_mean_seconds,skew,status\n" +
		"/d/invoices_2024_12.csv,0,100,1000,0,10,1.0,2.0,50.0,2.200,2.000,1.100,done\n" +
		"/d/invoices_2024_11.csv,0,50,400,0,10,0.5,1.0,40.0,1.300,1.000,1.300,done\n" +
		"/d/invoices_2024_10.csv,0,50,400,0,10,0.5,1.0,40.0,9.000,1.000,9.000,failed\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	sk, err := ReadTimings(p)
	if err != nil {
		t.Fatal(err)
	}
	if sk.Files != 2 || sk.MaxFile != "invoices_2024_11" || sk.Max != 1.3 || sk.HeavyMax != 1.1 {
		t.Errorf("skew %+v", sk)
	}
	if want := 3.5 / 3.0; sk.Overall < want-1e-9 || sk.Overall > want+1e-9 {
		t.Errorf("overall %v, want %v", sk.Overall, want)
	}
	if err := os.WriteFile(p, []byte("file,skew\nx,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTimings(p); err == nil || !strings.Contains(err.Error(), "worker_max_seconds") {
		t.Errorf("err %v, want one naming the missing column", err)
	}
}

func TestMedian(t *testing.T) {
	f := func(xs []float64, want float64) {
		t.Helper()
		in := append([]float64(nil), xs...)
		if got := Median(xs); got != want {
			t.Errorf("Median(%v) = %v, want %v", xs, got, want)
		}
		for i := range xs {
			if xs[i] != in[i] {
				t.Fatalf("Median modified its input: %v", xs)
			}
		}
	}
	f(nil, 0)
	f([]float64{5}, 5)
	f([]float64{3, 1, 2}, 2)
	f([]float64{4, 1, 3, 2}, 2.5)
	f([]float64{9, 1, 1}, 1)
}

func TestResult_SetMedians(t *testing.T) {
	r := &Result{Runs: []Sample{
		{Wall: 3e9, UserCPU: 1e9, PeakRSSBytes: 300},
		{Wall: 1e9, UserCPU: 5e9, PeakRSSBytes: 100},
		{Wall: 2e9, UserCPU: 2e9, SysCPU: 1e9, PeakRSSBytes: 200},
	}}
	r.setMedians()
	if r.Wall != 2e9 || r.CPU != 3e9 || r.PeakRSSBytes != 200 {
		t.Errorf("medians wall %v cpu %v rss %d, want 2s 3s 200 (each figure on its own)", r.Wall, r.CPU, r.PeakRSSBytes)
	}
}

func TestExitError(t *testing.T) {
	err := error(&ExitError{Args: []string{"/x/bin/mce", "run", "--out", "o"}, Err: errors.New("exit status 1"), Stderr: "a\nmce: input x: no such file\n\n"})
	if got, want := err.Error(), "mce run: exit status 1: mce: input x: no such file"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestSpillNote reads partition's "ingested" record as mce writes it off
// a terminal.
func TestSpillNote(t *testing.T) {
	const head = "time=2026-12-06T09:08:29.040Z level=INFO msg=read file=a.csv rows=3\n"
	for _, tc := range []struct{ stderr, want string }{
		{head + "time=2026-12-06T09:08:29.928Z level=INFO msg=ingested files=6 rows=2138063 tables=21 runs=5 spill_mib=236 spill=stored read=1.164s merge=841ms ingest=22ms\n",
			"spilled 236 MiB of runs, stored"},
		{head + "time=2026-12-06T09:08:29.928Z level=INFO msg=ingested files=6 rows=2138063 tables=21 runs=5 spill_mib=143 spill=s2 read=1.2s\n",
			"spilled 143 MiB of runs, s2-compressed: too little free disk to store them (slower)"},
		{head + "time=2026-12-06T09:08:29.928Z level=INFO msg=ingested files=3 rows=30000 tables=3 runs=1 spill_mib=0 spill=none read=20ms\n",
			"no rows spilled"},
		{head, ""},
		{"time=x level=INFO msg=ingested files=6 rows=2138063 runs=5 spill_mib=236\n", ""}, // an mce before the spill field
		{"", ""},
	} {
		if got := spillNote(tc.stderr); got != tc.want {
			t.Errorf("spillNote(%q) = %q, want %q", tc.stderr, got, tc.want)
		}
	}
}

// FuzzSpillNote: any stderr gives no note or one of the three, whole.
func FuzzSpillNote(f *testing.F) {
	f.Add("time=x level=INFO msg=ingested files=6 runs=5 spill_mib=236 spill=stored\n")
	f.Add("time=x level=INFO msg=ingested spill=s2 spill_mib=\n")
	f.Add("msg=ingested spill=none")
	f.Add(" msg=ingested  spill==s2=x\r\n")
	f.Fuzz(func(t *testing.T, stderr string) {
		got := spillNote(stderr)
		switch {
		case got == "", got == "no rows spilled",
			strings.HasPrefix(got, "spilled ") && (strings.HasSuffix(got, " MiB of runs, stored") ||
				strings.HasSuffix(got, " MiB of runs, s2-compressed: too little free disk to store them (slower)")):
		default:
			t.Errorf("spillNote(%q) = %q", stderr, got)
		}
	})
}

// TestMeasureOrder: the systems measured in every round are the systems
// the report lists, each once: a system added to one list and not the
// other would be left out of the rounds or of the report.
func TestMeasureOrder(t *testing.T) {
	all := AllSystems()
	if len(measureOrder) != len(all) {
		t.Fatalf("measureOrder has %d systems, AllSystems %d: %v against %v", len(measureOrder), len(all), measureOrder, all)
	}
	seen := map[string]bool{}
	for _, s := range measureOrder {
		if seen[s] {
			t.Errorf("%q is measured twice", s)
		}
		seen[s] = true
	}
	for _, s := range all {
		if !seen[s] {
			t.Errorf("%q is in AllSystems but never measured", s)
		}
	}
}
