package main

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/report"
	"github.com/mce-engine/mce/internal/termview"
)

func TestPrintSummary(t *testing.T) {
	dir := t.TempDir()
	f := func(s *engine.Summary, want string) {
		t.Helper()
		var b bytes.Buffer
		printSummary(&b, s, runFiles)
		if got := strings.ReplaceAll(b.String(), dir, "RUN"); got != want {
			t.Errorf("summary:\n%s\nwant:\n%s", got, want)
		}
	}
	s := &engine.Summary{RunDir: dir, Files: 4, Done: 4, Rows: 289056, Bytes: 40_053_699, Seconds: 1.23, PeakRSSBytes: 110 << 20}
	f(s, "4 files ok, 0 failed; 289,056 rows, 0 bad\n40.1 MB in 1.2 s, 33 MB/s; peak RSS 110 MiB\n")

	s = &engine.Summary{RunDir: dir, Files: 6, Done: 1, Skipped: 1, Failed: 4, Rows: 1234567, BadRows: 12, Bytes: 2_500_000_000, Seconds: 125}
	for i, in := range []string{"a.csv", "b.csv", "c.csv", "d.csv"} {
		s.Tasks = append(s.Tasks, engine.TaskSummary{Input: in, Status: engine.TaskFailed,
			Error: &engine.TaskError{Input: in, Line: int64(i + 1), User: "U", Message: "boom"}})
	}
	f(s, `2 files ok, 4 failed (1 done before --resume); 1,234,567 rows, 12 bad
2.50 GB in 2m05s, 20 MB/s
failed: a.csv:1: user "U": boom
failed: b.csv:2: user "U": boom
failed: c.csv:3: user "U": boom
failures: 1 more; every one in RUN/failure.log
`)

	// The report's line once report.html is there.
	if err := os.WriteFile(filepath.Join(dir, report.FileName), []byte("<html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = &engine.Summary{RunDir: dir, Files: 1, Done: 1}
	f(s, "1 files ok, 0 failed; 0 rows, 0 bad\n0.0 MB in 0.0 s\nreport: RUN/report.html\n")
}

func TestThousands(t *testing.T) {
	f := func(n int64, want string) {
		t.Helper()
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	f(0, "0")
	f(999, "999")
	f(1000, "1,000")
	f(289056, "289,056")
	f(1234567, "1,234,567")
	f(-1234, "-1,234")
}

// TestPartitionView_lines feeds the view partition's records and checks
// its lines: the files being read, the total with the ETA, the merge.
func TestPartitionView_lines(t *testing.T) {
	pv := &partitionView{v: termview.New(nil), reading: map[string]partFile{}}
	t0 := time.Now()
	pv.started = t0
	l := slog.New(pv.handler(slog.DiscardHandler))
	rec := func(at time.Duration, msg string, args ...any) {
		r := slog.NewRecord(t0.Add(at), slog.LevelInfo, msg, 0)
		r.Add(args...)
		l.Handler().Handle(context.Background(), r)
	}
	rec(0, "partition plan", "files", 4)
	rec(0, "reading", "file", "invoices_2024_12.csv", "mb", int64(120))
	rec(0, "reading", "file", "sub/invoices_2024_11.csv", "mb", int64(100))
	rec(2*time.Second, "read", "file", "invoices_2024_12.csv", "rows", 800000)
	got := strings.Join(pv.lines(120, t0.Add(3*time.Second)), "\n")
	for _, want := range []string{
		"reading     invoices_2024_11.csv  100 MB  3s",
		"total       1/4 files read      ETA ",
		" 27%   40 MB/s", // 120 of an estimated 440 MB, in 3 s
		"3s elapsed",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lines lack %q:\n%s", want, got)
		}
	}
	rec(3*time.Second, "read", "file", "sub/invoices_2024_11.csv", "rows", 700000)
	rec(3*time.Second, "reading", "file", "a.csv", "mb", int64(50))
	rec(4*time.Second, "file failed; it is not ingested", "file", "a.csv")
	rec(4*time.Second, "reading", "file", "b.csv", "mb", int64(50))
	rec(5*time.Second, "read", "file", "b.csv", "rows", 300000)
	got = strings.Join(pv.lines(120, t0.Add(7*time.Second)), "\n")
	for _, want := range []string{"merging     1,800,000 rows into tables, then ingesting them", "3/4 files read, 1 failed", "100%"} {
		if !strings.Contains(got, want) {
			t.Errorf("after the reads, lines lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "reading ") {
		t.Errorf("a file still being read:\n%s", got)
	}
}

// TestStoreLog checks that partition.log is held in memory until the
// store exists, then written there.
func TestStoreLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	l := &storeLog{dir: dir}
	l.Write([]byte("one\n"))
	if _, err := os.Stat(filepath.Join(dir, partitionLog)); err == nil {
		t.Fatal("partition.log written before the store exists")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "MANIFEST.json"), []byte("{}"), 0o644)
	l.Write([]byte("two\n"))
	path, unwritten := l.close()
	b, _ := os.ReadFile(filepath.Join(dir, partitionLog))
	if path != filepath.Join(dir, partitionLog) || len(unwritten) != 0 || string(b) != "one\ntwo\n" {
		t.Errorf("path %q, unwritten %q, file %q", path, unwritten, b)
	}

	// No store at the end: the records come back.
	l = &storeLog{dir: filepath.Join(t.TempDir(), "none")}
	l.Write([]byte("why\n"))
	if path, unwritten := l.close(); path != "" || string(unwritten) != "why\n" {
		t.Errorf("without a store: path %q, unwritten %q", path, unwritten)
	}
}

// TestEnv_commandLogger checks when a command's records reach stderr: not
// while a live view has the terminal, unless -v or an explicit log flag.
func TestEnv_commandLogger(t *testing.T) {
	stderr := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	f := func(live, verbose, explicit, wantStderr bool) {
		t.Helper()
		set := flag.NewFlagSet("run", flag.ContinueOnError)
		set.Bool(verboseFlag.Name, verbose, "")
		env := &Env{Logger: stderr, LogExplicit: explicit}
		got := env.commandLogger(ucli.NewContext(nil, set, nil), live) == stderr
		if got != wantStderr {
			t.Errorf("live %v, -v %v, explicit %v: stderr %v, want %v", live, verbose, explicit, got, wantStderr)
		}
	}
	f(true, false, false, false)
	f(true, true, false, true)
	f(true, false, true, true)
	f(false, false, false, true)
}
