package gen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mce-engine/mce/engine/feature"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// readRecords reads a generated file with encoding/csv: the header mapped
// to canonical names, and every record.
func readRecords(t *testing.T, path string, delim byte) (map[string]int, [][]string) {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(readAll(t, path)))
	r.Comma = rune(delim)
	r.FieldsPerRecord = -1
	hdr, err := r.Read()
	if err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	col := map[string]int{}
	for i, h := range hdr {
		c, ok := testAliases[strings.ToLower(strings.TrimSpace(h))]
		if !ok {
			t.Fatalf("%s: unknown header name %q", path, h)
		}
		col[c] = i
	}
	col[""] = len(hdr) // the field count of a good row
	var recs [][]string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return col, recs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		recs = append(recs, rec)
	}
}

// TestRun_ValueStyles generates the same files with and without value
// styles and checks that they hold the same rows: the sniffers find each
// file's style, every styled amount parses to the plain file's cents and
// every styled time to the plain file's instant (to the style's
// precision), and the truth is the same.
func TestRun_ValueStyles(t *testing.T) {
	o := Options{Seed: 31, Files: 9, Size: Size{Bytes: 4_000_000}, Messy: true, BadRowShare: 0.005}
	plainDir, plainSum := generate(t, o)
	o.ValueStyles = true
	dir, sum := generate(t, o)

	for _, name := range []string{TruthFile} {
		a, b := readAll(t, filepath.Join(plainDir, name)), readAll(t, filepath.Join(dir, name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs with value styles", name)
		}
	}
	styles, err := ReadTruthStyles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(styles) != len(sum.Files) {
		t.Fatalf("%s has %d files, want %d", TruthStylesFile, len(styles), len(sum.Files))
	}
	byFile := map[string]StyleTruth{}
	for _, st := range styles {
		byFile[st.File] = st
	}
	amounts, dates := map[string]bool{}, map[string]bool{}
	for i, f := range sum.Files {
		pf := plainSum.Files[i]
		st, ok := byFile[f.Name]
		if !ok || st.AmountStyle != f.AmountStyle || st.DateStyle != f.DateStyle {
			t.Fatalf("%s: styles %+v, summary says %q %q", f.Name, st, f.AmountStyle, f.DateStyle)
		}
		amounts[f.AmountStyle], dates[f.DateStyle] = true, true
		if f.Rows != pf.Rows || f.BadRows != pf.BadRows || f.Users != pf.Users || f.AmountCents != pf.AmountCents {
			t.Errorf("%s: %+v with value styles, %+v without", f.Name, f, pf)
		}
		if i == 0 && (f.AmountStyle != "plain" || f.DateStyle != "iso-space") {
			t.Errorf("%s, the largest file, has styles %q %q; want the plain ones", f.Name, f.AmountStyle, f.DateStyle)
		}
		if got := int64(len(readAll(t, filepath.Join(dir, f.Name)))); got != f.Bytes {
			t.Errorf("%s: %d bytes, summary says %d", f.Name, got, f.Bytes)
		}
		checkStyledFile(t, filepath.Join(dir, f.Name), filepath.Join(plainDir, pf.Name), f, st)
	}
	// Nine files take every style: the plain ones and eight others.
	if len(amounts) != int(numAmountStyles) || len(dates) != int(numDateStyles) {
		t.Errorf("amount styles %v, date styles %v: want all", slices.Sorted(maps.Keys(amounts)), slices.Sorted(maps.Keys(dates)))
	}
}

func checkStyledFile(t *testing.T, path, plainPath string, f FileSummary, st StyleTruth) {
	t.Helper()
	col, recs := readRecords(t, path, f.Delimiter)
	pcol, precs := readRecords(t, plainPath, f.Delimiter)
	if len(recs) != len(precs) {
		t.Fatalf("%s: %d records, %d without value styles", f.Name, len(recs), len(precs))
	}
	var ns feature.NumberSniffer
	var ds feature.DateSniffer
	for _, rec := range recs {
		if len(rec) == col[""] {
			ns.Add([]byte(rec[col["amount"]]))
			ds.Add([]byte(rec[col["issued_at"]]))
		}
	}
	nf, err := ns.Format()
	if err != nil || nf.Decimal != st.Decimal {
		t.Fatalf("%s (%s): amounts sniffed as %v, %v; want decimal %q", f.Name, f.AmountStyle, nf, err, st.Decimal)
	}
	df, err := ds.Format()
	if err != nil || df.Layout != st.DateLayout {
		t.Fatalf("%s (%s): dates sniffed as %v, %v; want %v", f.Name, f.DateStyle, df, err, st.DateLayout)
	}
	n := 0
	for i, rec := range recs {
		prec := precs[i]
		if len(rec) != col[""] || len(prec) != pcol[""] {
			if (len(rec) == col[""]) != (len(prec) == pcol[""]) {
				t.Fatalf("%s: record %d is bad in one file only", f.Name, i+1)
			}
			continue
		}
		a, ok := feature.ParseAmount([]byte(rec[col["amount"]]), nf)
		cents, err := a.Decimal(2)
		want, werr := ParseCents(prec[pcol["amount"]])
		if !ok || err != nil || werr != nil || cents != want {
			t.Fatalf("%s: record %d: amount %q reads as %d (%v, %v); the plain file has %q",
				f.Name, i+1, rec[col["amount"]], cents, ok, err, prec[pcol["amount"]])
		}
		got, err := feature.ParseDate([]byte(rec[col["issued_at"]]), df)
		plain, perr := feature.ParseTime([]byte(prec[pcol["issued_at"]]))
		if err != nil || perr != nil || !got.Time.Equal(plain.Truncate(st.DatePrecision)) || got.Zoned != st.Zoned {
			t.Fatalf("%s: record %d: time %q reads as %+v, %v; the plain file has %q",
				f.Name, i+1, rec[col["issued_at"]], got, err, prec[pcol["issued_at"]])
		}
		if string(rec[col["issuer"]]) != string(prec[pcol["issuer"]]) {
			t.Fatalf("%s: record %d: issuer %q, %q without value styles", f.Name, i+1, rec[col["issuer"]], prec[pcol["issuer"]])
		}
		n++
	}
	if int64(n) != f.Rows {
		t.Errorf("%s: %d good records, summary says %d", f.Name, n, f.Rows)
	}
}

// TestRun_ValueStylesOff checks that a run without value styles writes
// no _truth_styles.csv, removes one an earlier run left, and names the
// plain styles.
func TestRun_ValueStylesOff(t *testing.T) {
	dir, _ := generate(t, Options{Seed: 2, Files: 3, Size: Size{Rows: 3000}, ValueStyles: true})
	if _, err := os.Stat(filepath.Join(dir, TruthStylesFile)); err != nil {
		t.Fatalf("no %s with value styles: %v", TruthStylesFile, err)
	}
	_, sum := generate(t, Options{Dir: dir, Seed: 2, Files: 3, Size: Size{Rows: 3000}})
	if _, err := os.Stat(filepath.Join(dir, TruthStylesFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left after a run without value styles: %v", TruthStylesFile, err)
	}
	for _, f := range sum.Files {
		if f.AmountStyle != "plain" || f.DateStyle != "iso-space" {
			t.Errorf("%s: styles %q %q without value styles", f.Name, f.AmountStyle, f.DateStyle)
		}
	}
	// One file alone takes styles too.
	_, sum = generate(t, Options{Seed: 2, Files: 1, Size: Size{Rows: 3000}, ValueStyles: true})
	if f := sum.Files[0]; f.AmountStyle == "plain" || f.DateStyle == "iso-space" {
		t.Errorf("the only file has styles %q %q", f.AmountStyle, f.DateStyle)
	}
}

// TestRun_MessyGolden pins the (uncompressed) bytes of messy files without
// value styles:
// they are the demo's data, which end-to-end tests compare with recorded
// sums. Refresh with `go test ./internal/gen -run MessyGolden -update`
// only when the data is meant to change.
func TestRun_MessyGolden(t *testing.T) {
	dir, _ := generate(t, Options{Seed: 3, Files: 4, Size: Size{Rows: 20_000}, Messy: true})
	var lines []string
	for name := range dirContents(t, dir) {
		// Uncompressed: a new compressor must not fail the test.
		sum := sha256.Sum256(readAll(t, filepath.Join(dir, name)))
		lines = append(lines, hex.EncodeToString(sum[:])+"  "+name)
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[66:], b[66:]) })
	got := strings.Join(lines, "\n") + "\n"
	golden := filepath.Join("testdata", "messy.sha256")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("messy files differ from %s:\n%s\nwant\n%s", golden, got, want)
	}
}

