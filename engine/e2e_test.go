package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/filejob"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/internal/e2etest"
	"github.com/mce-engine/mce/internal/fileid"
	"github.com/mce-engine/mce/internal/gen"
	"github.com/mce-engine/mce/internal/procfs"
)

// The end-to-end tests run the real mce binary (and a features binary
// that panics on demand), built once by TestMain.
var (
	mceBin    string
	faultyBin string
	binDir    string
)

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main("mce-engine-test-", map[string]string{"mce": "../cmd/mce", "faulty": "../internal/e2etest/testdata/faulty/f.go"},
		func(dir string, bins map[string]string) int {
			binDir, mceBin, faultyBin = dir, bins["mce"], bins["faulty"]
			return m.Run()
		}))
}

// genData writes generated invoice files into a new folder and returns it
// with the data files, largest first.
func genData(t *testing.T, o gen.Options) (string, []string) {
	t.Helper()
	o.Dir = filepath.Join(t.TempDir(), "data")
	o.NoSync = true
	o.Logger = slog.New(slog.DiscardHandler)
	s, err := gen.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range s.Files {
		files = append(files, filepath.Join(o.Dir, f.Name))
	}
	return o.Dir, files
}

// skipShort skips the tests that only run the built binary: -short (with
// -race) keeps the ones whose code runs in the test process.
func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test of the built binary")
	}
}

// runArgs is `run FILES... FLAGS...`.
func runArgs(files []string, flags ...string) []string {
	return append(append([]string{"run"}, files...), flags...)
}

type userFeatures struct {
	count  int64
	amount float64
}

// readFeatures reads a features file: user -> invoice_count, amount_total.
func readFeatures(t *testing.T, path string) map[string]userFeatures {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	hdr, err := r.Read()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// The key column is named after the input's user column.
	if len(hdr) < 3 || hdr[0] == "" || hdr[1] != "invoice_count" || hdr[2] != "amount_total" {
		t.Fatalf("%s: header %v", path, hdr)
	}
	out := map[string]userFeatures{}
	prev := ""
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(out) > 0 && rec[0] <= prev {
			t.Fatalf("%s: users not sorted: %q after %q", path, rec[0], prev)
		}
		prev = rec[0]
		n, err1 := strconv.ParseInt(rec[1], 10, 64)
		a, err2 := strconv.ParseFloat(rec[2], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: bad line %v", path, rec)
		}
		out[rec[0]] = userFeatures{n, a}
	}
	return out
}

