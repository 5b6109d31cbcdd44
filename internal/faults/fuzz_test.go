package faults

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestFuzzTargets checks that the round-trip fuzz targets the suite relies
// on are still there: the row reader, the row block encoding and the store
// key encoding. `make fuzz` (and `make fuzz-short` in `make test`) runs
// every Fuzz function it finds; this test makes the loss of one of these
// three visible.
func TestFuzzTargets(t *testing.T) {
	for _, c := range []struct{ dir, name string }{
		{"../csvread", "FuzzReadRow"},
		{"../../store", "FuzzBlock"},
		{"../../store", "FuzzKey"},
	} {
		files, _ := filepath.Glob(filepath.Join(c.dir, "*_test.go"))
		re := regexp.MustCompile(`(?m)^func ` + c.name + `\(f \*testing\.F\) \{$`)
		found := false
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if re.Match(b) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("fuzz target %s is missing from %s", c.name, c.dir)
		}
	}
}
