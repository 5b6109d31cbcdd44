package csvread

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
)

// smallSchema is a three-column schema for the format tests.
var smallSchema = feature.MustSchema([]string{"id", "user", "amount"}, "user")

// result is what a scan gave, rows in line order.
type result struct {
	file  *File
	rows  [][]string // fields in schema order, decoded with Row.String
	raw   [][]string // fields as raw bytes
	users []string
	lines []int64
	stats Stats
}

func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// scanFile opens and scans path, collecting the rows.
func scanFile(t testing.TB, path string, opts Options, workers int) (*result, error) {
	t.Helper()
	f, err := Open(path, opts)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res := &result{file: f}
	var mu sync.Mutex
	type row struct {
		line     int64
		str, raw []string
		user     string
	}
	var rows []row
	var r feature.Row
	seqs := map[int64]bool{}
	st, err := f.Scan(context.Background(), workers, func(b *Batch) error {
		mu.Lock()
		defer mu.Unlock()
		if seqs[b.Seq()] {
			return fmt.Errorf("seq %d twice", b.Seq())
		}
		seqs[b.Seq()] = true
		if b.File() != f {
			return fmt.Errorf("batch of another file")
		}
		for i := 0; i < b.Len(); i++ {
			b.Row(i, &r)
			x := row{line: b.Line(i), user: string(b.User(i))}
			for j := range r.Fields {
				x.str = append(x.str, r.String(j))
				x.raw = append(x.raw, string(b.Field(i, j)))
			}
			rows = append(rows, x)
		}
		return nil
	})
	res.stats = st
	// A failed scan stops where it is: batches after a gap may have
	// been handed over before the error, so only a whole scan is checked.
	for s := int64(0); err == nil && s < int64(len(seqs)); s++ {
		if !seqs[s] {
			t.Errorf("%s: seq %d missing of %d", path, s, len(seqs))
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].line < rows[j].line })
	for _, x := range rows {
		res.rows = append(res.rows, x.str)
		res.raw = append(res.raw, x.raw)
		res.users = append(res.users, x.user)
		res.lines = append(res.lines, x.line)
	}
	if err == nil && st.Rows != int64(len(rows)) {
		t.Errorf("%s: stats say %d rows, fn saw %d", path, st.Rows, len(rows))
	}
	return res, err
}

// rowsString renders rows as "a|b|c" lines for comparison.
func rowsString(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, "|"))
		b.WriteByte('\n')
	}
	return b.String()
}

// testdataSeeds returns the files testdata/*.*sv, a fuzz target's seeds.
func testdataSeeds(f *testing.F) [][]byte {
	f.Helper()
	paths, _ := filepath.Glob("testdata/*.*sv")
	var seeds [][]byte
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, data)
	}
	return seeds
}
