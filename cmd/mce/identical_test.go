package main_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The identity test guards refactors and speed-ups: every output of run,
// reduce and debug on fixed inputs must keep the bytes it had when
// testdata/identical/sums.txt was recorded (go test -run TestE2E_Identical
// -update, only on a commit whose outputs are known good). The inputs are
// committed (testdata/identical/input, messy generated invoices) and, in
// the long mode, the demo's data is regenerated and its own sums checked
// first, so that a change to the generator is told apart from a change to
// the engine.

// identicalScenario is one command line whose output files are summed.
type identicalScenario struct {
	name string
	// args are the command's arguments; IN is replaced by the input
	// folder, OUT by the scenario's output folder, STORE by its store.
	args [][]string
	// stdout, when set, sums the last command's stdout under this name.
	stdout string
}

func identicalScenarios(withFeatures bool) []identicalScenario {
	run := func(extra ...string) [][]string {
		return [][]string{append([]string{"run", "--out", "OUT", "--job", "j", "--no-progress", "IN"}, extra...)}
	}
	sc := []identicalScenario{
		{name: "run", args: run()},
		{name: "run-group", args: run("--mode", "group")},
		{name: "run-stream", args: run("--mode", "stream")},
		{name: "run-clusters", args: run("--clusters", "1,1", "--queue", "fifo")},
		{name: "reduce", args: [][]string{
			{"partition", "IN", "--out", "STORE"},
			{"reduce", "--store", "STORE", "--out", "OUT", "--job", "j", "--no-progress"},
		}},
		{name: "reduce-across", args: [][]string{
			{"partition", "IN", "--out", "STORE"},
			{"reduce", "--store", "STORE", "--out", "OUT", "--job", "j", "--no-progress", "--across-files"},
		}},
		{name: "debug", args: [][]string{{"debug", "GOLDEN"}}, stdout: "debug.csv"},
	}
	if withFeatures {
		sc = append(sc,
			identicalScenario{name: "run-receivers", args: run("--features", "FEATURES", "--param", "min_amount=10000")},
			identicalScenario{name: "debug-receivers", args: [][]string{{"debug", "--features", "FEATURES", "--param", "min_amount=10000", "GOLDEN"}}, stdout: "debug.csv"},
		)
	}
	return sc
}

// runIdentical runs every scenario on in and returns "scenario/file sum"
// lines for every features file (and summed stdout).
func runIdentical(t *testing.T, in string, scenarios []identicalScenario) []string {
	t.Helper()
	var sums []string
	for _, s := range scenarios {
		work := t.TempDir()
		out, store := filepath.Join(work, "out"), filepath.Join(work, "store")
		var stdout string
		for _, a := range s.args {
			args := make([]string, len(a))
			for i, x := range a {
				switch x {
				case "IN":
					x = in
				case "OUT":
					x = out
				case "STORE":
					x = store
				case "GOLDEN":
					x = repo(t, goldenInput)
				case "FEATURES":
					x = repo(t, "examples/receivers/f.go")
				}
				args[i] = x
			}
			so, se, code := mce(t, work, []string{"MCE_CACHE=" + filepath.Join(os.TempDir(), "mce-e2e-cache")}, args...)
			if code != 0 {
				t.Fatalf("%s: mce %s: exit %d\n%s", s.name, strings.Join(args, " "), code, se)
			}
			stdout = so
		}
		if s.stdout != "" {
			sums = append(sums, sumLine(s.name+"/"+s.stdout, []byte(stdout)))
			continue
		}
		files, _ := filepath.Glob(filepath.Join(out, "j0", "*.features.csv"))
		if len(files) == 0 {
			t.Fatalf("%s: no features files in %s", s.name, out)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sums = append(sums, sumLine(s.name+"/"+filepath.Base(f), b))
		}
	}
	return sums
}

func sumLine(name string, b []byte) string {
	h := sha256.Sum256(b)
	return name + " " + hex.EncodeToString(h[:])
}

func fileSums(t *testing.T, dir, prefix string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var sums []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sumLine(prefix+e.Name(), b))
	}
	return sums
}

// checkSums compares got with the recorded sums file, or rewrites it with
// -update.
func checkSums(t *testing.T, rel string, got []string) {
	t.Helper()
	sort.Strings(got)
	path := repo(t, rel)
	if *update {
		if err := os.WriteFile(path, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, sum, _ := strings.Cut(sc.Text(), " ")
		want[name] = sum
	}
	seen := map[string]bool{}
	for _, g := range got {
		name, sum, _ := strings.Cut(g, " ")
		seen[name] = true
		if w, ok := want[name]; !ok {
			t.Errorf("%s: not in %s", name, rel)
		} else if w != sum {
			t.Errorf("%s: bytes differ from the recorded output (%s)", name, rel)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s: recorded in %s but not produced", name, rel)
		}
	}
}

func TestE2E_IdenticalOutputs(t *testing.T) {
	got := runIdentical(t, repo(t, "testdata/identical/input"), identicalScenarios(true))
	checkSums(t, "testdata/identical/sums.txt", got)
}

// TestE2E_IdenticalDemo does the same on the demo's data (`make demo`:
// 6 messy files of 60 MB), regenerated here.
func TestE2E_IdenticalDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("long: 360 MB of demo data")
	}
	work := t.TempDir()
	data := filepath.Join(work, "data")
	if _, se, code := mce(t, work, nil, "gen", "--out", data, "--seed", "1", "--files", "6", "--size", "60MB", "--messy", "--value-styles=false"); code != 0 {
		t.Fatalf("gen: exit %d\n%s", code, se)
	}
	// The generator first: if its output moved, the engine's sums below
	// say nothing.
	checkSums(t, "testdata/identical/demo-input.txt", fileSums(t, data, "input/"))
	if t.Failed() {
		t.Fatal("the demo data changed: the generator is not the one the sums were recorded with")
	}
	var scen []identicalScenario
	for _, s := range identicalScenarios(false) {
		if s.name == "run" || s.name == "reduce" || s.name == "run-stream" {
			scen = append(scen, s)
		}
	}
	checkSums(t, "testdata/identical/demo-sums.txt", runIdentical(t, data, scen))
}