// checkTruth compares the features files of the given inputs in runDir with
// the generator's truth: every user's invoice count and amount total.
func checkTruth(t *testing.T, dataDir, runDir string, only ...string) {
	t.Helper()
	truth, err := gen.ReadTruth(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]userFeatures{}
	for _, tr := range truth {
		name := fileid.FeaturesName(tr.File)
		if len(only) > 0 && !slices.Contains(only, tr.File) {
			continue
		}
		if want[name] == nil {
			want[name] = map[string]userFeatures{}
		}
		want[name][tr.User] = userFeatures{tr.Rows, float64(tr.AmountCents) / 100}
	}
	if len(want) == 0 {
		t.Fatal("no truth to check")
	}
	for name, users := range want {
		got := readFeatures(t, filepath.Join(runDir, name))
		if len(got) != len(users) {
			t.Errorf("%s: %d users, want %d", name, len(got), len(users))
		}
		bad := 0
		for u, w := range users {
			g, ok := got[u]
			if !ok || g.count != w.count || math.Abs(g.amount-w.amount) > 1e-6*math.Max(1, math.Abs(w.amount)) {
				if bad++; bad <= 3 {
					t.Errorf("%s: user %q: got %+v (found %v), want %+v", name, u, g, ok, w)
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d users differ from the truth", name, bad)
		}
	}
}

type assignment struct {
	file    string
	cluster int
	alone   bool
}

var assignRE = regexp.MustCompile(`file (.+) \(#(\d+)\) -> cluster (\d+)( \(retry \d+, alone\))?$`)

// assignments reads the order in which files went to clusters.
func assignments(t *testing.T, runDir string) []assignment {
	t.Helper()
	var out []assignment
	for _, ln := range e2etest.LogLines(t, runDir, engine.StatusLog) {
		if m := assignRE.FindStringSubmatch(ln); m != nil {
			c, _ := strconv.Atoi(m[3])
			out = append(out, assignment{file: m[1], cluster: c, alone: m[4] != ""})
		}
	}
	return out
}

// TestRun_featuresMatchTruth runs messy generated files (gzip, zstd, four
// delimiters, cp1252 and UTF-8, renamed headers, bad rows) on two clusters
// at once and checks every user's features against the generator's truth.
func TestRun_featuresMatchTruth(t *testing.T) {
	skipShort(t)
	data, files := genData(t, gen.Options{Seed: 7, Files: 5, Size: gen.Size{Bytes: 6 << 20}, Messy: true})
	out := t.TempDir()
	r := e2etest.Run(t, mceBin, runArgs(files, "--out", out, "--job", "truth", "--clusters", "2,1", "--poll", "10ms", "--no-progress")...)
	if r.Code != 0 {
		t.Fatalf("exit %d", r.Code)
	}
	if r.RunDir != filepath.Join(out, "truth0") {
		t.Fatalf("run folder %q, want %s", r.RunDir, filepath.Join(out, "truth0"))
	}
	if got := e2etest.LastLine(r.Stdout); got != "all 5 files ok" {
		t.Errorf("last line %q", got)
	}
	checkTruth(t, data, r.RunDir)

	// Both clusters worked at the same time: the first two files were
	// handed out before either finished.
	lines := e2etest.LogLines(t, r.RunDir, engine.StatusLog)
	var seen []string
	for _, ln := range lines {
		switch {
		case assignRE.MatchString(ln):
			seen = append(seen, "assign")
		case strings.Contains(ln, ") done on cluster"):
			seen = append(seen, "done")
		}
	}
	if len(seen) < 2 || seen[0] != "assign" || seen[1] != "assign" {
		t.Errorf("the clusters did not start together: %v", seen)
	}
	used := map[int]bool{}
	for _, a := range assignments(t, r.RunDir) {
		used[a.cluster] = true
	}
	if !used[0] || !used[1] {
		t.Errorf("clusters used: %v, want 0 and 1", used)
	}

	s := e2etest.ReadSummary(t, r.RunDir)
	if s.Files != 5 || s.Done != 5 || s.Failed != 0 || s.Rows == 0 || s.BadRows == 0 {
		t.Errorf("summary: %d files, %d done, %d failed, %d rows, %d bad rows", s.Files, s.Done, s.Failed, s.Rows, s.BadRows)
	}
	timings := e2etest.LogLines(t, r.RunDir, engine.TimingsCSV)
	if timings[0] != engine.TimingsHeader || len(timings) != 6 {
		t.Errorf("timings.csv:\n%s", strings.Join(timings, "\n"))
	}
	for _, ln := range timings[1:] {
		if f := strings.Split(ln, ","); f[12] != "done" || f[8] == "0.0" || f[13] != filejob.ModeStream {
			t.Errorf("timings row %q: want status done, a peak RSS and mode stream (auto, built-in features)", ln)
		}
	}
	ram := e2etest.LogLines(t, r.RunDir, engine.RAMLog)
	if len(ram) < 2 || ram[0] != "time,cluster,pid,file,rss_mib,total_mib" {
		t.Errorf("ram_usage.log: %q", ram)
	}
	if b, _ := os.ReadFile(filepath.Join(r.RunDir, engine.FailureLog)); len(b) != 0 {
		t.Errorf("failure.log is not empty:\n%s", b)
	}

	// A second run never overwrites the first.
	r2 := e2etest.Run(t, mceBin, "run", files[len(files)-1], "--out", out, "--job", "truth", "--no-progress")
	if r2.RunDir != filepath.Join(out, "truth1") || r2.Code != 0 {
		t.Errorf("second run: folder %q, exit %d; want truth1, 0", r2.RunDir, r2.Code)
	}
}

// TestRun_modesAgree runs the same messy files (plain, gz, zst, cp1252,
// bad rows, the heavy user) with every --mode: the features files must be
// byte for byte the same, and timings.csv must say which mode ran and why.
func TestRun_modesAgree(t *testing.T) {
	skipShort(t)
	_, files := genData(t, gen.Options{Seed: 11, Files: 3, Size: gen.Size{Bytes: 3 << 20}, Messy: true, HeavyShare: 0.13})
	out := t.TempDir()
	dirs := map[string]string{}
	for _, mode := range []string{filejob.ModeGroup, filejob.ModeStream, filejob.ModeDisk, filejob.ModeAuto} {
		r := e2etest.Run(t, mceBin, runArgs(files, "--out", out, "--job", mode, "--mode", mode, "--no-progress")...)
		if r.Code != 0 {
			t.Fatalf("--mode %s: exit %d", mode, r.Code)
		}
		dirs[mode] = r.RunDir
		want := mode
		if mode == filejob.ModeAuto {
			want = filejob.ModeStream // the one pass, for a mergeable set
		}
		for _, ln := range e2etest.LogLines(t, r.RunDir, engine.TimingsCSV)[1:] {
			if f := strings.Split(ln, ","); f[13] != want || f[14] == "" {
				t.Errorf("--mode %s: timings row %q: want mode %s", mode, ln, want)
			}
		}
	}
	outs, _ := filepath.Glob(filepath.Join(dirs[filejob.ModeGroup], "*"+fileid.FeaturesSuffix))
	if len(outs) != len(files) {
		t.Fatalf("%d features files, want %d", len(outs), len(files))
	}
	for _, g := range outs {
		want, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{filejob.ModeStream, filejob.ModeDisk, filejob.ModeAuto} {
			got, err := os.ReadFile(filepath.Join(dirs[mode], filepath.Base(g)))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: --mode %s differs from --mode group", filepath.Base(g), mode)
			}
		}
	}
}

// checkDeque checks the document's double-ended queue: cluster 0 takes a
// prefix of the size-sorted files from the large end, in order; the other
// clusters together take the rest from the small end, in order.
func checkDeque(t *testing.T, as []assignment, files []string) {
	t.Helper()
	var big, small []string
	for _, a := range as {
		if a.cluster == 0 {
			big = append(big, a.file)
		} else {
			small = append(small, a.file)
		}
	}
	if len(big)+len(small) != len(files) {
		t.Fatalf("%d assignments, want %d", len(big)+len(small), len(files))
	}
	for i, f := range big {
		if f != files[i] {
			t.Errorf("cluster 0's file %d is %s, want %s (from the large end)", i, filepath.Base(f), filepath.Base(files[i]))
		}
	}
	for i, f := range small {
		if want := files[len(files)-1-i]; f != want {
			t.Errorf("the small clusters' file %d is %s, want %s (from the small end)", i, filepath.Base(f), filepath.Base(want))
		}
	}
	if len(big) == 0 || len(small) == 0 {
		t.Errorf("cluster 0 took %d files, the others %d: want both ends used", len(big), len(small))
	}
}

func TestRun_dequeOrder(t *testing.T) {
	skipShort(t)
	_, files := genData(t, gen.Options{Seed: 8, Files: 9, Size: gen.Size{Bytes: 3 << 20}})
	r := e2etest.Run(t, mceBin, runArgs(files, "--out", t.TempDir(), "--clusters", "1,1,1", "--queue", "deque", "--no-progress")...)
	if r.Code != 0 {
		t.Fatalf("exit %d", r.Code)
	}
	as := assignments(t, r.RunDir)
	checkDeque(t, as, files)
	for _, a := range as {
		if a.cluster > 2 || a.alone {
			t.Errorf("unexpected assignment %+v", a)
		}
	}
}

// TestRun_fifoAndRecycle checks the plain queue (files in size order,
// whatever the cluster) and that --recycle-after restarts clusters.
func TestRun_fifoAndRecycle(t *testing.T) {
	skipShort(t)
	data, files := genData(t, gen.Options{Seed: 9, Files: 6, Size: gen.Size{Bytes: 2 << 20}})
	r := e2etest.Run(t, mceBin, runArgs(files, "--out", t.TempDir(), "--clusters", "1,1", "--queue", "fifo",
		"--recycle-after", "2", "--no-progress")...)
	if r.Code != 0 {
		t.Fatalf("exit %d", r.Code)
	}
	var order []string
	for _, a := range assignments(t, r.RunDir) {
		order = append(order, a.file)
	}
	if !slices.Equal(order, files) {
		t.Errorf("fifo order:\n%s\nwant:\n%s", strings.Join(order, "\n"), strings.Join(files, "\n"))
	}
	status := strings.Join(e2etest.LogLines(t, r.RunDir, engine.StatusLog), "\n")
	if !strings.Contains(status, "recycled after 2 files") || !strings.Contains(status, "restarted (recycled after 2 files)") {
		t.Errorf("no recycling in status.log:\n%s", status)
	}
	checkTruth(t, data, r.RunDir)
}

// TestRun_ramLimitKillsCluster sets a RAM limit that only a cluster busy
// with the big file passes: one of its users holds 128 MiB for 2 s (the
// faulty features' hog, once), while the other cluster reduces the small
// files. That cluster is killed (failure.log says which file), started
// again, and the file retried alone, which ends either correct or as the
// only failed file.
//
// (Until 2026-12 the big file's own rows were to pass a 64 MiB limit; but
// two idle clusters hold about 35 MiB each, so the limit was passed as
// soon as both ran, and a small file's cluster, busy at that poll, was
// now and then the heavier one and killed first.)
func TestRun_ramLimitKillsCluster(t *testing.T) {
	skipShort(t)
	data, files := genData(t, gen.Options{Seed: 10, Files: 1, Size: gen.Size{Bytes: 8 << 20}})
	_, small := genData(t, gen.Options{Seed: 11, Files: 4, Size: gen.Size{Bytes: 400 << 10}})
	big := files[0]
	all := append([]string{big}, small...)
	truth, err := gen.ReadTruth(data)
	if err != nil {
		t.Fatal(err)
	}
	hog := truth[0].User
	once := filepath.Join(t.TempDir(), "hogged")
	r := e2etest.Run(t, faultyBin, runArgs(all, "--out", t.TempDir(), "--clusters", "1,1", "--ram-limit", "160MiB",
		"--poll", "50ms", "--no-progress", "--param", "hog_user="+hog, "--param", "hog_mib=128", "--param", "hog_ms=2000",
		"--param", "hog_once="+once)...)

	failures := e2etest.LogLines(t, r.RunDir, engine.FailureLog)
	killRE := regexp.MustCompile(`cluster (\d) file ` + regexp.QuoteMeta(big) + `: killed over the RAM limit: cluster \d used [\d.]+ MiB, all clusters [\d.]+ MiB > limit 160.0 MiB`)
	var m []string
	if len(failures) > 0 {
		m = killRE.FindStringSubmatch(failures[0])
	}
	if m == nil {
		t.Fatalf("failure.log does not start with the kill of the big file's cluster:\n%s", strings.Join(failures, "\n"))
	}
	killed := m[1]
	status := e2etest.LogLines(t, r.RunDir, engine.StatusLog)
	joined := strings.Join(status, "\n")
	for _, want := range []string{
		"cluster " + killed + " killed (pid ",
		"cluster " + killed + " restarted (self-regeneration)",
		"file " + big + " (#0) will be retried alone on cluster " + killed,
		"file " + big + " (#0) -> cluster " + killed + " (retry 1, alone)",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("status.log lacks %q:\n%s", want, joined)
		}
	}
	// While the big file ran alone, no other file was running or handed out.
	running := map[string]bool{}
	for _, ln := range status {
		if a := assignRE.FindStringSubmatch(ln); a != nil {
			if a[4] != "" && len(running) > 0 {
				t.Errorf("retried alone while %v ran", running)
			}
			running[a[1]] = true
			continue
		}
		for f := range running {
			if strings.Contains(ln, "file "+f+" (#") && (strings.Contains(ln, ") done on") || strings.Contains(ln, ") failed on") ||
				strings.Contains(ln, ") will be retried")) {
				delete(running, f)
			}
		}
	}
	s := e2etest.ReadSummary(t, r.RunDir)
	var bigTask engine.TaskSummary
	for _, ts := range s.Tasks {
		if ts.Input == big {
			bigTask = ts
		} else if ts.Status != engine.TaskDone {
			t.Errorf("small file %s: %s, want done", ts.Input, ts.Status)
		}
	}
	if bigTask.Attempts != 2 {
		t.Errorf("big file attempts %d, want 2", bigTask.Attempts)
	}
	switch bigTask.Status {
	case engine.TaskDone:
		checkTruth(t, data, r.RunDir)
	case engine.TaskFailed:
		if r.Code != 1 || e2etest.LastLine(r.Stdout) != "1 of 5 files failed" {
			t.Errorf("exit %d, last line %q; want 1, \"1 of 5 files failed\"", r.Code, e2etest.LastLine(r.Stdout))
		}
		if !strings.Contains(bigTask.Error.Message, "killed over the RAM limit again while running alone") {
			t.Errorf("big file error %q", bigTask.Error.Message)
		}
		if _, err := os.Stat(filepath.Join(r.RunDir, fileid.FeaturesName(big))); err == nil {
			t.Error("a failed file has a features file")
		}
	default:
		t.Errorf("big file status %s", bigTask.Status)
	}
	if s.Restarts < 1 {
		t.Errorf("summary restarts %d", s.Restarts)
	}
	tmps, _ := filepath.Glob(filepath.Join(r.RunDir, "*"+output.TempSuffix))
	if len(tmps) > 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

// TestRun_ramLimitCompletes sets --ram-limit at 60% of what the files
// need when every cluster runs one at once (the peak of an unconstrained
// run) and checks that every file still completes, byte for byte as
// unconstrained, through the low-memory paths (stream, disk), for the
// built-in features and for a Reduce features file, with two clusters and
// with one; and that the sampled total stays under the limit plus one
// poll's growth.
func TestRun_ramLimitCompletes(t *testing.T) {
	skipShort(t)
	_, files := genData(t, gen.Options{Seed: 22, Files: 2, Size: gen.Size{Bytes: 300 << 20}})
	// The built-in set is grouped (--mode group), as a Reduce set is by
	// auto: its one pass already holds only the users' aggregates, and
	// the limit is to squeeze the path that holds the rows.
	for _, bin := range []struct{ name, exe, mode string }{{"invoice", mceBin, "group"}, {"reduce-form", faultyBin, "auto"}} {
		for _, clusters := range []string{"1,1", "2"} {
			t.Run(bin.name+"/"+clusters, func(t *testing.T) {
				args := runArgs(files, "--clusters", clusters, "--poll", "10ms", "--no-progress", "--mode", bin.mode)
				free := e2etest.Run(t, bin.exe, append(args, "--out", t.TempDir())...)
				if free.Code != 0 {
					t.Fatalf("unconstrained: exit %d", free.Code)
				}
				need := e2etest.ReadSummary(t, free.RunDir).PeakRSSBytes
				limit := need * 6 / 10
				r := e2etest.Run(t, bin.exe, append(args, "--out", t.TempDir(), "--ram-limit", strconv.FormatInt(limit, 10))...)
				if r.Code != 0 || e2etest.LastLine(r.Stdout) != "all 2 files ok" {
					t.Fatalf("limit %d MiB (60%% of %d): exit %d, %q", limit>>20, need>>20, r.Code, e2etest.LastLine(r.Stdout))
				}
				for _, f := range files {
					name := fileid.FeaturesName(f)
					want, err := os.ReadFile(filepath.Join(free.RunDir, name))
					if err != nil {
						t.Fatal(err)
					}
					if got, err := os.ReadFile(filepath.Join(r.RunDir, name)); err != nil || !bytes.Equal(got, want) {
						t.Errorf("%s differs from the unconstrained run's (%v)", name, err)
					}
				}
				low := 0
				for _, ts := range e2etest.ReadSummary(t, r.RunDir).Tasks {
					if m := ts.Result.Mode; m == filejob.ModeDisk || m == filejob.ModeStream {
						low++
					}
				}
				if low == 0 {
					t.Error("no file took a low-memory path: the limit did not bind")
				}
				peak, growth := ramPeak(t, r.RunDir)
				t.Logf("limit %.0f MiB (60%% of %.0f): peak %.1f MiB, largest growth in one poll %.1f MiB, %d files on a low-memory path",
					float64(limit)/(1<<20), float64(need)/(1<<20), peak, growth, low)
				if peak > float64(limit)/(1<<20)+growth {
					t.Errorf("peak %.1f MiB > limit %.1f MiB + one poll's growth %.1f MiB", peak, float64(limit)/(1<<20), growth)
				}
			})
		}
	}
}

// TestRun_manyUsersUnderLimit runs a file of one row per user (its
// features file as big as itself) under a RAM limit its one pass does not
// fit: the one pass gives way to the disk path in the cluster, without a
// kill, and the disk path keeps its features lines on disk, so that the
// file completes within the limit, byte for byte as unconstrained; and
// --mode disk alone stays within it too.
func TestRun_manyUsersUnderLimit(t *testing.T) {
	skipShort(t)
	const users = 600_000
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "many.csv")
	var b bytes.Buffer
	b.WriteString("invoice_id,issuer,receiver,issued_at,amount,currency,description\n")
	for i := range users {
		u := (i * 7919) % users // not in key order
		fmt.Fprintf(&b, "I%07d,U%08d,R%05d,2024-12-%02d 10:%02d:00,%d.%02d,MXN,\"Venta, contado\"\n",
			i, u, i%9973, 1+i%28, i%60, 10+i%5000, i%100)
	}
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	free := e2etest.Run(t, mceBin, runArgs([]string{file}, "--out", t.TempDir(), "--no-progress")...)
	if free.Code != 0 {
		t.Fatalf("unconstrained: exit %d", free.Code)
	}
	want, err := os.ReadFile(filepath.Join(free.RunDir, fileid.FeaturesName(file)))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(want, []byte("\n")); n != users+1 {
		t.Fatalf("unconstrained: %d lines, want %d", n, users+1)
	}
	const limit = 200 << 20
	for _, mode := range []string{"auto", "disk"} {
		t.Run(mode, func(t *testing.T) {
			r := e2etest.Run(t, mceBin, runArgs([]string{file}, "--out", t.TempDir(), "--no-progress",
				"--mode", mode, "--ram-limit", strconv.Itoa(limit), "--poll", "10ms")...)
			if r.Code != 0 {
				t.Fatalf("exit %d: %q", r.Code, e2etest.LastLine(r.Stdout))
			}
			if fails := strings.TrimSpace(e2etest.ReadLog(t, r.RunDir, engine.FailureLog)); fails != "" {
				t.Errorf("failure.log:\n%s", fails)
			}
			got, err := os.ReadFile(filepath.Join(r.RunDir, fileid.FeaturesName(file)))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("features differ from the unconstrained run's (%v)", err)
			}
			res := e2etest.ReadSummary(t, r.RunDir).Tasks[0].Result
			if res.Mode != filejob.ModeDisk || mode == "auto" && !strings.Contains(res.ModeReason, "one pass outgrew") {
				t.Errorf("mode %s (%s), want disk after the one pass outgrew its share", res.Mode, res.ModeReason)
			}
			peak, growth := ramPeak(t, r.RunDir)
			t.Logf("%s: peak %.1f MiB (limit %d MiB), largest growth in one poll %.1f MiB; %s", mode, peak, limit>>20, growth, res.ModeReason)
			if peak > float64(limit>>20)+growth {
				t.Errorf("peak %.1f MiB > limit %d MiB + one poll's growth %.1f MiB", peak, limit>>20, growth)
			}
		})
	}
}

