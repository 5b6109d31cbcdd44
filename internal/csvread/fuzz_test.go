package csvread

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mce-engine/mce/engine/feature"
)

// FuzzReadRow reads arbitrary files. It checks that nothing panics, that
// the chunk size and the number of workers do not change what is read, and
// that in a file without quotes every non-empty line after the header is a
// row or a bad row.
func FuzzReadRow(f *testing.F) {
	for _, data := range testdataSeeds(f) {
		f.Add(data, uint16(7))
	}
	f.Add([]byte("id,user,amount\n1,u,2\n\"3\",\"u\"\"\",\"4\n5\"\n"), uint16(1))
	f.Add([]byte("id;user;amount\r\n1;u;2\r\n\r\n3;u\r\n"), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		dir := t.TempDir()
		path := filepath.Join(dir, "f.csv")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		opts := Options{Schema: smallSchema, MaxBadRowShare: -1, SampleBadRows: 3, MaxRowBytes: 1 << 20}
		base, err := scanFile(t, path, opts, 1)
		want := dump(base, err)
		opts.ChunkBytes = 1 + int(chunk%512)
		other, err2 := scanFile(t, path, opts, 3)
		if got := dump(other, err2); got != want {
			t.Fatalf("chunk %d gives\n%s\nthe default gives\n%s", opts.ChunkBytes, got, want)
		}
		if err != nil || bytes.IndexByte(data, '"') >= 0 {
			return
		}
		// Lines after the header line (the first non-empty one).
		rest := data
		for len(rest) > 0 {
			line := rest
			nl := bytes.IndexByte(rest, '\n')
			if nl >= 0 {
				line, rest = rest[:nl], rest[nl+1:]
			} else {
				rest = nil
			}
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
			if nonEmptyLines(line) > 0 {
				break
			}
		}
		if want := nonEmptyLines(rest); base.stats.Rows+base.stats.BadRows != want {
			t.Fatalf("%d rows and %d bad rows for %d non-empty lines", base.stats.Rows, base.stats.BadRows, want)
		}
	})
}

// FuzzNormalizeAmount: whatever amount a file's number format accepts
// comes out of the check written plainly, as the features read it
// (ParseDecimal's syntax), with the same value.
func FuzzNormalizeAmount(f *testing.F) {
	for _, s := range []string{"40.55", "$10.50", "20.25 MXN", "(4.5)", "1,234.56", "1.234,56", "-7", "+3.10", "1 234,5 €", "5.", ".5"} {
		f.Add([]byte(s))
	}
	formats := []feature.NumberFormat{{}, {Decimal: '.'}, {Decimal: ','}, {Decimal: '.', Thousands: ','}, {Decimal: ',', Thousands: '.'}, {Decimal: ',', Thousands: ' '}}
	f.Fuzz(func(t *testing.T, fld []byte) {
		for _, nf := range formats {
			out, ok := amountNormalizer(nf)(nil, fld)
			if !ok {
				continue
			}
			want, _ := feature.ParseAmount(fld, nf)
			got, plain := feature.ParseAmount(out, feature.NumberFormat{})
			if !plain || got.String() != want.String() {
				t.Fatalf("format %v: %q came out as %q (plain: %v, %s), want the plain form of %s", nf, fld, out, plain, got, want)
			}
		}
	})
}

// FuzzNormalizeDate: whatever date a file's date format accepts comes out
// of the check in a form the features' ParseTime reads, as the same
// instant ParseDate read.
func FuzzNormalizeDate(f *testing.F) {
	for _, s := range []string{"2024-07-21 06:34:38", "2024-07-21T06:34:38Z", "2024-02-30", "31/01/2023 14:05", "01/31/2023", "1700000000", "2024-07-21 06:34:38.5+01:00"} {
		f.Add([]byte(s))
	}
	mx, err := time.LoadLocation("America/Mexico_City")
	if err != nil {
		mx = time.FixedZone("UTC-6", -6*3600)
	}
	formats := []feature.DateFormat{{}, {Layout: feature.DateDMY}, {Layout: feature.DateMDY}, {Layout: feature.DateEpoch}, {Location: mx}, {Layout: feature.DateDMY, Location: mx}}
	f.Fuzz(func(t *testing.T, fld []byte) {
		for _, df := range formats {
			out, ok := dateNormalizer(df)(nil, fld)
			if !ok {
				continue
			}
			want, err := feature.ParseDate(fld, df)
			if err != nil {
				t.Fatalf("format %v: %q accepted, but ParseDate says %v", df, fld, err)
			}
			got, err := feature.ParseTime(out)
			if err != nil || !got.Equal(want.Time) {
				t.Fatalf("format %v: %q came out as %q, which reads as %v, %v; want %v", df, fld, out, got, err, want.Time)
			}
		}
	})
}
