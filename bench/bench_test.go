package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mce-engine/mce/internal/gen"
)

// writeTruth writes the truth file for the fixture files as the generator does
// (file,user,rows,amount_total), with the total of one user changed by
// offCents.
func writeTruth(t *testing.T, dir string, fs *Features, offCents int64) {
	t.Helper()
	keys := make([]Key, 0, len(fs.Rows))
	for k := range fs.Rows {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].File+keys[i].User < keys[j].File+keys[j].User })
	var b strings.Builder
	b.WriteString("file,user,rows,amount_total\n")
	for i, k := range keys {
		v := fs.Rows[k]
		total := v.Total
		if i == 1 {
			total += offCents * 100
		}
		// The generator writes cents: two fraction digits.
		fmt.Fprintf(&b, "%s.csv,%q,%d,%d.%02d\n", k.File, k.User, v.Count, total/10000, total%10000/100)
	}
	writeFile(t, dir, gen.TruthFile, b.String())
}

func testConfig(t *testing.T, data string) (Config, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	work := t.TempDir()
	return Config{
		MCE:     filepath.Join(work, "no-mce"),
		Work:    work,
		Results: filepath.Join(work, "results"),
		Data:    data,
		Runs:    1,
		CPUs:    2,
		Skip:    []string{SysDuckDB, SysCSVFloor},
		Self:    []string{testExe(t)},
		Stdout:  &out,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, &out
}

func TestRun_WithoutMCE(t *testing.T) {
	data := t.TempDir()
	paths := writeInvoices(t, data, 2, 1500, 5)
	writeTruth(t, data, oracle(t, paths), 0)
	cfg, out := testConfig(t, data)
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Result(SysRun); got.Status != StatusUnavailable {
		t.Errorf("run: %v, want not available without an mce binary", got.Status)
	}
	for _, sys := range []string{SysUnix, SysFloor} {
		if got := rep.Result(sys); !got.OK() || len(got.Runs) != 1 {
			t.Errorf("%s: %v %s, %d runs", sys, got.Status, got.Reason, len(got.Runs))
		}
	}
	if got := rep.Result(SysDuckDB); got.Status != StatusSkipped {
		t.Errorf("duckdb: %v, want skipped", got.Status)
	}
	md := out.String()
	reportHas(t, md, "| unix |", "| floor |", "unix agrees with truth", "not available: no mce binary", "## Targets")
	for _, name := range []string{"latest.md", "latest.svg", rep.baseName() + ".md", rep.baseName() + ".svg"} {
		if _, err := os.Stat(filepath.Join(cfg.Results, name)); err != nil {
			t.Error(err)
		}
	}
	latest, _ := os.ReadFile(filepath.Join(cfg.Results, "latest.md"))
	if !strings.Contains(string(latest), "](latest.svg)") {
		t.Error("latest.md does not show latest.svg")
	}
	// Without --keep-data the outputs are gone; the given data stays.
	if _, err := os.Stat(filepath.Join(cfg.Work, "out")); !os.IsNotExist(err) {
		t.Errorf("outputs left in the work folder: %v", err)
	}
	if _, err := os.Stat(paths[0]); err != nil {
		t.Errorf("--data files removed: %v", err)
	}
}

func TestRun_GateFails(t *testing.T) {
	data := t.TempDir()
	paths := writeInvoices(t, data, 1, 500, 6)
	writeTruth(t, data, oracle(t, paths), 1) // one cent off
	cfg, out := testConfig(t, data)
	cfg.Skip = append(cfg.Skip, SysFloor)
	_, err := Run(context.Background(), cfg)
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("err %v, want a *MismatchError", err)
	}
	if me.Count != 1 || me.First[0].Field != "amount_total" || me.System != "unix" || me.Ref != "truth" {
		t.Errorf("mismatch %+v", me)
	}
	if out.Len() != 0 {
		t.Errorf("figures printed despite the disagreement:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(cfg.Results, "latest.md")); !os.IsNotExist(err) {
		t.Errorf("a report was written despite the disagreement: %v", err)
	}
}

func TestConfig_Validate(t *testing.T) {
	f := func(mod func(*Config), wantErr string) {
		t.Helper()
		cfg := Config{Src: t.TempDir()}
		mod(&cfg)
		_, err := cfg.withDefaults()
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("err %v, want one with %q", err, wantErr)
		}
	}
	f(func(c *Config) { c.Size = "lots" }, "--size")
	f(func(c *Config) { c.Skip = []string{"spark"} }, `--skip "spark"`)
	f(func(c *Config) { c.Encoding = "latin1" }, "--encoding")
	f(func(c *Config) { c.PartitionMem = "-1" }, "--partition-mem")
	f(func(c *Config) { c.Runs = -1 }, "--runs")
}

func TestParseBytes(t *testing.T) {
	f := func(in string, want int64) {
		t.Helper()
		got, err := ParseBytes(in)
		if want < 0 {
			if err == nil {
				t.Errorf("ParseBytes(%q) = %d, want an error", in, got)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	f("300MB", 300e6)
	f("256MiB", 256<<20)
	f("1G", 1<<30)
	f("2.5GB", 2.5e9)
	f("1024", 1024)
	f("12 kb", 12e3)
	f("0", -1)
	f("MB", -1)
	f("5 parsecs", -1)
}

func TestMain_Flags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"--runs", "x"}, nil, &out, &errOut); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
	if code := Main(context.Background(), []string{"extra"}, nil, &out, &errOut); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
	errOut.Reset()
	if code := Main(context.Background(), []string{"-h"}, nil, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "-sweep") {
		t.Errorf("-h: exit %d, usage %q", code, errOut.String())
	}
}