// TestRun_retryAloneStopsIdleCluster has a busy cluster pass the RAM
// limit while the other sits idle holding the memory of its last files:
// the idle one is asked to give its memory back before the busy one is
// killed, and stopped before the killed file runs again alone, so that
// the retry has the whole limit; then every file is exact.
func TestRun_retryAloneStopsIdleCluster(t *testing.T) {
	skipShort(t)
	data, all := genData(t, gen.Options{Seed: 30, Files: 4, Size: gen.Size{Bytes: 48 << 20}})
	hogFile := all[1] // #1 in size order: cluster 1's first under fifo
	truth, err := gen.ReadTruth(data)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]map[string]bool{}
	rows := map[string]int64{}
	for _, tr := range truth {
		if files[tr.User] == nil {
			files[tr.User] = map[string]bool{}
		}
		files[tr.User][tr.File] = true
		if tr.File == filepath.Base(hogFile) {
			rows[tr.User] = tr.Rows
		}
	}
	// slow: the hog file's biggest user (reduced first, on one CPU),
	// which keeps cluster 1 busy until cluster 0 is idle; hog: one of its
	// smallest, reduced last.
	var slow, hog string
	for u, n := range rows {
		if len(files[u]) != 1 {
			continue
		}
		if slow == "" || n > rows[slow] {
			slow = u
		}
		if hog == "" || n < rows[hog] {
			hog = u
		}
	}
	once := filepath.Join(t.TempDir(), "hogged")
	r := e2etest.Run(t, faultyBin, runArgs(all, "--out", t.TempDir(), "--clusters", "1,1", "--queue", "fifo",
		"--ram-limit", "200MiB", "--poll", "20ms", "--no-progress", "--param", "slow_user="+slow, "--param", "slow_ms=1500",
		"--param", "hog_user="+hog, "--param", "hog_once="+once)...)
	if r.Code != 0 || e2etest.LastLine(r.Stdout) != "all 4 files ok" {
		t.Fatalf("exit %d, last line %q", r.Code, e2etest.LastLine(r.Stdout))
	}
	checkTruth(t, data, r.RunDir)
	status := e2etest.LogLines(t, r.RunDir, engine.StatusLog)
	at := func(sub string) int {
		for i, ln := range status {
			if strings.Contains(ln, sub) {
				return i
			}
		}
		t.Errorf("status.log lacks %q:\n%s", sub, strings.Join(status, "\n"))
		return -1
	}
	asked := at("cluster 0 (idle, ")
	killed := at("cluster 1 killed (pid ")
	stopped := at("cluster 0 stopped (pid ")
	alone := at(fmt.Sprintf("file %s (#1) runs alone on cluster 1: the other clusters are stopped, it has the whole RAM limit (200 MiB", hogFile))
	retry := at(fmt.Sprintf("file %s (#1) -> cluster 1 (retry 1, alone)", hogFile))
	if t.Failed() {
		return
	}
	if !(asked < killed && killed < stopped && stopped < alone && alone < retry) {
		t.Errorf("order: asked %d, killed %d, cluster 0 stopped %d, alone %d, retry %d; want increasing:\n%s",
			asked, killed, stopped, alone, retry, strings.Join(status, "\n"))
	}
}

