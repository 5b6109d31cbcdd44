// Package e2e runs `mce beam` as a user does, on generated messy data, and
// checks that its features files are byte-identical to `mce run`'s.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"

	"github.com/mce-engine/mce/internal/csvread"
)

// The fixture every test shares: an mce binary built from this checkout,
// whose Beam builds take their source from the checkout (MCE_SOURCE), and
// generated messy data.
var (
	root string // the checkout
	work string // the tests' folder
	mce  string // the mce binary
	data string // `mce gen --messy` output
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if !testing.Verbose() {
		// The Prism job server's logs, in this process.
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	}
	if testing.Short() {
		return m.Run() // the tests skip themselves
	}
	var err error
	if root, err = filepath.Abs("../../.."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if work, err = os.MkdirTemp("", "mce-beam-e2e"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(work)
	mce = filepath.Join(work, "mce")
	build := exec.Command("go", "build", "-o", mce, "./cmd/mce")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build mce: %v\n%s", err, out)
		return 1
	}
	// The Beam builds use this checkout's source, not what a binary
	// embedded, and (unless MCE_CACHE says where) a cache of their own.
	os.Setenv("MCE_SOURCE", root)
	if os.Getenv("MCE_CACHE") == "" {
		os.Setenv("MCE_CACHE", filepath.Join(work, "cache"))
	}
	data = filepath.Join(work, "data")
	if out, err := exec.Command(mce, "gen", "--out", data, "--seed", "7", "--files", "4", "--size", "3MB", "--messy").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "mce gen: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds mce and the Beam pipeline")
	}
}

