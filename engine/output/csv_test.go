package output

import (
	"fmt"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
)

func TestAppendCSVField(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := string(AppendCSVField([]byte("x,"), []byte(in))); got != "x,"+want {
			t.Errorf("AppendCSVField(%q) = %q, want %q", in, got, "x,"+want)
		}
	}
	f("", "")
	f("plain", "plain")
	f("señor", "señor")
	f("a,b", `"a,b"`)
	f(`say "hi"`, `"say ""hi"""`)
	f("two\nlines", "\"two\nlines\"")
	f("cr\r", "\"cr\r\"")
}

// BenchmarkAppendRecord formats one user's built-in invoice features as a
// features line, as every output line of run and reduce is written.
func BenchmarkAppendRecord(b *testing.B) {
	spec := feature.Invoice()
	if err := spec.Validate(); err != nil {
		b.Fatal(err)
	}
	rec := spec.NewRecord()
	agg := spec.NewAggregator(&feature.User{})
	row := &feature.Row{Schema: feature.InvoiceSchema}
	for i, r := range [][2]string{{"RFC010101AB1", "123.45"}, {"RFC020202CD2", "9.5"}, {"RFC010101AB1", "1000"}} {
		row.Fields = [][]byte{[]byte("1"), []byte("AAA010101AAA"), []byte(r[0]), fmt.Appendf(nil, "2024-03-0%d 10:11:12", i+1), []byte(r[1]), []byte("MXN"), []byte("x")}
		if err := agg.Add(row); err != nil {
			b.Fatal(err)
		}
	}
	if err := agg.Finish(rec); err != nil {
		b.Fatal(err)
	}
	key := []byte("AAA010101AAA")
	line, scratch := AppendRecord(nil, nil, key, rec)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		line, scratch = AppendRecord(line[:0], scratch, key, rec)
	}
}