// ramPeak returns the largest total of ram_usage.log, in MiB, and the
// largest rise of the total from one poll to the next.
func ramPeak(t *testing.T, runDir string) (peak, growth float64) {
	t.Helper()
	f, err := os.Open(filepath.Join(runDir, engine.RAMLog))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	prev, prevTime := 0.0, ""
	for _, rec := range recs[1:] {
		total, err := strconv.ParseFloat(rec[5], 64)
		if err != nil {
			t.Fatalf("ram_usage.log: %v", rec)
		}
		if rec[0] != prevTime { // one poll writes one row per cluster, all with its total
			growth = max(growth, total-prev)
			prev, prevTime = total, rec[0]
		}
		peak = max(peak, total)
	}
	return peak, growth
}

// TestRun_panicInFeatures runs a features binary whose feature function
// panics on one user: the files holding that user fail with the user and
// the file in failure.log; the other files complete.
func TestRun_panicInFeatures(t *testing.T) {
	skipShort(t)
	data, files := genData(t, gen.Options{Seed: 12, Files: 4, Size: gen.Size{Bytes: 2 << 20}})
	truth, err := gen.ReadTruth(data)
	if err != nil {
		t.Fatal(err)
	}
	// A user found in exactly one file.
	inFiles := map[string][]string{}
	for _, tr := range truth {
		inFiles[tr.User] = append(inFiles[tr.User], tr.File)
	}
	victim, victimFile := "", ""
	for _, tr := range truth {
		if len(inFiles[tr.User]) == 1 && tr.File == filepath.Base(files[1]) {
			victim, victimFile = tr.User, filepath.Join(data, tr.File)
			break
		}
	}
	if victim == "" {
		t.Fatal("no user found in one file only")
	}
	r := e2etest.Run(t, faultyBin, runArgs(files, "--out", t.TempDir(), "--clusters", "1,1",
		"--param", "panic_user="+victim, "--no-progress")...)
	if r.Code != 1 || e2etest.LastLine(r.Stdout) != "1 of 4 files failed" {
		t.Fatalf("exit %d, last line %q; want 1, \"1 of 4 files failed\"", r.Code, e2etest.LastLine(r.Stdout))
	}
	failures := strings.Join(e2etest.LogLines(t, r.RunDir, engine.FailureLog), "\n")
	want := fmt.Sprintf("file %s user %q: panic: faulty: panic on user %s", victimFile, victim, victim)
	if !strings.Contains(failures, want) {
		t.Errorf("failure.log lacks %q:\n%s", want, failures)
	}
	if !strings.Contains(failures, "/userfeatures.reduce(") {
		t.Errorf("failure.log lacks the panic's stack:\n%s", failures)
	}
	var others []string
	for _, f := range files {
		if f != victimFile {
			others = append(others, filepath.Base(f))
		}
	}
	checkTruth(t, data, r.RunDir, others...)
	if _, err := os.Stat(filepath.Join(r.RunDir, fileid.FeaturesName(victimFile))); err == nil {
		t.Error("the failed file has a features file")
	}
	s := e2etest.ReadSummary(t, r.RunDir)
	if s.Feature != "faulty" || s.Failed != 1 {
		t.Errorf("summary feature %q, failed %d", s.Feature, s.Failed)
	}
}