// mceCmd runs mce and returns its stdout and stderr; fail says whether a
// non-zero exit is an error.
func mceCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(mce, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("mce %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), 0
}

func mustMce(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := mceCmd(t, args...)
	if code != 0 {
		t.Fatalf("mce %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out + errOut
}

// featureSets are the three feature files the Beam pipeline must match
// `mce run` on: the built-in (mergeable: CombinePerKey), the receivers
// example (Map re-keys by receiver and drops rows, Reduce, --param) and a
// Reduce whose features depend on the rows' file order.
var featureSets = []struct {
	name     string
	features string // relative to the checkout
	args     []string
}{
	{"builtin", "", nil},
	{"receivers", "examples/receivers/f.go", []string{"--param", "min_amount=10000"}},
	{"ordered", "engine/beam/testdata/ordered/f.go", nil},
}

func featureArgs(features string, args []string) []string {
	var a []string
	if features != "" {
		a = append(a, "--features", filepath.Join(root, features))
	}
	return append(a, args...)
}

// runReference runs `mce run` and returns its run folder.
func runReference(t *testing.T, features string, args []string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "run")
	a := append([]string{"run", "--out", out, "--job", "ref", "--no-progress"}, featureArgs(features, args)...)
	mustMce(t, append(a, data)...)
	return filepath.Join(out, "ref0")
}

// sameFeatures fails unless the beam folder has exactly the run folder's
// features files, byte for byte.
func sameFeatures(t *testing.T, runDir, beamDir string) {
	t.Helper()
	want, _ := filepath.Glob(filepath.Join(runDir, "*.features.csv"))
	got, _ := filepath.Glob(filepath.Join(beamDir, "*.features.csv"))
	if len(want) == 0 || len(want) != len(got) {
		t.Fatalf("mce run wrote %d features files, mce beam %d", len(want), len(got))
	}
	for _, w := range want {
		name := filepath.Base(w)
		a, _ := os.ReadFile(w)
		b, err := os.ReadFile(filepath.Join(beamDir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(a, b) {
			al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
			for i := range min(len(al), len(bl)) {
				if al[i] != bl[i] {
					t.Errorf("%s differs at line %d:\nmce run  %s\nmce beam %s", name, i+1, al[i], bl[i])
					break
				}
			}
			if len(al) != len(bl) {
				t.Errorf("%s: mce run %d lines, mce beam %d", name, len(al), len(bl))
			}
		}
	}
}

type runSummary struct {
	Rows    int64 `json:"rows"`
	BadRows int64 `json:"bad_rows"`
}

type beamSummary struct {
	Rows     int64            `json:"rows"`
	BadRows  int64            `json:"bad_rows"`
	Counters map[string]int64 `json:"counters"`
	Outputs  []struct {
		Output string `json:"output"`
		Inputs []struct {
			Input   string `json:"input"`
			BadRows int64  `json:"bad_rows"`
		} `json:"inputs"`
	} `json:"outputs"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// jobServer starts a Prism job server in this process, as the standalone
// job server of a Flink or Spark cluster would be, and returns its
// address for --runner universal --endpoint.
func jobServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if _, err := prism.CreateJobServer(ctx, prism.Options{Port: port}); err != nil {
		t.Fatalf("start a Prism job server: %v", err)
	}
	return "localhost:" + strconv.Itoa(port)
}

// TestData checks that the generated data is as messy as the tests say.
func TestData(t *testing.T) {
	skipShort(t)
	names, _ := filepath.Glob(filepath.Join(data, "*"))
	var gz, zst bool
	for _, n := range names {
		gz = gz || strings.HasSuffix(n, ".gz")
		zst = zst || strings.HasSuffix(n, ".zst")
	}
	truth, _ := os.ReadFile(filepath.Join(data, "_truth_files.csv"))
	if !gz || !zst || !strings.Contains(string(truth), "cp1252") {
		t.Errorf("want .gz, .zst and cp1252 files; have %v\n%s", names, truth)
	}
	ins, err := csvread.ListInputs([]string{data})
	if err != nil {
		t.Fatal(err)
	}
	var bad int64
	multiline := false
	for _, in := range ins {
		f, err := csvread.Open(in.Path, csvread.Options{MaxBadRowShare: -1})
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.Scan(context.Background(), 1, func(*csvread.Batch) error { return nil })
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		bad += st.BadRows
		// More physical lines than rows (header, bad rows, empty lines
		// aside): some quoted field holds a line break.
		multiline = multiline || st.Lines > st.Rows+st.BadRows+3
	}
	if bad == 0 || !multiline {
		t.Errorf("want bad rows and quoted newlines: %d bad rows, multiline %v", bad, multiline)
	}
}

// TestBeam_SameAsRun is the check: on messy data, `mce beam` on
// Prism gives the features files `mce run` gives, byte for byte, for the
// built-in set, the receivers example and a Reduce that depends on row
// order; in-process Prism and a job server reached by the universal
// runner (the path of Flink's and Spark's job servers).
func TestBeam_SameAsRun(t *testing.T) {
	skipShort(t)
	endpoint := jobServer(t)
	for _, fs := range featureSets {
		t.Run(fs.name, func(t *testing.T) {
			ref := runReference(t, fs.features, fs.args)
			var want runSummary
			readJSON(t, filepath.Join(ref, "summary.json"), &want)
			for _, r := range []struct {
				name string
				args []string
			}{
				{"prism", nil},
				{"jobserver", []string{"--runner", "universal", "--endpoint", endpoint, "--environment_type=LOOPBACK"}},
			} {
				t.Run(r.name, func(t *testing.T) {
					out := filepath.Join(t.TempDir(), "beam")
					a := append([]string{"beam", "--out", out}, featureArgs(fs.features, fs.args)...)
					a = append(a, r.args...)
					mustMce(t, append(a, data)...)
					sameFeatures(t, ref, out)
					var got beamSummary
					readJSON(t, filepath.Join(out, "summary.json"), &got)
					if got.Rows != want.Rows || got.BadRows != want.BadRows || got.BadRows == 0 {
						t.Errorf("summary: %d rows, %d bad; mce run: %d, %d", got.Rows, got.BadRows, want.Rows, want.BadRows)
					}
					for _, o := range got.Outputs {
						if len(o.Inputs) != 1 {
							t.Errorf("%s: %d inputs", o.Output, len(o.Inputs))
						}
					}
				})
			}
		})
	}
}

// TestBeam_HotUserFanOut: the bank (13% of the rows) is combined on
// several keys, and the features stay the same.
func TestBeam_HotUserFanOut(t *testing.T) {
	skipShort(t)
	ref := runReference(t, "", nil)
	out := filepath.Join(t.TempDir(), "beam")
	mustMce(t, "beam", "--out", out, "--hot-rows", "300", "--fanout", "4", data)
	sameFeatures(t, ref, out)
	var got beamSummary
	readJSON(t, filepath.Join(out, "summary.json"), &got)
	c := got.Counters
	// The bank is hot in each of the 4 files: 4 (file, user) keys fanned
	// out, each combined on up to 4 sub-keys.
	if c["fanout_users"] < 4 || c["fanout_parts_per_user_max"] < 2 || c["hot_rows"] == 0 {
		t.Errorf("the heavy user was not combined on several keys: counters %v", c)
	}
	t.Logf("counters: %v", c)
}

// TestBeam_AcrossFiles: one features file over all the files, as
// `mce reduce --across-files` writes it from a store of the same files.
func TestBeam_AcrossFiles(t *testing.T) {
	skipShort(t)
	store := filepath.Join(t.TempDir(), "store")
	mustMce(t, "partition", data, "--out", store)
	for _, fs := range []string{"", "engine/beam/testdata/ordered/f.go"} {
		red := filepath.Join(t.TempDir(), "reduce")
		mustMce(t, append([]string{"reduce", "--store", store, "--across-files", "--out", red, "--job", "ref", "--no-progress"},
			featureArgs(fs, nil)...)...)
		out := filepath.Join(t.TempDir(), "beam")
		mustMce(t, append(append([]string{"beam", "--across-files", "--out", out}, featureArgs(fs, nil)...), data)...)
		sameFeatures(t, filepath.Join(red, "ref0"), out)
	}
}

// TestBeam_PanicFailsJob: a feature function that panics on one user
// fails the job; the error names the file and the user, and the output
// folder holds nothing that looks complete.
func TestBeam_PanicFailsJob(t *testing.T) {
	skipShort(t)
	user := heavyUser(t)
	out := filepath.Join(t.TempDir(), "beam")
	_, errOut, code := mceCmd(t, append(append([]string{"beam", "--out", out},
		featureArgs("engine/beam/testdata/ordered/f.go", []string{"--param", "panic_user=" + user})...), data)...)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errOut)
	}
	_, first, _ := strings.Cut(errOut, "mce beam: ")
	first, _, _ = strings.Cut(first, "\n")
	if !strings.Contains(first, "invoices_2024_") || !strings.Contains(first, fmt.Sprintf("user %q: reduce: panic: ordered: asked to fail", user)) {
		t.Errorf("the error's first line does not name the file and the user: %s", first)
	}
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		t.Errorf("a failed job left %s in its output folder", e.Name())
	}
}

// heavyUser returns the user with the most rows in the data (the bank).
func heavyUser(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "_truth.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{}
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Split(l, ",")
		if len(f) >= 3 {
			n, _ := strconv.Atoi(f[2])
			rows[f[1]] += n
		}
	}
	users := make([]string, 0, len(rows))
	for u := range rows {
		users = append(users, u)
	}
	slices.SortFunc(users, func(a, b string) int { return rows[b] - rows[a] })
	if len(users) == 0 {
		t.Fatal("no users in _truth.csv")
	}
	return users[0]
}

func TestBeam_Errors(t *testing.T) {
	skipShort(t)
	f := func(name string, code int, want string, args ...string) {
		t.Helper()
		_, errOut, c := mceCmd(t, args...)
		if c != code || !strings.Contains(errOut, want) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s", name, c, code, want, errOut)
		}
	}
	out := filepath.Join(t.TempDir(), "out")
	f("unknown runner", 2, `--runner "spark": unknown runner`, "beam", "--runner", "spark", "--out", out, data)
	f("universal without endpoint", 2, "needs --endpoint", "beam", "--runner", "universal", "--out", out, data)
	f("no out", 2, "--out", "beam", data)
	f("bad param", 2, "want key=value", "beam", "--param", "nokey", "--out", out, data)

	broken := filepath.Join(t.TempDir(), "broken.go")
	os.WriteFile(broken, []byte(`package main

import "github.com/mce-engine/mce/engine/feature"

var Features = feature.Spec{
	Name:    "broken",
	Columns: []feature.Column{{Name: "n", Type: feature.TypeInt}},
	Reduce: func(u *feature.User, rows feature.Rows, out *feature.Record) error {
		return undefinedThing
	},
}
`), 0o644)
	f("compile error", 1, broken+":9:", "beam", "--features", broken, "--out", out, data)
}

// TestBeam_CachedStart: the second `mce beam` finds its binary built.
func TestBeam_CachedStart(t *testing.T) {
	skipShort(t)
	features := filepath.Join(root, "examples/receivers/f.go")
	run := func() (time.Duration, string) {
		out := filepath.Join(t.TempDir(), "beam")
		start := time.Now()
		log := mustMce(t, "beam", "--features", features, "--out", out, data)
		return time.Since(start), log
	}
	run() // built here or by an earlier test
	d, log := run()
	if strings.Contains(log, "building the Beam pipeline") {
		t.Errorf("the second run built again:\n%s", log)
	}
	t.Logf("second mce beam, cached binary: %.2fs in all (build check, job on Prism, commit)", d.Seconds())
}
