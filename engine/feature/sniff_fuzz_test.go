package feature

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// fuzzSamples cuts a fuzz input into the values of one column: one a
// line, at most 64.
func fuzzSamples(b []byte) [][]byte {
	s := bytes.Split(b, []byte{'\n'})
	return s[:min(len(s), 64)]
}

// sniffer is a NumberSniffer or a DateSniffer (a pointer to S).
type sniffer[F, S any] interface {
	*S
	Add([]byte)
	Merge(*S)
	Format() (F, error)
}

// sameSniffed fails t unless sniff of the samples reversed, and sniffers
// fed parts of them and merged (as parallel readers do), give what sniff
// gave in order: want, and an error when err is one.
func sameSniffed[F comparable, S any, P sniffer[F, S]](t *testing.T, samples [][]byte, sniff func([][]byte) (F, error), want F, err error) {
	t.Helper()
	same := func(what string, got F, err2 error) {
		if got != want || (err2 == nil) != (err == nil) {
			t.Fatalf("%s: %v, %v; in order: %v, %v", what, got, err2, want, err)
		}
	}
	rev := slices.Clone(samples)
	slices.Reverse(rev)
	got, err2 := sniff(rev)
	same("reversed", got, err2)
	for cut := 0; cut <= len(samples); cut += max(1, len(samples)/3) {
		var a, z S
		for i, s := range samples {
			if i < cut {
				P(&a).Add(s)
			} else {
				P(&z).Add(s)
			}
		}
		P(&z).Merge(&a)
		got, err2 := P(&z).Format()
		same("merged", got, err2)
	}
}

// FuzzSniffAmounts checks SniffAmounts on a column of values: it never
// panics; its answer does not depend on the values' order nor on how
// they are shared between sniffers that are merged (as parallel readers
// do); the decimal separator it picks had more votes than the other, or
// none had any; the format it returns reads every value that voted for it,
// thousands separator included, to the amount the bare decimal format
// reads; and a failure wraps ErrAmbiguousDecimal.
func FuzzSniffAmounts(f *testing.F) {
	for _, s := range []string{
		"1,234.56\n12.5\n7", "1.234,56\n0,5\n1.234.567", "1,234\n12.500", "1,5\n2.5", "$ 1,234.56\n(12.00)\n1 234.50",
		"1'234.50\n1'000", "1 234,56\n12,5", "1234\n5678", "1,234.56\n1.234,56\n0,1", "", "x\ny\n\n-0.00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		samples := fuzzSamples(b)
		nf, err := SniffAmounts(samples)
		if err != nil && !errors.Is(err, ErrAmbiguousDecimal) {
			t.Fatalf("SniffAmounts: %v, not ErrAmbiguousDecimal", err)
		}
		sameSniffed[NumberFormat, NumberSniffer](t, samples, SniffAmounts, nf, err)

		var point, comma int
		for _, s := range samples {
			switch v, _, _ := classifyAmount(s); v {
			case votePoint:
				point++
			case voteComma:
				comma++
			}
		}
		if err != nil {
			return
		}
		if nf.Decimal == '.' && point < comma || nf.Decimal == ',' && comma <= point {
			t.Fatalf("picked %v with %d values for '.' and %d for ','", nf, point, comma)
		}
		bare := NumberFormat{Decimal: nf.Decimal}
		for _, s := range samples {
			v, _, _ := classifyAmount(s)
			if v != votePoint && nf.Decimal == '.' || v != voteComma && nf.Decimal == ',' {
				continue
			}
			want, ok := ParseAmount(s, bare)
			if !ok {
				t.Fatalf("%q voted for %q but does not read with it", s, nf.Decimal)
			}
			if got, ok := ParseAmount(s, nf); !ok || got != want {
				t.Fatalf("%q voted for %v, which reads it as %v, %v; with %v alone it is %v", s, nf, got, ok, bare, want)
			}
		}
	})
}

// FuzzSniffDates checks SniffDates on a column of values: it never
// panics; its answer does not depend on the values' order nor on how
// they are shared between merged sniffers; the layout it picks counts at
// least as many values as any other and reads every one of them; for day
// or month first, the other order had fewer values that read only that
// way; and a failure wraps ErrAmbiguousDate.
func FuzzSniffDates(f *testing.F) {
	for _, s := range []string{
		"31/01/2023\n01/02/2023\n05/05/2023", "01/31/2023 14:05\n02/01/2023", "2023-01-31T14:05:00\n2023-02-01",
		"1675173900\n1675173900.5", "01/02/2023\n03/04/2023", "13/01/2023\n01/13/2023", "31.01.2023 14:05:00+05:30",
		"2023-01-31\n1675173900\n31/01/2023", "", "x\n\n-1",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		samples := fuzzSamples(b)
		df, err := SniffDates(samples)
		if err != nil && !errors.Is(err, ErrAmbiguousDate) {
			t.Fatalf("SniffDates: %v, not ErrAmbiguousDate", err)
		}
		sameSniffed[DateFormat, DateSniffer](t, samples, SniffDates, df, err)
		if err != nil {
			return
		}

		// What each value voted for, by a sniffer of its own.
		var total DateSniffer
		voters := map[DateLayout][][]byte{}
		for _, s := range samples {
			var one DateSniffer
			one.Add(s)
			total.Merge(&one)
			switch {
			case one.iso > 0:
				voters[DateISO] = append(voters[DateISO], s)
			case one.epoch > 0:
				voters[DateEpoch] = append(voters[DateEpoch], s)
			case one.dmy > 0:
				voters[DateDMY] = append(voters[DateDMY], s)
			case one.mdy > 0:
				voters[DateMDY] = append(voters[DateMDY], s)
			case one.either+one.same > 0:
				voters[DateDMY] = append(voters[DateDMY], s)
				voters[DateMDY] = append(voters[DateMDY], s)
			}
		}
		slash := total.dmy + total.mdy + total.either + total.same
		count := map[DateLayout]int64{DateISO: total.iso, DateEpoch: total.epoch, DateDMY: slash, DateMDY: slash}
		if len(voters) == 0 {
			if df != (DateFormat{}) {
				t.Fatalf("no value reads as a date, and the layout is %v", df)
			}
			return
		}
		for l, n := range count {
			if n > count[df.Layout] {
				t.Fatalf("picked %v (%d values) over %v (%d)", df, count[df.Layout], l, n)
			}
		}
		if df.Layout == DateDMY && total.mdy > total.dmy || df.Layout == DateMDY && total.dmy >= total.mdy {
			t.Fatalf("picked %v with %d values day first only and %d month first only", df, total.dmy, total.mdy)
		}
		for _, s := range voters[df.Layout] {
			if _, err := ParseDate(s, df); err != nil {
				t.Fatalf("%q voted for %v, which does not read it: %v", s, df, err)
			}
		}
	})
}