// TestRun_recycleRSS runs a features binary that leaks memory on every
// user: a cluster whose RSS between files passes --recycle-rss is
// restarted, and the results stay right.
func TestRun_recycleRSS(t *testing.T) {
	skipShort(t)
	data, files := genData(t, gen.Options{Seed: 15, Files: 3, Size: gen.Size{Bytes: 3 << 20}})
	r := e2etest.Run(t, faultyBin, runArgs(files, "--out", t.TempDir(), "--clusters", "1",
		"--param", "leak_kib=64", "--recycle-rss", "40MiB", "--no-progress")...)
	if r.Code != 0 {
		t.Fatalf("exit %d", r.Code)
	}
	status := strings.Join(e2etest.LogLines(t, r.RunDir, engine.StatusLog), "\n")
	if n := strings.Count(status, "restarted (recycled: RSS between files"); n != 2 {
		t.Errorf("%d restarts for RSS, want 2 (after each file but the last):\n%s", n, status)
	}
	checkTruth(t, data, r.RunDir)
}

// TestRun_killParentThenResume SIGKILLs mce in the middle of a run: no
// cluster process may survive it and no features file may be partial;
// --resume then finishes the run with the right results.
func TestRun_killParentThenResume(t *testing.T) {
	skipShort(t)
	data, files := genData(t, gen.Options{Seed: 13, Files: 8, Size: gen.Size{Bytes: 48 << 20}})
	out := t.TempDir()
	t.Cleanup(func() { e2etest.CheckNoOrphans(t, mceBin) })
	cmd := exec.Command(mceBin, runArgs(files, "--out", out, "--clusters", "1,1", "--no-progress")...)
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(out, engine.DefaultJobName+"0")
	// Wait until one file is done and others are being worked on.
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(runDir, engine.StatusLog))
		if strings.Count(string(b), ") done on cluster") >= 1 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no file done in time; stderr:\n%s", e2etest.Tail(se.String(), 2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Let the clusters be well into their next files (a 6 MB file takes
	// them some 30 ms), not done with all.
	time.Sleep(20 * time.Millisecond)
	pids := clusterPIDs(t, runDir)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	e2etest.CheckNoOrphans(t, mceBin)
	// A killed process with a large heap takes a moment to exit.
	for _, pid := range pids {
		for end := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			st := e2etest.ProcState(pid)
			if st == "" || st == "Z" {
				break
			}
			if time.Now().After(end) {
				t.Errorf("cluster process %d is still running (state %s)", pid, st)
				break
			}
		}
	}
	s := e2etest.ReadSummary(t, runDir)
	if s.Done == len(files) {
		t.Fatal("the run finished before it was killed; make the data bigger")
	}
	complete, _ := filepath.Glob(filepath.Join(runDir, "*"+fileid.FeaturesSuffix))
	var names []string
	for _, f := range complete {
		name := strings.TrimSuffix(filepath.Base(f), fileid.FeaturesSuffix)
		names = append(names, name)
	}
	if len(names) > 0 {
		checkTruth(t, data, runDir, names...) // every features file there is whole
	}
	t.Logf("killed with %d of %d files done", len(names), len(files))

	r := e2etest.Run(t, mceBin, "run", "--resume", runDir, "--no-progress")
	if r.Code != 0 || r.RunDir != runDir {
		t.Fatalf("resume: exit %d, folder %q", r.Code, r.RunDir)
	}
	checkTruth(t, data, runDir)
	s = e2etest.ReadSummary(t, runDir)
	if s.Skipped != len(names) || s.Done != len(files)-len(names) || s.Failed != 0 {
		t.Errorf("after resume: %d skipped, %d done, %d failed; want %d, %d, 0", s.Skipped, s.Done, s.Failed, len(names), len(files)-len(names))
	}
	tmps, _ := filepath.Glob(filepath.Join(runDir, "*"+output.TempSuffix))
	if len(tmps) > 0 {
		t.Errorf("temporary files left after resume: %v", tmps)
	}
}