func TestAppendAmount(t *testing.T) {
	f := func(s amountStyle, cents int64, currency string, e int, want string) {
		t.Helper()
		if got := string(appendAmount(nil, s, cents, currency, e)); got != want {
			t.Errorf("appendAmount(%s, %d, %s) = %q, want %q", amountStyleNames[s], cents, currency, got, want)
		}
	}
	f(amountPlain, 123456, "MXN", 0, "1234.56")
	f(amountPoint, 123456789, "MXN", 0, "1,234,567.89")
	f(amountPoint, 5, "MXN", 0, "0.05")
	f(amountComma, 123456, "MXN", 0, "1.234,56")
	f(amountComma, 12345, "MXN", 0, "123,45")
	f(amountSymbol, 123456, "MXN", 0, "$ 1,234.56")
	f(amountSymbol, 123456, "EUR", 0, "\x80 1,234.56")
	f(amountSymbol, 123456, "EUR", 1, "€ 1,234.56")
	f(amountSpace, 123456789, "MXN", 0, "1\xa0234\xa0567,89")
	f(amountSpace, 123456, "MXN", 1, "1\u00a0234,56")
	f(amountCode, 123456, "USD", 0, "1.234,56 USD")
	f(amountShort, 123450, "MXN", 0, "1234.5")
	f(amountShort, 123400, "MXN", 0, "1234")
	f(amountShort, 123401, "MXN", 0, "1234.01")
	f(amountCommaPlain, 123456, "MXN", 0, "1234,56")
}

