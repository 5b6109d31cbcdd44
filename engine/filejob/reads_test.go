package filejob_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/filejob"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/internal/gen"
)

// filledSpec counts per user the rows, the rows whose field is non-empty
// column by column, and the amounts in cents; reads is its Spec.Reads.
func filledSpec(reads []string) feature.Spec {
	s := feature.InvoiceSchema
	cols := []feature.Column{{Name: "rows", Type: feature.TypeInt}, {Name: "cents", Type: feature.TypeInt}}
	for _, c := range s.Columns() {
		cols = append(cols, feature.Column{Name: "filled_" + c, Type: feature.TypeInt})
	}
	amount := s.Index(feature.ColAmount)
	return feature.Spec{
		Name:    "filled",
		Schema:  s,
		Columns: cols,
		Reads:   reads,
		Reduce: func(_ *feature.User, rows feature.Rows, out *feature.Record) error {
			filled := make([]int64, s.Len())
			var n, cents int64
			for rows.Next() {
				row := rows.Row()
				n++
				for j, f := range row.Fields {
					if len(f) > 0 {
						filled[j]++
					}
				}
				if v, err := row.Decimal(amount, 2); err == nil {
					cents += v
				}
			}
			out.SetIntAt(0, n)
			out.SetIntAt(1, cents)
			for j, v := range filled {
				out.SetIntAt(2+j, v)
			}
			return nil
		},
	}
}

// TestRun_reads runs a feature set that reads only the amount, grouped in
// RAM and through disk: the rows carry the amount and the user and no
// other column, and the rows, bad rows and amounts are those of the same
// set reading every column.
func TestRun_reads(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	data := filepath.Join(t.TempDir(), "data")
	s, err := gen.Run(ctx, gen.Options{Dir: data, Seed: 9, Files: 1, Size: gen.Size{Rows: 5000}, BadRowShare: 0.01, NoSync: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(data, s.Files[0].Name)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	run := func(reads []string, mode string) (string, *engine.Result) {
		t.Helper()
		spec := filledSpec(reads)
		if err := spec.Validate(); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		res, err := filejob.Run(ctx, filejob.Input{
			Path: path, Size: st.Size(), ScratchDir: filepath.Join(t.TempDir(), "scratch"),
			Job: filejob.Job{Reader: csvread.Options{CheckValues: true, MaxBadRowShare: -1}, Mode: mode},
			Env: &engine.TaskEnv{Spec: &spec, CPUs: 3, Progress: &engine.Progress{}, Logger: quiet},
		}, &out)
		if err != nil {
			t.Fatalf("reads %v, mode %s: %v", reads, mode, err)
		}
		return out.String(), res
	}
	all, allRes := run(nil, filejob.ModeGroup)
	if allRes.BadRows == 0 {
		t.Fatal("the generated file has no bad rows: the test would not see them")
	}
	want := columnsOf(t, all, "user", "rows", "cents", "filled_issuer", "filled_amount")
	for _, mode := range []string{filejob.ModeGroup, filejob.ModeDisk} {
		got, res := run([]string{feature.ColAmount}, mode)
		if res.Rows != allRes.Rows || res.BadRows != allRes.BadRows {
			t.Errorf("%s: %d rows, %d bad; reading every column: %d, %d", mode, res.Rows, res.BadRows, allRes.Rows, allRes.BadRows)
		}
		if kept := columnsOf(t, got, "user", "rows", "cents", "filled_issuer", "filled_amount"); kept != want {
			t.Errorf("%s: the columns read differ from reading every column:\n%.300s\nwant\n%.300s", mode, kept, want)
		}
		for _, c := range []string{"filled_invoice_id", "filled_receiver", "filled_issued_at", "filled_currency", "filled_description"} {
			if v := strings.Trim(columnsOf(t, got, c), "0\n"); v != "" {
				t.Errorf("%s: %s not read, yet some rows carry it", mode, c)
			}
		}
	}
}

// columnsOf returns the named columns of a features table, a line per
// user, its fields joined by '|'.
func columnsOf(t *testing.T, table string, names ...string) string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(table)).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("features table: %v, %d lines", err, len(recs))
	}
	var b strings.Builder
	for _, rec := range recs[1:] {
		for k, name := range names {
			i := slices.Index(recs[0], name)
			if i < 0 {
				t.Fatalf("features table has no column %s: %v", name, recs[0])
			}
			if k > 0 {
				b.WriteByte('|')
			}
			b.WriteString(rec[i])
		}
		b.WriteByte('\n')
	}
	return b.String()
}
