package csvread

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
)

// TestSampleRows_sameValues checks sampleRows, which parses the first
// sampleValues lines of a file's head alone when their values are enough,
// against parsing the whole head (what it did before): the sniffers must
// get the same values in the same order. The cases take both ways: the
// short parse (values in every row), the whole head (a column empty in
// most of its first rows; a head of fewer lines; quoted line breaks
// across the cut, which leave fewer records than lines before it).
func TestSampleRows_sameValues(t *testing.T) {
	schema := feature.MustSchema([]string{"user", "amount", "issued_at", "note"}, "user")
	row := func(i int, amount, note string) string {
		return fmt.Sprintf("u%d,%s,2024-%02d-%02d 10:%02d:00,%s\n", i%97, amount, i%12+1, i%28+1, i%60, note)
	}
	rows := func(n int, f func(i int) string) string {
		var b strings.Builder
		b.WriteString("user,amount,issued_at,note\n")
		for i := range n {
			b.WriteString(f(i))
		}
		return b.String()
	}
	for _, c := range []struct {
		name  string
		data  string
		short bool // the first sampleValues lines are enough
	}{
		{"every value there", rows(9000, func(i int) string { return row(i, fmt.Sprintf("%d.%02d", i, i%100), "x") }), true},
		{"short rows, CRLF", strings.ReplaceAll(rows(30000, func(i int) string { return row(i, "1", "") }), "\n", "\r\n"), true},
		{"amounts empty at first", rows(9000, func(i int) string {
			if i < 2000 {
				return row(i, "", "x")
			}
			return row(i, fmt.Sprintf("\"%d,5\"", i), "x") // a decimal comma, quoted
		}), false},
		{"fewer lines than sampled", rows(3000, func(i int) string { return row(i, "2.5", "x") }), false},
		{"a quoted line break across the cut", rows(9000, func(i int) string {
			if i >= sampleValues-3 && i < sampleValues+3 {
				return row(i, "7", "\"two\nlines\"")
			}
			return row(i, "7", "x")
		}), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := Open(writeTemp(t, "s.csv", []byte(c.data)), Options{Schema: schema, CheckValues: true})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			amounts, dates := f.valueColumns()
			cols := append(amounts, dates...)
			got := f.sampleRows(f.head, f.headEOF, cols)
			defer reuse.putBatch(got)
			want := f.parseRows(wholeLines(f.head, f.headEOF), f.headEOF)
			defer reuse.putBatch(want)
			if short := got.Len() < want.Len(); short != c.short {
				t.Errorf("parsed %d rows of the head's %d: short %v, want %v", got.Len(), want.Len(), short, c.short)
			}
			for _, j := range cols {
				g, w := columnSamples(got, []int{j}), columnSamples(want, []int{j})
				if !slices.EqualFunc(g, w, func(a, b []byte) bool { return string(a) == string(b) }) {
					t.Errorf("column %s: %d sampled values, want %d (first %q, want %q)", schema.Name(j), len(g), len(w), first(g), first(w))
				}
			}
		})
	}
}

func first(v [][]byte) []byte {
	if len(v) == 0 {
		return nil
	}
	return v[0]
}