func TestAppendDate(t *testing.T) {
	fs := &fileSpec{month: []byte("2024-03-"), year: 2024, mon: 3,
		monthStart: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).Unix()}
	f := func(s dateStyle, secs uint64, want string) {
		t.Helper()
		fs.date = s
		if got := string(appendDate(nil, fs, secs)); got != want {
			t.Errorf("appendDate(%s, %d) = %q, want %q", dateStyleNames[s], secs, got, want)
		}
	}
	const at = 4*86400 + 10*3600 + 11*60 + 12 // 2024-03-05 10:11:12
	f(dateSpace, at, "2024-03-05 10:11:12")
	f(dateT, at, "2024-03-05T10:11:12")
	f(dateZ, at, "2024-03-05T10:11:12Z")
	f(dateOffset, at, "2024-03-05T04:11:12-06:00")
	f(dateOffset, 3600, "2024-02-29T19:00:00-06:00") // the month before
	f(dateDMY, at, "05/03/2024 10:11:12")
	f(dateDMYHM, at, "05/03/2024 10:11")
	f(dateMDY, at, "03/05/2024 10:11:12")
	f(dateEpoch, at, "1709633472")
	f(dateOnly, at, "2024-03-05")
}

// BenchmarkGen_ValueStyles compares messy files with and without value
// styles (uncompressed, so that the styles' cost shows).
func BenchmarkGen_ValueStyles(b *testing.B) {
	for _, styles := range []bool{false, true} {
		b.Run("value-styles="+strconv.FormatBool(styles), func(b *testing.B) {
			dir := b.TempDir()
			var n int64
			for b.Loop() {
				sum, err := Run(context.Background(), Options{Dir: dir, Seed: 1, Files: 8, Size: Size{Bytes: 32 << 20},
					Messy: true, ValueStyles: styles, Compression: "none", NoSync: true, Logger: quiet()})
				if err != nil {
					b.Fatal(err)
				}
				n = sum.Bytes
			}
			b.SetBytes(n)
		})
	}
}
