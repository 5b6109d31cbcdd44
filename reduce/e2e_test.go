package reduce_test

import (
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
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/internal/e2etest"
	"github.com/mce-engine/mce/internal/fileid"
	"github.com/mce-engine/mce/internal/gen"
	"github.com/mce-engine/mce/partition"
	"github.com/mce-engine/mce/reduce"
)

// The end-to-end tests run the real mce binary and a features binary
// (testdata/userfeat: not mergeable, order-sensitive, with a Map), built
// once by TestMain, on one generated messy dataset with the 13% heavy
// user, partitioned once into two stores.
var (
	mceBin  string
	userBin string
	tmpRoot string
)

func TestMain(m *testing.M) {
	os.Exit(e2etest.Main("mce-reduce-test-", map[string]string{"mce": "../cmd/mce", "userfeat": "./testdata/userfeat/f.go"},
		func(dir string, bins map[string]string) int {
			tmpRoot, mceBin, userBin = dir, bins["mce"], bins["userfeat"]
			return m.Run()
		}))
}

// fixture is the shared dataset: data holds the raw files (and the
// generator's truth), store was made by `mce partition` with the default
// layout, small by partition.Run with 16 shards and 2 KiB blocks, so that
// the heavy user is cut into many chunks.
type fixture struct {
	data, store, small string
	files              []string // the data files, largest first
	truth              []gen.Truth
	runDir             string // `mce run` of the built-in features
	userRunDir         string // `userfeat run`
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  error
)

func setup(t *testing.T) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test of the built binaries")
	}
	fixOnce.Do(func() { fixErr = makeFixture() })
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return &fix
}

func makeFixture() error {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	fix.data = filepath.Join(tmpRoot, "data")
	s, err := gen.Run(ctx, gen.Options{Dir: fix.data, Seed: 11, Files: 4, Size: gen.Size{Bytes: 6 << 20},
		Messy: true, NoSync: true, Logger: quiet})
	if err != nil {
		return err
	}
	for _, f := range s.Files {
		fix.files = append(fix.files, filepath.Join(fix.data, f.Name))
	}
	if fix.truth, err = gen.ReadTruth(fix.data); err != nil {
		return err
	}
	fix.store = filepath.Join(tmpRoot, "store")
	out, err := exec.Command(mceBin, "partition", fix.data, "--out", fix.store, "--heavy-min-rows", "500", "--mem", "64MiB").CombinedOutput()
	if err != nil {
		return fmt.Errorf("mce partition: %v\n%s", err, out)
	}
	fix.small = filepath.Join(tmpRoot, "small")
	if _, err := partition.Run(ctx, partition.Options{Inputs: []string{fix.data}, Store: fix.small, CPUs: 2,
		MemBytes: partition.MinMemBytes, HeavyMinRows: 500, Shards: 16, BlockBytes: 2 << 10, Logger: quiet,
		// As mce partition reads: amounts and dates checked, and the
		// files' times found to have no zone.
		Read: csvread.Options{CheckValues: true}}); err != nil {
		return fmt.Errorf("partition small store: %w", err)
	}
	outDir := filepath.Join(tmpRoot, "runs")
	for bin, dst := range map[string]*string{mceBin: &fix.runDir, userBin: &fix.userRunDir} {
		args := append(append([]string{"run"}, fix.files...), "--out", outDir, "--job", filepath.Base(bin), "--no-progress")
		cmd := exec.Command(bin, args...)
		var so bytes.Buffer
		cmd.Stdout = &so
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s run: %v\n%s", filepath.Base(bin), err, so.String())
		}
		m := runFolderRE.FindStringSubmatch(so.String())
		if m == nil {
			return fmt.Errorf("%s run printed no run folder:\n%s", filepath.Base(bin), so.String())
		}
		*dst = m[1]
	}
	return nil
}

var runFolderRE = regexp.MustCompile(`(?m)^run folder: (.*)$`)

// featureFiles lists the features files of a run folder by name.
func featureFiles(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*"+fileid.FeaturesSuffix))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	sort.Strings(names)
	return names
}

