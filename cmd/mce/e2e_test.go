package main_test

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// mceBin is the mce binary built by TestMain, with its source embedded as
// `make build` does, so that --features works without the checkout.
var mceBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "mce-e2e")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		root, _ := filepath.Abs("../..")
		gen := exec.Command("go", "generate", "./internal/srctree")
		gen.Dir = root
		if out, err := gen.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go generate: %v\n%s", err, out)
			return 1
		}
		mceBin = filepath.Join(dir, "mce")
		build := exec.Command("go", "build", "-o", mceBin, "./cmd/mce")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// mce runs the binary in dir and returns stdout, stderr and the exit code.
func mce(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(mceBin, args...)
	cmd.Dir = dir
	cmd.Env = append(withoutEnv(os.Environ(), "MCE_SOURCE"), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run mce %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

func withoutEnv(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func repo(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("../..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// outsideCheckout makes a working folder outside the repository with a
// copy of the example features file, and a private features cache.
func outsideCheckout(t *testing.T) (dir string, env []string) {
	t.Helper()
	dir = t.TempDir()
	src, err := os.ReadFile(repo(t, "examples/receivers/f.go"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, []string{"MCE_CACHE=" + filepath.Join(os.TempDir(), "mce-e2e-cache")}
}

// goldenData copies the golden input into dir/data.
func goldenData(t *testing.T, dir string) {
	t.Helper()
	data := filepath.Join(dir, "data")
	in, err := os.ReadFile(repo(t, goldenInput))
	if err == nil {
		if err = os.MkdirAll(data, 0o755); err == nil {
			err = os.WriteFile(filepath.Join(data, filepath.Base(goldenInput)), in, 0o644)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestE2E_HelpOnEveryCommand(t *testing.T) {
	out, _, code := mce(t, ".", nil, "--help")
	if code != 0 {
		t.Fatalf("mce --help exit %d", code)
	}
	var cmds []string
	inCommands := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "COMMANDS:"):
			inCommands = true
		case inCommands && strings.TrimSpace(line) == "":
			inCommands = false
		case inCommands:
			name := strings.TrimSuffix(strings.Fields(line)[0], ",")
			if name != "help" {
				cmds = append(cmds, name)
			}
		}
	}
	if len(cmds) < 3 {
		t.Fatalf("too few commands in --help:\n%s", out)
	}
	for _, c := range cmds {
		out, stderr, code := mce(t, ".", nil, c, "--help")
		if code != 0 || !strings.Contains(strings.ToLower(out+stderr), "usage") {
			t.Errorf("mce %s --help: exit %d\n%s", c, code, out)
		}
	}
}

func TestE2E_FeaturesOutsideCheckout(t *testing.T) {
	dir, env := outsideCheckout(t)
	out, stderr, code := mce(t, dir, env, "features", "--features", "f.go")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"feature set: receivers", "map step: true", "large_invoices"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestE2E_CompileErrorNamesLine(t *testing.T) {
	dir, env := outsideCheckout(t)
	src := "package main\n\nimport \"github.com/mce-engine/mce/engine/feature\"\n\n" +
		"var Features = feature.Spec{Name: \"x\", Columns: []feature.Column{{Name: \"n\", Type: feature.TypeInt}},\n" +
		"\tReduce: func(u *feature.User, rows feature.Rows, out *feature.Record) error {\n" +
		"\t\tout.SetInt(\"n\", \"not a number\")\n" +
		"\t\treturn nil\n\t}}\n"
	os.WriteFile(filepath.Join(dir, "broken.go"), []byte(src), 0o644)
	_, stderr, code := mce(t, dir, env, "features", "--features", "broken.go")
	if code == 0 {
		t.Fatal("broken f.go compiled")
	}
	if !strings.Contains(stderr, "broken.go:7:") {
		t.Errorf("compile error does not name broken.go:7:\n%s", stderr)
	}
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := repo(t, filepath.Join("testdata/golden", name))
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/mce -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden:\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

const goldenInput = "testdata/golden/invoices_2024_03.csv"

// readGoldenInput reads the golden invoices with encoding/csv, decoding
// cp1252: an independent reader for checking mce's figures.
func readGoldenInput(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile(repo(t, goldenInput))
	if err != nil {
		t.Fatal(err)
	}
	utf, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(utf)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs[1:] // invoice_id,rfc_emisor,receiver,issued_at,importe,currency,descripcion
}

func parseCSV(t *testing.T, s string) map[string][]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	out := map[string][]string{}
	for _, r := range recs[1:] {
		out[r[0]] = r
	}
	return out
}

func TestE2E_DebugExampleOnGolden(t *testing.T) {
	dir, env := outsideCheckout(t)
	out, stderr, code := mce(t, dir, env, "debug", "--features", "f.go", "--param", "min_amount=500",
		repo(t, goldenInput))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	golden(t, "receivers.csv", out)

	// The same figures, computed independently from encoding/csv.
	type agg struct {
		n, large int
		cents    int64
		issuers  map[string]bool
	}
	want := map[string]*agg{}
	for _, r := range readGoldenInput(t) {
		if r[5] != "MXN" {
			continue
		}
		a := want[r[2]]
		if a == nil {
			a = &agg{issuers: map[string]bool{}}
			want[r[2]] = a
		}
		f, _ := strconv.ParseFloat(r[4], 64)
		a.n++
		a.cents += int64(math.Round(f * 100))
		if f >= 500 {
			a.large++
		}
		a.issuers[r[1]] = true
	}
	got := parseCSV(t, out)
	if len(got) != len(want) {
		t.Errorf("%d receivers, want %d", len(got), len(want))
	}
	for rcv, a := range want {
		g := got[rcv]
		if g == nil {
			t.Errorf("receiver %s missing", rcv)
			continue
		}
		wantRow := []string{rcv, strconv.Itoa(a.n), strconv.FormatFloat(float64(a.cents)/100, 'g', -1, 64),
			strconv.Itoa(len(a.issuers)), strconv.Itoa(a.large)}
		if strings.Join(g[:5], ",") != strings.Join(wantRow, ",") {
			t.Errorf("receiver %s: got %v, want %v", rcv, g[:5], wantRow)
		}
	}
}

// TestE2E_ParamReachesFeature runs the example with two values of
// --param min_amount: all invoices are large at 0, none at 1e12.
func TestE2E_ParamReachesFeature(t *testing.T) {
	dir, env := outsideCheckout(t)
	for _, tc := range []struct {
		param string
		all   bool
	}{{"min_amount=0", true}, {"min_amount=1e12", false}} {
		out, stderr, code := mce(t, dir, env, "debug", "--features", "f.go", "--param", tc.param, repo(t, goldenInput))
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		for rcv, r := range parseCSV(t, out) {
			want := "0"
			if tc.all {
				want = r[1]
			}
			if r[4] != want {
				t.Errorf("%s: receiver %s large_invoices=%s, want %s", tc.param, rcv, r[4], want)
			}
		}
	}
	// A bad value reaches the function too, which fails with it.
	_, stderr, code := mce(t, dir, env, "debug", "--features", "f.go", "--param", "min_amount=lots", repo(t, goldenInput))
	if code == 0 || !strings.Contains(stderr, "min_amount") {
		t.Errorf("bad param: exit %d\n%s", code, stderr)
	}
}

func TestE2E_DebugBuiltinOnGolden(t *testing.T) {
	out, stderr, code := mce(t, ".", nil, "debug", repo(t, goldenInput))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	golden(t, "invoice.csv", out)
	// Counts and totals per issuer, independently.
	counts := map[string]int{}
	cents := map[string]int64{}
	for _, r := range readGoldenInput(t) {
		counts[r[1]]++
		f, _ := strconv.ParseFloat(r[4], 64)
		cents[r[1]] += int64(math.Round(f * 100))
	}
	got := parseCSV(t, out)
	var users []string
	for u := range counts {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		g := got[u]
		if g == nil {
			t.Errorf("user %s missing (have %v)", u, keys(got))
			continue
		}
		if g[1] != strconv.Itoa(counts[u]) || g[2] != strconv.FormatFloat(float64(cents[u])/100, 'g', -1, 64) {
			t.Errorf("user %s: count,total = %s,%s; want %d,%v", u, g[1], g[2], counts[u], float64(cents[u])/100)
		}
	}
}

func keys(m map[string][]string) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

var _ = io.Discard

// TestE2E_RunFeaturesOutsideCheckout runs the example features file
// through `mce run` (clusters and all) from a folder outside the checkout,
// and through the built-in set: the features files equal the golden ones
// that `mce debug` (one process, no clusters) gives.
func TestE2E_RunFeaturesOutsideCheckout(t *testing.T) {
	dir, env := outsideCheckout(t)
	goldenData(t, dir)
	for _, tc := range []struct {
		args   []string
		golden string
	}{
		{[]string{"--features", "f.go", "--param", "min_amount=500"}, "receivers.csv"},
		{nil, "invoice.csv"},
	} {
		args := append([]string{"run", "--out", "out", "--job", "j", "--clusters", "1,1"}, tc.args...)
		args = append(args, "data")
		stdout, stderr, code := mce(t, dir, env, args...)
		if code != 0 {
			t.Fatalf("mce %v: exit %d\n%s\n%s", args, code, stdout, stderr)
		}
		runs, _ := filepath.Glob(filepath.Join(dir, "out", "j*"))
		sort.Strings(runs)
		got, err := os.ReadFile(filepath.Join(runs[len(runs)-1], "invoices_2024_03.csv.features.csv"))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(repo(t, filepath.Join("testdata/golden", tc.golden)))
		if string(got) != string(want) {
			t.Errorf("mce run %v differs from golden %s:\n%s", tc.args, tc.golden, got)
		}
	}
}

// TestE2E_MemProfile runs `mce run` with MCE_MEMPROFILE set: the parent
// and its cluster each write a memory profile when they end, one that
// pprof reads (gzipped, with the allocation sample types), and the
// cluster's names the one-pass job that allocated its users' aggregates.
func TestE2E_MemProfile(t *testing.T) {
	dir, env := outsideCheckout(t)
	// Enough rows that the one pass allocates well over the sampling rate
	// (its aggregates and tables: about 1.5 MB), whatever the buffers it
	// takes from outside the heap.
	if _, se, code := mce(t, dir, nil, "gen", "--out", "data", "--seed", "1", "--files", "1", "--size", "3MB"); code != 0 {
		t.Fatalf("mce gen: exit %d\n%s", code, se)
	}
	prof := t.TempDir()
	args := []string{"run", "--out", "out", "--job", "m", "--clusters", "1", "data"}
	stdout, stderr, code := mce(t, dir, append(env, "MCE_MEMPROFILE="+prof), args...)
	if code != 0 {
		t.Fatalf("mce %v with MCE_MEMPROFILE: exit %d\n%s\n%s", args, code, stdout, stderr)
	}
	got, _ := filepath.Glob(filepath.Join(prof, "mce-*.mprof"))
	if len(got) != 2 {
		t.Fatalf("%d memory profiles (%v), want 2 (the parent and its cluster)", len(got), got)
	}
	var all []byte
	for _, p := range got {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: not a gzipped profile: %v", p, err)
		}
		b, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, want := range []string{"alloc_space", "inuse_space"} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("%s: no %s sample type", p, want)
			}
		}
		all = append(all, b...)
	}
	if !bytes.Contains(all, []byte("streamJob")) {
		t.Error("no profile names the one-pass job (inram.streamJob): the cluster's allocations were not sampled")
	}
}

// TestE2E_ProfileAcrossFeaturesExec runs `mce run --features` with
// MCE_CPUPROFILE set, ten times: mce replaces itself with the features
// binary, and a CPU profiler left running across the exec killed about
// half such runs with SIGPROF (its interval timer survives execve).
func TestE2E_ProfileAcrossFeaturesExec(t *testing.T) {
	dir, env := outsideCheckout(t)
	goldenData(t, dir)
	for i := range 10 {
		prof := t.TempDir()
		args := []string{"run", "--out", "out", "--job", "p", "--features", "f.go", "--param", "min_amount=500", "data"}
		stdout, stderr, code := mce(t, dir, append(env, "MCE_CPUPROFILE="+prof), args...)
		if code != 0 {
			t.Fatalf("run %d: mce %v with MCE_CPUPROFILE: exit %d\n%s\n%s", i, args, code, stdout, stderr)
		}
		// The features binary (it keeps the parent's pid, and its
		// profile replaces the parent's) and its cluster.
		if got, _ := filepath.Glob(filepath.Join(prof, "mce-*.pprof")); len(got) != 2 {
			t.Fatalf("run %d: %d profiles (%v), want 2", i, len(got), got)
		}
	}
}
