package faults

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestFuzzTargets checks that the fuzz targets the suite relies on are
// still there: the row reader, the row block encoding, the store key
// encoding, the amount and date parsers and their sniffers, and the
// Parquet round trip. `make fuzz` runs every Fuzz function it finds (and
// `make fuzz-short`, in `make test`, those of the parsers' packages); this
// test makes the loss of one of these visible.
func TestFuzzTargets(t *testing.T) {
	for _, c := range []struct{ dir, name string }{
		{"../csvread", "FuzzReadRow"},
		{"../csvread", "FuzzNormalizeAmount"},
		{"../csvread", "FuzzNormalizeDate"},
		{"../../store", "FuzzBlock"},
		{"../../store", "FuzzKey"},
		{"../../engine/feature", "FuzzParseAmount"},
		{"../../engine/feature", "FuzzParseDate"},
		{"../../engine/feature", "FuzzSniffAmounts"},
		{"../../engine/feature", "FuzzSniffDates"},
		{"../../engine/output", "FuzzParquetRoundTrip"},
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