// sameFiles checks that the named features files of two run folders are
// byte-identical (only names, when given).
func sameFiles(t *testing.T, runDir, redDir string, only ...string) {
	t.Helper()
	want := featureFiles(t, runDir)
	if len(only) > 0 {
		want = only
	}
	got := featureFiles(t, redDir)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("features files %v, want %v", got, want)
	}
	for _, name := range want {
		a, err := os.ReadFile(filepath.Join(runDir, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(redDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: reduce differs from run (%d vs %d bytes); first difference: %s", name, len(b), len(a), firstDiff(a, b))
		}
	}
}

func firstDiff(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < min(len(la), len(lb)); i++ {
		if la[i] != lb[i] {
			return fmt.Sprintf("line %d: run %q, reduce %q", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("run has %d lines, reduce %d", len(la), len(lb))
}

// checkPhases checks status.log: the heavy users are handed out first,
// and every merge starts after the last store-reading task finished.
func checkPhases(t *testing.T, dir string) {
	t.Helper()
	var assigned []string
	lastRead, firstMerge := -1, -1
	for i, ln := range strings.Split(e2etest.ReadLog(t, dir, engine.StatusLog), "\n") {
		isRead := strings.Contains(ln, "#shards ")
		switch {
		case strings.Contains(ln, ") -> cluster"):
			assigned = append(assigned, ln)
			if !isRead && firstMerge < 0 {
				firstMerge = i
			}
		case isRead && strings.Contains(ln, ") done on cluster"):
			lastRead = i
		}
	}
	if len(assigned) == 0 || !strings.Contains(assigned[0], " heavy users (#0)") {
		t.Errorf("the first task handed out is not the heavy users': %q", assigned)
	}
	if firstMerge < 0 || lastRead < 0 || firstMerge < lastRead {
		t.Errorf("a merge started (line %d) before the last store task ended (line %d)", firstMerge+1, lastRead+1)
	}
}

// TestReduce_twoClusters: two clusters read one store at the same time
// (readers share its lock) and the outputs are byte-identical to `mce
// run`'s.
func TestReduce_twoClusters(t *testing.T) {
	f := setup(t)
	r := e2etest.Run(t, mceBin, reduceArgs(f.store, t.TempDir(), "red", "--clusters", "1,1")...)
	if r.Code != 0 {
		t.Fatalf("exit %d", r.Code)
	}
	sameFiles(t, f.runDir, r.RunDir)
	clusters := map[string]bool{}
	for _, ln := range strings.Split(e2etest.ReadLog(t, r.RunDir, engine.StatusLog), "\n") {
		if _, c, ok := strings.Cut(ln, ") done on cluster "); ok && strings.Contains(ln, "#shards ") {
			clusters[strings.SplitN(c, ":", 2)[0]] = true
		}
	}
	if len(clusters) != 2 {
		t.Errorf("the store was read by clusters %v, want 0 and 1", clusters)
	}
	if strings.Contains(r.Stdout, "instead of") {
		t.Errorf("reduce fell back to one cluster:\n%s", r.Stdout)
	}
}

func reduceArgs(store, out, job string, flags ...string) []string {
	return append([]string{"reduce", "--store", store, "--out", out, "--job", job, "--no-progress", "--poll", "100ms"}, flags...)
}

// TestReduce_sameAsRun: the built-in features from both stores are
// byte-identical to `mce run`'s, the heavy user is read first (and split
// into chunks reduced on both CPUs in the small store), merges come after
// the store is read, and the part files are gone afterwards.
func TestReduce_sameAsRun(t *testing.T) {
	f := setup(t)
	for _, st := range []string{f.store, f.small} {
		t.Run(filepath.Base(st), func(t *testing.T) {
			r := e2etest.Run(t, mceBin, reduceArgs(st, t.TempDir(), "red", "--clusters", "2")...)
			if r.Code != 0 {
				t.Fatalf("exit %d", r.Code)
			}
			if got := e2etest.LastLine(r.Stdout); got != "all 4 files ok" {
				t.Errorf("last line %q", got)
			}
			sameFiles(t, f.runDir, r.RunDir)
			checkPhases(t, r.RunDir)
			if _, err := os.Stat(filepath.Join(r.RunDir, reduce.PartsDir)); !os.IsNotExist(err) {
				t.Errorf("%s left after a complete run (%v)", reduce.PartsDir, err)
			}
			for _, name := range []string{engine.FailureLog, engine.RAMLog, engine.TimingsCSV, engine.PlanJSON} {
				if _, err := os.Stat(filepath.Join(r.RunDir, name)); err != nil {
					t.Errorf("no %s: %v", name, err)
				}
			}
			s := e2etest.ReadSummary(t, r.RunDir)
			var rows int64
			split := 0
			for _, ts := range s.Tasks {
				if ts.Result != nil {
					rows += ts.Result.Rows
					split += ts.Result.SplitUsers
				}
			}
			var want int64
			for _, tr := range f.truth {
				want += tr.Rows
			}
			if rows != want {
				t.Errorf("read %d rows from the store, the data has %d", rows, want)
			}
			if st == f.small && split == 0 {
				t.Errorf("no heavy user was split into chunks in the small store")
			}
		})
	}
}

// TestReduce_userFeatures: a user's feature set (not mergeable, sensitive
// to row order, decoding cp1252 text) gives byte-identical files in both
// modes, also with a Map that drops rows.
func TestReduce_userFeatures(t *testing.T) {
	f := setup(t)
	for _, st := range []string{f.store, f.small} {
		r := e2etest.Run(t, userBin, reduceArgs(st, t.TempDir(), "user", "--clusters", "2")...)
		if r.Code != 0 {
			t.Fatalf("exit %d", r.Code)
		}
		sameFiles(t, f.userRunDir, r.RunDir)
	}
	out := t.TempDir()
	run := e2etest.Run(t, userBin, append(append([]string{"run"}, f.files...), "--out", out, "--job", "run", "--no-progress", "--param", "min_cents=20000")...)
	red := e2etest.Run(t, userBin, reduceArgs(f.small, out, "red", "--param", "min_cents=20000")...)
	if run.Code != 0 || red.Code != 0 {
		t.Fatalf("exit %d and %d", run.Code, red.Code)
	}
	sameFiles(t, run.RunDir, red.RunDir)
	s := e2etest.ReadSummary(t, red.RunDir)
	var dropped int64
	for _, ts := range s.Tasks {
		if ts.Result != nil && strings.HasSuffix(ts.Output, fileid.FeaturesSuffix) {
			dropped += ts.Result.DroppedRows
		}
	}
	if dropped == 0 {
		t.Errorf("Map dropped no rows")
	}
}

type tally struct {
	rows, cents int64
}

// readAcross reads an --across-files features file: user -> invoice count
// (column count) and amount in cents (column amount).
func readAcross(t *testing.T, path, count, amount string, cents bool) map[string]tally {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	hdr, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range hdr {
		col[h] = i
	}
	out := map[string]tally{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		n, err1 := strconv.ParseInt(rec[col[count]], 10, 64)
		var c int64
		var err2 error
		if cents {
			c, err2 = strconv.ParseInt(rec[col[amount]], 10, 64)
		} else {
			var v float64
			v, err2 = strconv.ParseFloat(rec[col[amount]], 64)
			c = int64(math.Round(v * 100))
		}
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: bad line %q", path, rec)
		}
		out[rec[0]] = tally{n, c}
	}
}

// truthAcross sums the truth over the given files (all when none).
func truthAcross(truth []gen.Truth, files ...string) map[string]tally {
	out := map[string]tally{}
	for _, tr := range truth {
		if len(files) > 0 && !contains(files, tr.File) {
			continue
		}
		v := out[tr.User]
		v.rows += tr.Rows
		v.cents += tr.AmountCents
		out[tr.User] = v
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func checkTally(t *testing.T, what string, got, want map[string]tally) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d users, want %d", what, len(got), len(want))
	}
	bad := 0
	for u, w := range want {
		if g, ok := got[u]; !ok || g != w {
			if bad++; bad <= 3 {
				t.Errorf("%s: user %q: got %+v (found %v), want %+v", what, u, g, ok, w)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d users differ from the truth", what, bad)
	}
}

// TestReduce_acrossFiles: --across-files gives one line per user with the
// truth summed over the files (built-in, mergeable, and the user's set);
// --files picks a subset, per file (identical to mce run's files) and
// across files.
func TestReduce_acrossFiles(t *testing.T) {
	f := setup(t)
	out := t.TempDir()
	r := e2etest.Run(t, mceBin, reduceArgs(f.small, out, "all", "--across-files")...)
	if r.Code != 0 {
		t.Fatalf("exit %d", r.Code)
	}
	if got := featureFiles(t, r.RunDir); len(got) != 1 || got[0] != reduce.AcrossFilesOutput {
		t.Fatalf("features files %v, want %s", got, reduce.AcrossFilesOutput)
	}
	checkTally(t, "built-in across files", readAcross(t, filepath.Join(r.RunDir, reduce.AcrossFilesOutput), "invoice_count", "amount_total", false), truthAcross(f.truth))

	u := e2etest.Run(t, userBin, reduceArgs(f.store, out, "userall", "--across-files")...)
	if u.Code != 0 {
		t.Fatalf("exit %d", u.Code)
	}
	checkTally(t, "userfeat across files", readAcross(t, filepath.Join(u.RunDir, reduce.AcrossFilesOutput), "rows", "amount_cents", true), truthAcross(f.truth))

	// A subset: the gzip file (by base name) and the largest file.
	var gz string
	for _, p := range f.files {
		if strings.HasSuffix(p, ".gz") {
			gz = filepath.Base(p)
		}
	}
	big := filepath.Base(f.files[0])
	if gz == "" || gz == big {
		t.Fatalf("no gzip file apart from the largest among %v", f.files)
	}
	sub := e2etest.Run(t, mceBin, reduceArgs(f.store, out, "sub", "--files", gz+","+big)...)
	if sub.Code != 0 {
		t.Fatalf("exit %d", sub.Code)
	}
	if got := e2etest.LastLine(sub.Stdout); got != "all 2 files ok" {
		t.Errorf("last line %q", got)
	}
	sameFiles(t, f.runDir, sub.RunDir, sortedNames(fileid.FeaturesName(big), fileid.FeaturesName(gz))...)

	sa := e2etest.Run(t, mceBin, reduceArgs(f.small, out, "suball", "--across-files", "--files", gz, "--files", big)...)
	if sa.Code != 0 {
		t.Fatalf("exit %d", sa.Code)
	}
	checkTally(t, "subset across files", readAcross(t, filepath.Join(sa.RunDir, reduce.AcrossFilesOutput), "invoice_count", "amount_total", false), truthAcross(f.truth, gz, big))

	bad := e2etest.Run(t, mceBin, reduceArgs(f.store, out, "bad", "--files", "nosuch.csv")...)
	if bad.Code == 0 || !strings.Contains(bad.Stderr, "nosuch.csv") {
		t.Errorf("--files nosuch.csv: exit %d, stderr %q", bad.Code, e2etest.Tail(bad.Stderr, 300))
	}
}

func sortedNames(names ...string) []string {
	sort.Strings(names)
	return names
}

// TestReduce_panicOnUser: a feature function that panics on one user
// fails the files of that user, with the user and the file in
// failure.log; the other files complete, identical to mce run's. The
// same for the heavy user, read in its own task.
func TestReduce_panicOnUser(t *testing.T) {
	f := setup(t)
	// A normal user in only some of the files, and the heavy user.
	filesOf := map[string][]string{}
	rows := map[string]int64{}
	for _, tr := range f.truth {
		filesOf[tr.User] = append(filesOf[tr.User], tr.File)
		rows[tr.User] += tr.Rows
	}
	var users []string
	for u := range filesOf {
		users = append(users, u)
	}
	sort.Strings(users)
	normal, heavy := "", users[0]
	for _, u := range users {
		if rows[u] > rows[heavy] {
			heavy = u
		}
		if normal == "" && len(filesOf[u]) == 2 && !strings.ContainsAny(u, `",`) {
			normal = u
		}
	}
	if normal == "" {
		t.Fatal("no user in exactly two files")
	}
	for _, c := range []struct {
		name, user string
		store      string
	}{{"normal", normal, f.store}, {"heavy", heavy, f.small}} {
		t.Run(c.name, func(t *testing.T) {
			r := e2etest.Run(t, userBin, reduceArgs(c.store, t.TempDir(), "panic", "--param", "panic_user="+c.user)...)
			failed := filesOf[c.user]
			if r.Code != 1 {
				t.Errorf("exit %d, want 1", r.Code)
			}
			if want := fmt.Sprintf("%d of 4 files failed", len(failed)); e2etest.LastLine(r.Stdout) != want {
				t.Errorf("last line %q, want %q", e2etest.LastLine(r.Stdout), want)
			}
			flog := e2etest.ReadLog(t, r.RunDir, engine.FailureLog)
			for _, file := range failed {
				re := regexp.MustCompile(`(?m)^\S+ cluster \d+ file \S*` + regexp.QuoteMeta(file) + ` user ` + regexp.QuoteMeta(strconv.Quote(c.user)) + `: panic: userfeat: refusing user`)
				if !re.MatchString(flog) {
					t.Errorf("failure.log does not name file %s and user %q:\n%s", file, c.user, e2etest.Tail(flog, 2000))
				}
			}
			var ok []string
			for _, p := range f.files {
				if !contains(failed, filepath.Base(p)) {
					ok = append(ok, fileid.FeaturesName(p))
				}
			}
			sort.Strings(ok)
			if len(ok) == 0 {
				if got := featureFiles(t, r.RunDir); len(got) > 0 {
					t.Errorf("features files %v of failed files", got)
				}
				return
			}
			sameFiles(t, f.userRunDir, r.RunDir, ok...)
		})
	}
}

// TestReduce_rekey: a Map that re-keys rows is refused with a clear error
// before any cluster starts.
func TestReduce_rekey(t *testing.T) {
	f := setup(t)
	r := e2etest.Run(t, userBin, reduceArgs(f.store, t.TempDir(), "rekey", "--param", "rekey=1")...)
	if r.Code == 0 {
		t.Fatal("exit 0")
	}
	msg := strings.TrimSpace(r.Stderr)
	if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "mce: ") || !strings.Contains(msg, "re-keys") || !strings.Contains(msg, "use mce run") {
		t.Errorf("want one clear line, got %q", msg)
	}
	if r.RunDir != "" {
		t.Errorf("a run folder was made: %s", r.RunDir)
	}
}

// TestReduce_badStore: a missing store, a folder that is no store, a store
// of another format version and corrupt stores give one clear line and a
// non-zero exit, never a panic.
func TestReduce_badStore(t *testing.T) {
	f := setup(t)
	dir := t.TempDir()
	copyStore := func(name string, edit func(st string)) string {
		st := filepath.Join(dir, name)
		if err := os.CopyFS(st, os.DirFS(f.store)); err != nil {
			t.Fatal(err)
		}
		edit(st)
		return st
	}
	manifest := func(st string) string { return filepath.Join(st, "MANIFEST.json") }
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	for _, c := range []struct {
		name, store, want string
	}{
		{"missing", filepath.Join(dir, "nosuch"), "no store"},
		{"empty", empty, "no store"},
		{"version", copyStore("version", func(st string) {
			b, err := os.ReadFile(manifest(st))
			if err != nil {
				t.Fatal(err)
			}
			b = regexp.MustCompile(`"format": *\d+`).ReplaceAll(b, []byte(`"format": 99`))
			os.WriteFile(manifest(st), b, 0o644)
		}), "format version 99"},
		{"garbage manifest", copyStore("garbage", func(st string) {
			os.WriteFile(manifest(st), []byte("{not json"), 0o644)
		}), "corrupt"},
		{"no database", copyStore("nodb", func(st string) {
			os.RemoveAll(filepath.Join(st, "db"))
		}), "corrupt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e2etest.Run(t, mceBin, reduceArgs(c.store, dir, "bad")...)
			msg := strings.TrimSpace(r.Stderr)
			if r.Code == 0 || strings.Contains(msg, "\n") || !strings.Contains(msg, c.want) {
				t.Errorf("exit %d, stderr %q: want one line with %q", r.Code, msg, c.want)
			}
			if strings.Contains(r.Stderr, "panic") || strings.Contains(r.Stderr, "goroutine ") {
				t.Errorf("panic: %s", r.Stderr)
			}
		})
	}

	// Damaged tables are found while reading: the tasks that read them
	// fail (failure.log says why), the outputs they feed fail, nothing
	// panics.
	t.Run("damaged tables", func(t *testing.T) {
		st := copyStore("damaged", func(st string) {
			tables, _ := filepath.Glob(filepath.Join(st, "db", "*.sst"))
			for _, p := range tables {
				fi, err := os.Stat(p)
				if err != nil || fi.Size() < 64<<10 {
					continue
				}
				fh, err := os.OpenFile(p, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				fh.WriteAt(bytes.Repeat([]byte{0x5a}, 16<<10), fi.Size()/3)
				fh.Close()
			}
		})
		r := e2etest.Run(t, mceBin, reduceArgs(st, dir, "damaged")...)
		if r.Code != 1 || e2etest.LastLine(r.Stdout) == "all 4 files ok" {
			t.Errorf("exit %d, last line %q", r.Code, e2etest.LastLine(r.Stdout))
		}
		if r.RunDir == "" || !strings.Contains(e2etest.ReadLog(t, r.RunDir, engine.FailureLog), "corrupt") {
			t.Errorf("failure.log does not say the store is corrupt")
		}
		if strings.Contains(r.Stderr, "goroutine ") {
			t.Errorf("panic: %s", e2etest.Tail(r.Stderr, 2000))
		}
	})
}

// TestReduce_resume: --resume of a run folder whose features file was
// lost reads the store again and writes it identical; the others are
// skipped. A complete run resumes to nothing.
func TestReduce_resume(t *testing.T) {
	f := setup(t)
	r := e2etest.Run(t, mceBin, reduceArgs(f.store, t.TempDir(), "res")...)
	if r.Code != 0 {
		t.Fatalf("exit %d", r.Code)
	}
	lost := fileid.FeaturesName(f.files[1])
	if err := os.Remove(filepath.Join(r.RunDir, lost)); err != nil {
		t.Fatal(err)
	}
	again := e2etest.Run(t, mceBin, "reduce", "--resume", r.RunDir, "--no-progress")
	if again.Code != 0 {
		t.Fatalf("resume: exit %d", again.Code)
	}
	sameFiles(t, f.runDir, r.RunDir)
	s := e2etest.ReadSummary(t, r.RunDir)
	if s.Skipped != 3 || s.Done == 0 {
		t.Errorf("resume: %d done, %d skipped; want 3 features files skipped and the store read again", s.Done, s.Skipped)
	}
	done := e2etest.Run(t, mceBin, "reduce", "--resume", r.RunDir, "--no-progress")
	if done.Code != 0 || e2etest.ReadSummary(t, r.RunDir).Done != 0 {
		t.Errorf("resume of a complete run: exit %d, %d tasks done", done.Code, e2etest.ReadSummary(t, r.RunDir).Done)
	}
}

// TestReduce_prefork: `mce reduce` takes the cluster process mce started
// while it initialised as its cluster 0 (with the two malloc arenas its
// clusters get), and its features are mce run's; with MALLOC_ARENA_MAX
// set by the user the early process has no arenas of its own to add and
// is taken too.
func TestReduce_prefork(t *testing.T) {
	f := setup(t)
	adoptedRE := regexp.MustCompile(`msg="cluster process started with mce, before its command line was read" cluster=0 pid=(\d+)`)
	startedRE := regexp.MustCompile(`cluster 0 started: pid (\d+)`)
	for _, arenas := range []string{"", "4"} {
		t.Setenv("MALLOC_ARENA_MAX", arenas)
		r := e2etest.Run(t, mceBin, append([]string{"--log-level", "debug"}, reduceArgs(f.store, t.TempDir(), "red")...)...)
		if r.Code != 0 {
			t.Fatalf("MALLOC_ARENA_MAX=%q: exit %d", arenas, r.Code)
		}
		sameFiles(t, f.runDir, r.RunDir)
		m := adoptedRE.FindStringSubmatch(r.Stderr)
		s := startedRE.FindStringSubmatch(e2etest.ReadLog(t, r.RunDir, engine.StatusLog))
		if m == nil || s == nil || m[1] != s[1] {
			t.Errorf("MALLOC_ARENA_MAX=%q: the early process %v is not cluster 0 (%v); stderr:\n%s", arenas, m, s, e2etest.Tail(r.Stderr, 3000))
		}
	}
}

// TestReduce_manyFiles: with more input files than the first merge task
// merges at once (mergesAtOnce), every features file is still written,
// byte-identical to `mce run`'s, and every merge task ends ok.
func TestReduce_manyFiles(t *testing.T) {
	setup(t)
	ctx := context.Background()
	data := filepath.Join(t.TempDir(), "data")
	const files = 20
	if _, err := gen.Run(ctx, gen.Options{Dir: data, Seed: 21, Files: files, Size: gen.Size{Rows: 40_000},
		NoSync: true, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	if files <= 8 { // mergesAtOnce on the 2 CPUs below
		t.Fatal("too few files to test the merges' bound")
	}
	st := filepath.Join(t.TempDir(), "store")
	if out, err := exec.Command(mceBin, "partition", data, "--out", st, "--heavy-min-rows", "500").CombinedOutput(); err != nil {
		t.Fatalf("mce partition: %v\n%s", err, out)
	}
	run := e2etest.Run(t, mceBin, "run", data, "--out", t.TempDir(), "--job", "run", "--no-progress")
	red := e2etest.Run(t, mceBin, reduceArgs(st, t.TempDir(), "red", "--clusters", "2")...)
	if run.Code != 0 || red.Code != 0 {
		t.Fatalf("exit codes: run %d, reduce %d", run.Code, red.Code)
	}
	if got, want := e2etest.LastLine(red.Stdout), fmt.Sprintf("all %d files ok", files); got != want {
		t.Errorf("reduce's last line %q, want %q", got, want)
	}
	if n := len(featureFiles(t, red.RunDir)); n != files {
		t.Errorf("%d features files, want %d", n, files)
	}
	sameFiles(t, run.RunDir, red.RunDir)
}
