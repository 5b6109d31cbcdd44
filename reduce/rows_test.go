package reduce

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/gen"
	"github.com/mce-engine/mce/partition"
	"github.com/mce-engine/mce/store"
)

// countingRows counts the rows a ColumnRows hands over one way and the
// other.
type countingRows struct {
	*userRows
	byCols, byRow int64
}

func (c *countingRows) Columns(cols *feature.Columns) bool {
	if !c.userRows.Columns(cols) {
		c.byRow++
		return false
	}
	c.byCols += int64(cols.N)
	return true
}

// TestUserRows_columns: a store's groups give the built-in features the
// same figures with their blocks handed over as Columns as row by row;
// all of the rows go as Columns (the generated amounts and times are
// packed), and none with a Map or --tz, which must see every row.
func TestUserRows_columns(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	data := filepath.Join(t.TempDir(), "data")
	s, err := gen.Run(ctx, gen.Options{Seed: 12, Files: 2, Size: gen.Size{Rows: 4000}, Dir: data, NoSync: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	st := filepath.Join(t.TempDir(), "store")
	if _, err := partition.Run(ctx, partition.Options{Inputs: []string{data}, Store: st, CPUs: 2,
		MemBytes: partition.MinMemBytes, HeavyMinRows: 100, Shards: 4, BlockBytes: 1 << 10, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(st, &store.Options{ReadOnly: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	spans := []store.Span{db.HeavySpan()}
	for sh := range db.Shards() {
		spans = append(spans, db.ShardSpan(sh))
	}
	// figures walks the store's groups with the rows handed over as
	// Columns or not, and returns every group's features and the counts.
	figures := func(spec *feature.Spec, tz *time.Location, columns bool) (lines []string, rows *countingRows) {
		cols, err := schemaColumns(spec.Schema, db.Config())
		if err != nil {
			t.Fatal(err)
		}
		r := newUserRows(spec, nil, cols, nil)
		r.setZone(tz)
		rows = &countingRows{userRows: r}
		var src feature.Rows = rows
		if !columns {
			src = struct{ feature.Rows }{r} // not a ColumnRows
		}
		opts := &store.UsersOptions{IterOptions: store.IterOptions{Columns: readColumns(spec, db.Config()),
			AmountsOnly: storeColumns(spec.DecimalsRead, db.Config()), SecondsOnly: spec.TimesRead && tz == nil, NoLines: spec.Map == nil}, ByFile: true}
		var c feature.Columns
		for _, span := range spans {
			u, err := db.Users(ctx, span, opts)
			if err != nil {
				t.Fatal(err)
			}
			for u.Next() {
				r.reset(u.Rows(), u.User())
				if !r.prime() {
					continue
				}
				agg := spec.NewAggregator(&feature.User{Key: u.User()})
				if err := feature.AddRows(agg, src, &c); err != nil {
					t.Fatal(err)
				}
				if r.err != nil {
					t.Fatal(r.err)
				}
				rec := spec.NewRecord()
				if err := agg.Finish(rec); err != nil {
					t.Fatal(err)
				}
				var line []byte
				for i := range rec.Columns() {
					line = append(rec.AppendField(line, i), ',')
				}
				lines = append(lines, string(u.User())+","+string(line))
			}
			if err := u.Close(); err != nil {
				t.Fatal(err)
			}
		}
		return lines, rows
	}
	invoice := feature.Invoice()
	mapped := feature.Invoice()
	mapped.Map = func(*feature.Row, feature.Params) ([]byte, bool) { return nil, true }
	for _, c := range []struct {
		name    string
		spec    feature.Spec
		tz      *time.Location
		columns bool // whether the rows go as Columns
	}{
		{"invoice", invoice, nil, true},
		{"map", mapped, nil, false},
		{"tz", invoice, time.UTC, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := c.spec
			if err := spec.Validate(); err != nil {
				t.Fatal(err)
			}
			want, plain := figures(&spec, c.tz, false)
			got, rows := figures(&spec, c.tz, true)
			if plain.byCols+plain.byRow != 0 {
				t.Fatalf("the plain walk asked for Columns")
			}
			if len(got) != len(want) || len(got) == 0 {
				t.Fatalf("%d groups as Columns, %d row by row", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("group %d:\nas Columns  %s\nrow by row  %s", i, got[i], want[i])
				}
			}
			if c.columns && (rows.byCols != s.Rows || rows.byRow != 0) {
				t.Errorf("%d of the %d rows went as Columns, %d times a row went alone", rows.byCols, s.Rows, rows.byRow)
			}
			if !c.columns && rows.byCols != 0 {
				t.Errorf("%d rows went as Columns", rows.byCols)
			}
		})
	}
}
