package csvread

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
)

// TestFile_Scan_onBadValue checks what each OnBadValue does with amounts
// and dates that do not read, in plain and quoted rows: skip-row drops and
// samples the row, empty keeps it with the value emptied (and samples it
// as emptied), fail fails the file at the bad value's line.
func TestFile_Scan_onBadValue(t *testing.T) {
	schema := feature.MustSchema([]string{"user", "amount", "issued_at"}, "user")
	const in = "user,amount,issued_at\n" +
		"a,1.5,2023-01-31 14:05:00\n" + // line 2
		"b,x,2023-01-31 15:00:00\n" + // 3: a bad amount
		"c,2,not a date\n" + // 4: a bad date
		"\"d\",\"3\",\"2023-02-01\"\n" + // 5: quoted
		"\"e\",\"y, z\",2023-02-02\n" // 6: a bad amount, quoted
	for _, c := range []struct {
		mode      string
		rows      string
		badRows   int64
		badValues int64
		emptied   int64
		samples   []int64 // the sampled rows' lines
	}{
		{BadValueSkipRow, "a|1.5|2023-01-31 14:05:00\nd|3|2023-02-01\n", 3, 3, 0, []int64{3, 4, 6}},
		{BadValueEmpty, "a|1.5|2023-01-31 14:05:00\nb||2023-01-31 15:00:00\nc|2|\nd|3|2023-02-01\ne||2023-02-02\n", 0, 3, 3, []int64{3, 4, 6}},
	} {
		for _, workers := range []int{1, 3} {
			opts := Options{Schema: schema, CheckValues: true, MaxBadRowShare: -1, SampleBadRows: 10, OnBadValue: c.mode, ChunkBytes: 32}
			res, err := scanFile(t, writeTemp(t, "v.csv", []byte(in)), opts, workers)
			if err != nil {
				t.Fatalf("%s, %d workers: %v", c.mode, workers, err)
			}
			if got := rowsString(res.raw); got != c.rows {
				t.Errorf("%s, %d workers: rows\n%s\nwant\n%s", c.mode, workers, got, c.rows)
			}
			st := res.stats
			if st.BadRows != c.badRows || st.BadValues != c.badValues || st.EmptiedValues != c.emptied {
				t.Errorf("%s, %d workers: %d bad rows, %d bad values, %d emptied; want %d, %d, %d", c.mode, workers,
					st.BadRows, st.BadValues, st.EmptiedValues, c.badRows, c.badValues, c.emptied)
			}
			var lines []int64
			for _, s := range st.Samples {
				lines = append(lines, s.Line)
				var verr *ValueError
				if !errors.As(s.Err, &verr) || !errors.Is(s.Err, ErrBadValue) {
					t.Errorf("%s: sample at line %d: %v, want a *ValueError", c.mode, s.Line, s.Err)
				}
				if emptied := errors.Is(s.Err, ErrValueEmptied); emptied != (c.emptied > 0) {
					t.Errorf("%s: sample at line %d: %v: marked emptied %v", c.mode, s.Line, s.Err, emptied)
				}
			}
			if !slices.Equal(lines, c.samples) {
				t.Errorf("%s, %d workers: samples at lines %v, want %v", c.mode, workers, lines, c.samples)
			}
		}
	}

	opts := Options{Schema: schema, CheckValues: true, MaxBadRowShare: -1, OnBadValue: BadValueFail, ChunkBytes: 32}
	_, err := scanFile(t, writeTemp(t, "v.csv", []byte(in)), opts, 1)
	var ferr *FileError
	if !errors.As(err, &ferr) || ferr.Line != 3 || !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), "column amount") {
		t.Fatalf("fail: %v (line %v), want a *FileError at line 3 naming the amount column", err, ferr)
	}
}

// TestFile_Scan_pointAmounts: in a file whose amounts read in the point
// format with no thousands separator seen (currencies, parentheses), a value
// written plainly is kept as it is and every other one is rewritten
// plainly, so that the features' ParseDecimal reads them all. (The point
// format used to keep every value as written: "$10.50" reached the
// features as it was, and they counted its row bad.)
func TestFile_Scan_pointAmounts(t *testing.T) {
	schema := feature.MustSchema([]string{"user", "amount"}, "user")
	const in = "user,amount\n" +
		"a,$10.50\n" +
		"b,20.25 MXN\n" +
		"c,+3.10\n" +
		"d,(4.5) EUR\n" +
		"e,-7\n"
	res, err := scanFile(t, writeTemp(t, "p.csv", []byte(in)), Options{Schema: schema, CheckValues: true, MaxBadRowShare: -1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.file.Numbers; got != (feature.NumberFormat{Decimal: '.'}) {
		t.Fatalf("sniffed %+v, want the point format", got)
	}
	const want = "a|10.50\nb|20.25\nc|+3.10\nd|-4.5\ne|-7\n"
	if got := rowsString(res.raw); got != want {
		t.Errorf("rows\n%s\nwant\n%s", got, want)
	}
	for i, r := range res.raw {
		if _, err := feature.ParseDecimal([]byte(r[1]), feature.AmountDigits); err != nil {
			t.Errorf("row %d: amount %q: %v", i, r[1], err)
		}
	}
}