// TestRun_WithMCE builds mce from this repository and runs the benchmark
// on a small generated dataset: whatever mce commands exist are measured
// and must agree with the baselines and the truth.
func TestRun_WithMCE(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mce; skipped with -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no Go toolchain")
	}
	cfg, out := testConfig(t, "")
	wd, _ := os.Getwd()
	src, err := findModuleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", cfg.MCE, "./cmd/mce")
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("mce does not build right now: %v\n%s", err, b)
	}
	cfg.Size, cfg.Files = "4MB", 3
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, res := range rep.Results {
		if res.Status == StatusFailed {
			t.Errorf("%s failed: %s", res.System, res.Reason)
		}
	}
	if !rep.Result(SysRun).OK() {
		t.Fatalf("mce run was not measured: %s", rep.Result(SysRun).Reason)
	}
	md := out.String()
	reportHas(t, md, "run agrees with truth", "unix agrees with run", "| run | mce run")
	if rep.Result(SysRun).Skew == nil {
		t.Errorf("no skew from mce run's timings.csv: %s", rep.Result(SysRun).Note)
	}
	// Reduce on half the data, generated and partitioned by the real mce,
	// against the whole.
	if f := rep.Flat; !f.OK() || f.HalfBytes <= 0 || f.HalfBytes >= f.FullBytes || f.Half.PeakRSSBytes <= 0 {
		t.Errorf("reduce at half the data not measured: %+v", f)
	} else {
		reportHas(t, md, "## Reduce's memory at half the data", "| mce reduce peak RSS flat from half the data to all of it (issue 13) |")
	}
	// The real partition's log says how its rows spilled, and the report
	// repeats it.
	switch part := rep.Result(SysPartition); {
	case part.Spill == "":
		t.Errorf("partition's spill not read from its log (status %s)", part.Status)
	case !strings.Contains(md, part.Spill):
		t.Errorf("the report lacks partition's spill %q", part.Spill)
	}

	// Kept data (--keep-data) is reused by the next bench when its
	// settings and mce are the same, and made again when they are not:
	// the whole data and the half (halfStore) go through generate alike.
	cfg, err = cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	m := probeMCE(context.Background(), cfg.MCE)
	dir, truth := filepath.Join(t.TempDir(), "data"), filepath.Join(t.TempDir(), "truth")
	gen := func(size string) (*Dataset, time.Time) {
		t.Helper()
		d, err := generate(context.Background(), &cfg, m, size, dir, truth)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(d.Files[0])
		if err != nil {
			t.Fatal(err)
		}
		return d, st.ModTime()
	}
	d1, t1 := gen("1MB")
	d2, t2 := gen("1MB")
	d3, _ := gen("2MB")
	switch {
	case d1.GenSeconds <= 0 || !d1.Generated:
		t.Errorf("first generate: %+v, want generated and timed", d1)
	case d2.GenSeconds != 0 || !d2.Generated || !t2.Equal(t1) || !slices.Equal(d2.Files, d1.Files) || d2.Truth == "":
		t.Errorf("second generate with the same settings: %+v (file time %v, was %v), want the kept data reused", d2, t2, t1)
	case d3.GenSeconds <= 0 || d3.RawBytes <= d1.RawBytes:
		t.Errorf("generate at another size: %+v, want new data", d3)
	}
}

func TestBindFlags_SweepCPUs(t *testing.T) {
	for _, tc := range []struct {
		arg     string
		want    []int
		wantErr bool
	}{
		{"1,4,16", []int{1, 4, 16}, false},
		{" 2 ", []int{2}, false},
		{"0", nil, true},
		{"1,x", nil, true},
	} {
		var cfg Config
		fs := flag.NewFlagSet("bench", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		BindFlags(fs, &cfg)
		err := fs.Parse([]string{"-sweep-cpus", tc.arg})
		if (err != nil) != tc.wantErr {
			t.Fatalf("-sweep-cpus %q: error %v, want error %v", tc.arg, err, tc.wantErr)
		}
		if !tc.wantErr && (!slices.Equal(cfg.SweepCPUs, tc.want) || !cfg.Sweep) {
			t.Errorf("-sweep-cpus %q: SweepCPUs %v, Sweep %v; want %v, true", tc.arg, cfg.SweepCPUs, cfg.Sweep, tc.want)
		}
	}
	if got := oneCPUClusters(3); got != "1,1,1" {
		t.Errorf("oneCPUClusters(3) = %q", got)
	}
}

func TestShownPath(t *testing.T) {
	for _, tc := range []struct{ src, path, want string }{
		{"/r", "/r/bench/work/data", "bench/work/data"},
		{"/r", "/elsewhere/data", "/elsewhere/data"},
		{"/r", "/rx/data", "/rx/data"},
		{"/r", "/r", "."},
	} {
		if got := shownPath(tc.src, tc.path); got != tc.want {
			t.Errorf("shownPath(%q, %q) = %q, want %q", tc.src, tc.path, got, tc.want)
		}
	}
}