// clusterPIDs reads the cluster processes' pids from status.log.
func clusterPIDs(t *testing.T, runDir string) []int {
	t.Helper()
	re := regexp.MustCompile(`cluster \d+ (?:started|restarted[^:]*): pid (\d+)`)
	var pids []int
	for _, ln := range e2etest.LogLines(t, runDir, engine.StatusLog) {
		if m := re.FindStringSubmatch(ln); m != nil {
			pid, _ := strconv.Atoi(m[1])
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		t.Fatal("no cluster pids in status.log")
	}
	return pids
}

// TestRun_interrupt sends SIGINT (Ctrl-C) to mce mid-run: it kills its
// clusters, removes partial outputs, records the interruption and exits
// with 130.
func TestRun_interrupt(t *testing.T) {
	skipShort(t)
	_, files := genData(t, gen.Options{Seed: 14, Files: 4, Size: gen.Size{Bytes: 24 << 20}})
	out := t.TempDir()
	t.Cleanup(func() { e2etest.CheckNoOrphans(t, mceBin) })
	cmd := exec.Command(mceBin, runArgs(files, "--out", out, "--clusters", "1,1", "--no-progress")...)
	var so bytes.Buffer
	cmd.Stdout = &so
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(out, engine.DefaultJobName+"0")
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(runDir, engine.StatusLog))
		if strings.Contains(string(b), "-> cluster 1") {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("no file started in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("exit: %v, want status 130", err)
	}
	e2etest.CheckNoOrphans(t, mceBin)
	s := e2etest.ReadSummary(t, runDir)
	if !s.Interrupted {
		t.Error("summary does not say interrupted")
	}
	tmps, _ := filepath.Glob(filepath.Join(runDir, "*"+output.TempSuffix))
	if len(tmps) > 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
	sc := bufio.NewScanner(strings.NewReader(so.String()))
	var last string
	for sc.Scan() {
		last = sc.Text()
	}
	if !strings.HasPrefix(last, "interrupted: ") {
		t.Errorf("last line %q", last)
	}
}

// TestRun_inProcess runs the parent in the test process (so that the race
// detector sees the scheduler, the monitor and the pipes) with mce's worker
// for the clusters, and checks the plain progress lines.
func TestRun_inProcess(t *testing.T) {
	data, _ := genData(t, gen.Options{Seed: 16, Files: 3, Size: gen.Size{Bytes: 6 << 20}})
	t.Cleanup(func() { e2etest.CheckNoOrphans(t, mceBin) })
	var progress bytes.Buffer
	tasks, err := filejob.Plan([]string{data})
	if err != nil {
		t.Fatal(err)
	}
	s, err := engine.Run(context.Background(), engine.Options{
		Tasks: tasks, Out: t.TempDir(), JobName: "inproc", Clusters: []int{1, 1},
		WorkerExe: mceBin, WorkerArgs: []string{"--log-level", "warn", "worker"},
		RAMLimitBytes: 8 << 30, Poll: 20 * time.Millisecond,
		Progress: &progress, ProgressEvery: 20 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The folder also holds the generator's _truth.csv files, which are
	// skipped as inputs (names starting with _ are not data).
	if s.Files != 3 || s.Done != 3 || s.Failed != 0 || s.LastLine() != "all 3 files ok" {
		t.Errorf("summary: %d files, %d done, %d failed, %q", s.Files, s.Done, s.Failed, s.LastLine())
	}
	for _, ts := range s.Tasks {
		if ts.Status == engine.TaskFailed {
			t.Errorf("%s: %s (%v)", ts.Input, ts.Status, ts.Error)
		}
	}
	checkTruth(t, data, s.RunDir)
	p := progress.String()
	if !strings.Contains(p, "progress: cluster 0 (1 CPU): ") || !strings.Contains(p, "files done") {
		t.Errorf("progress lines:\n%s", e2etest.Tail(p, 2000))
	}
}

// TestRun_twoAtOnce starts three runs into one --out at the same moment
// (each gets its own run folder, none shares a file) and tries to resume
// a run folder while its run still runs (refused, naming the process).
func TestRun_twoAtOnce(t *testing.T) {
	skipShort(t)
	data, files := genData(t, gen.Options{Seed: 17, Files: 2, Size: gen.Size{Bytes: 2 << 20}})
	out := t.TempDir()
	t.Cleanup(func() { e2etest.CheckNoOrphans(t, faultyBin) })
	truth, err := gen.ReadTruth(data)
	if err != nil {
		t.Fatal(err)
	}
	slow := truth[0].User
	var cmds []*exec.Cmd
	for range 3 {
		cmd := exec.Command(faultyBin, runArgs(files, "--out", out, "--job", "same", "--clusters", "1", "--no-progress",
			"--param", "slow_user="+slow, "--param", "slow_ms=1500")...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(out, "same0", engine.StatusLog))
		if strings.Contains(string(b), "-> cluster 0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no file started in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Not e2etest.Run: it would take the runs' processes for orphans.
	res, err := exec.Command(faultyBin, "run", "--resume", filepath.Join(out, "same0"), "--no-progress").CombinedOutput()
	if err == nil || !strings.Contains(string(res), "is still being run (pid ") {
		t.Errorf("resume of a running run: %v\n%s", err, res)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
	for n := range 3 {
		dir := filepath.Join(out, "same"+strconv.Itoa(n))
		s := e2etest.ReadSummary(t, dir)
		if s.Done != 2 || s.Failed != 0 {
			b, _ := os.ReadFile(filepath.Join(dir, engine.StatusLog))
			t.Errorf("%s: %d done, %d failed\n%s", dir, s.Done, s.Failed, b)
		}
		checkTruth(t, data, dir)
	}
	if m, _ := filepath.Glob(filepath.Join(out, "same*")); len(m) != 3 {
		t.Errorf("run folders %v, want same0, same1, same2", m)
	}
}

// TestRun_kernelOOMKill runs the cluster inside a memory cgroup whose
// limit is below what grouping the file needs: the kernel's out-of-memory
// killer, not mce, kills it. mce logs a SIGKILL it did not send, retries
// the file alone on its low-memory path (through disk, sized to the
// cgroup's limit), and the file completes exactly. The file is 320 MB:
// grouped rows carry only the columns the features read, and the 120 MB
// it was before grouped within the limit.
func TestRun_kernelOOMKill(t *testing.T) {
	skipShort(t)
	const limit = 150 << 20
	cg := memCgroup(t, limit)
	data, _ := genData(t, gen.Options{Seed: 23, Files: 1, Size: gen.Size{Bytes: 320 << 20}})
	wrapper := filepath.Join(t.TempDir(), "in-cgroup")
	script := fmt.Sprintf("#!/bin/sh\necho $$ > %s/cgroup.procs\nexec %s \"$@\"\n", cg, mceBin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	tasks, err := filejob.Plan([]string{data})
	if err != nil {
		t.Fatal(err)
	}
	job, _ := filejob.Job{Mode: filejob.ModeGroup, Reader: csvread.Options{CheckValues: true}}.Encode()
	t.Cleanup(func() { e2etest.CheckNoOrphans(t, mceBin) })
	s, err := engine.Run(context.Background(), engine.Options{
		Tasks: tasks, Job: job, Out: t.TempDir(), Clusters: []int{2},
		WorkerExe: wrapper, WorkerArgs: []string{"--log-level", "warn", "worker"},
		RAMLimitBytes: 8 << 30, Poll: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	status := strings.Join(e2etest.LogLines(t, s.RunDir, engine.StatusLog), "\n")
	failures := strings.Join(e2etest.LogLines(t, s.RunDir, engine.FailureLog), "\n")
	if s.Done != 1 || !strings.Contains(failures, "a SIGKILL mce did not send") ||
		!strings.Contains(status, "will be retried alone on cluster 0, on its low-memory path") {
		t.Fatalf("done %d\nstatus.log:\n%s\nfailure.log:\n%s", s.Done, status, failures)
	}
	if m := s.Tasks[0].Result.Mode; m != filejob.ModeDisk {
		t.Errorf("the retry took the %s path, want disk", m)
	}
	checkTruth(t, data, s.RunDir)
}

// memCgroup makes a memory cgroup below this process's own with the given
// limit and returns its folder; the test is skipped where none can be made
// (no cgroup file system, no memory controller, no permission).
func memCgroup(t *testing.T, limit int64) string {
	t.Helper()
	own, err := procfs.OwnCgroup()
	if err != nil {
		t.Skipf("no memory cgroup to make one in: %v", err)
	}
	dir := filepath.Join(own.String(), fmt.Sprintf("mce-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a memory cgroup here: %v", err)
	}
	t.Cleanup(func() {
		for range 50 { // its processes may take a moment to leave
			if os.Remove(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	for _, name := range []string{"memory.max", "memory.limit_in_bytes"} {
		if os.WriteFile(filepath.Join(dir, name), []byte(strconv.FormatInt(limit, 10)), 0o644) == nil {
			return dir
		}
	}
	t.Skipf("cannot set a memory limit on %s", dir)
	return ""
}
