package csvread

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// dump renders what a scan gave, for golden files and comparisons.
func dump(res *result, err error) string {
	var b strings.Builder
	if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
	}
	if res == nil {
		return b.String()
	}
	f := res.file
	fmt.Fprintf(&b, "compression=%q delimiter=%q encoding=%v header=%q\n", f.Compression, f.Delimiter, f.Encoding, f.Header)
	for i, r := range res.rows {
		fmt.Fprintf(&b, "%d: %q user=%q\n", res.lines[i], r, res.users[i])
	}
	st := res.stats
	fmt.Fprintf(&b, "rows=%d bad=%d lines=%d bytes=%d\n", st.Rows, st.BadRows, st.Lines, st.Bytes)
	for _, s := range st.Samples {
		fmt.Fprintf(&b, "sample %d: %v: %q\n", s.Line, s.Err, s.Text)
	}
	return strings.ReplaceAll(b.String(), filepath.Dir(f.Path)+"/", "")
}

// TestFile_Scan_golden reads every messy sample under testdata and compares
// what it gives with testdata/golden/<name>.golden (-update rewrites them).
func TestFile_Scan_golden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.*sv")
	if len(files) < 8 {
		t.Fatalf("only %d sample files", len(files))
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			opts := Options{MaxBadRowShare: -1}
			got := dump(scanFile(t, path, opts, 2))
			for _, chunk := range []int{1, 16, 100} {
				opts.ChunkBytes = chunk
				if other := dump(scanFile(t, path, opts, 3)); other != got {
					t.Fatalf("chunk %d gives\n%s\nwhere the default gives\n%s", chunk, other, got)
				}
			}
			golden := filepath.Join("testdata", "golden", name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if got != string(want) {
				t.Fatalf("got\n%s\nwant (%s)\n%s", got, golden, want)
			}
		})
	}
}
