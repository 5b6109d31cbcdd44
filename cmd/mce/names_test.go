package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestE2E_HostileNames gives mce input files named with spaces, a newline,
// quotes, a byte that is not UTF-8 and a leading dash: every one gets its
// features file under its own base name inside the run folder, from both
// run and reduce (the store keeps names byte for byte), the two alike, and
// no log line is broken by a name. A second partition of the same files
// finds every one in the store and skips it.
func TestE2E_HostileNames(t *testing.T) {
	dir := t.TempDir()
	gen := filepath.Join(dir, "gen")
	if _, se, code := mce(t, dir, nil, "gen", "--out", gen, "--seed", "5", "--files", "5", "--size", "1MB"); code != 0 {
		t.Fatalf("gen: %s", se)
	}
	made, _ := filepath.Glob(filepath.Join(gen, "invoices_*.csv"))
	names := []string{"with space.csv", "new\nline.csv", `quo"te's.csv`, "bad\xffbyte.csv", "-dash.csv"}
	if len(made) != len(names) {
		t.Fatalf("%d generated files", len(made))
	}
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o755)
	for i, n := range names {
		if err := os.Rename(made[i], filepath.Join(data, n)); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "out")
	so, se, code := mce(t, dir, nil, "run", data, "--out", out, "--no-progress")
	if code != 0 || !strings.Contains(so, "all 5 files ok") {
		t.Fatalf("run: exit %d\n%s\n%s", code, so, se)
	}
	st := filepath.Join(dir, "store")
	if _, se, code := mce(t, dir, nil, "partition", data, "--out", st); code != 0 {
		t.Fatalf("partition: %s", se)
	}
	if so, se, code := mce(t, dir, nil, "reduce", "--store", st, "--out", filepath.Join(dir, "red"), "--no-progress"); code != 0 {
		t.Fatalf("reduce: exit %d\n%s\n%s", code, so, se)
	}
	if so, se, code := mce(t, dir, nil, "partition", data, "--out", st); code != 0 || !strings.Contains(so, "0 file(s) ingested, 5 unchanged") {
		t.Errorf("partition again: exit %d, want every file unchanged\n%s\n%s", code, so, se)
	}
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT`)
	for _, runDir := range []string{filepath.Join(out, "job0"), filepath.Join(dir, "red", "job0")} {
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(runDir, n+".features.csv")); err != nil {
				t.Errorf("%s: no features file for %q: %v", runDir, n, err)
			}
		}
		ents, _ := os.ReadDir(runDir)
		if len(ents) < len(names) {
			t.Errorf("%s holds %d entries", runDir, len(ents))
		}
		for _, log := range []string{"status.log", "failure.log"} {
			b, _ := os.ReadFile(filepath.Join(runDir, log))
			for _, ln := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
				if ln != "" && !stamp.MatchString(ln) && !strings.HasPrefix(ln, "\t") {
					t.Errorf("%s: broken line %q", log, ln)
				}
			}
		}
		var s struct{ Failed int }
		b, _ := os.ReadFile(filepath.Join(runDir, "summary.json"))
		if err := json.Unmarshal(b, &s); err != nil || s.Failed != 0 {
			t.Errorf("summary.json: %v, %d failed", err, s.Failed)
		}
	}
	// The outputs of the two modes agree file by file.
	for _, n := range names {
		a, _ := os.ReadFile(filepath.Join(out, "job0", n+".features.csv"))
		b, _ := os.ReadFile(filepath.Join(dir, "red", "job0", n+".features.csv"))
		if len(a) == 0 || string(a) != string(b) {
			t.Errorf("%q: run and reduce outputs differ", n)
		}
	}
	// A job name that would leave --out is refused.
	for _, job := range []string{"../up", "a/b", ".."} {
		if _, se, code := mce(t, dir, nil, "run", data, "--out", out, "--job", job, "--no-progress"); code == 0 || !strings.Contains(se, "job name") {
			t.Errorf("--job %q: exit %d\n%s", job, code, se)
		}
	}
}
