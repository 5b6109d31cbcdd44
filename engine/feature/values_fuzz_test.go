package feature

import (
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The reference amount parser: the grammar of NumberFormat's doc as one
// regular expression over the value with its spaces and cp1252 symbols
// made plain, and the number checked by splitting strings. It is slow and
// written apart from ParseAmount's byte scanner.
var (
	refPlainRe = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$`)
	refCur     = `([A-Za-z]{1,3}\$|[A-Z]{3}|\$|€|£|¥|M\.N\.)`
	refAmount  = regexp.MustCompile(`^ *(?:` + refCur + ` *)?(?:(\() *)?(?:` + refCur + ` *)?(?:([+-]) *)?(?:` + refCur + ` *)?` +
		`([0-9.,'](?:[0-9.,' ]*[0-9.,'])?)` +
		` *(?:` + refCur + ` *)?(?:([+-]) *)?(?:` + refCur + ` *)?(?:(\)) *)?(?:` + refCur + ` *)?$`)
)

// refNormalize turns every space ParseAmount knows into ' ' and the cp1252
// currency bytes into their runes; other invalid bytes become U+FFFD.
func refNormalize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			switch s[i] {
			case 0xa0:
				r = ' '
			case 0x80:
				r = '€'
			case 0xa3:
				r = '£'
			case 0xa5:
				r = '¥'
			}
		}
		switch r {
		case '\u00a0', '\u202f', '\u2009':
			r = ' '
		}
		b.WriteRune(r)
		i += w
	}
	return b.String()
}

// refParseAmount returns the amount s holds in the format nf, written in
// the plain format, or false.
func refParseAmount(s string, nf NumberFormat) (string, bool) {
	if nf.Decimal == 0 {
		digits := strings.TrimLeft(strings.Replace(s, ".", "", 1), "+-")
		return s, refPlainRe.MatchString(s) && refUnitsOK(digits, len(s)-strings.Index(s+".", ".")-1)
	}
	m := refAmount.FindStringSubmatch(refNormalize(s))
	if m == nil {
		return "", false
	}
	// Groups: 1 cur, 2 '(', 3 cur, 4 sign, 5 cur, 6 number, 7 cur, 8 sign,
	// 9 cur, 10 ')', 11 cur.
	count := func(gs ...int) int {
		n := 0
		for _, g := range gs {
			if m[g] != "" {
				n++
			}
		}
		return n
	}
	if count(1, 3, 5) > 1 || count(7, 9, 11) > 1 || count(4, 8)+count(2) > 1 || count(2) != count(10) {
		return "", false
	}
	neg := m[4] == "-" || m[8] == "-" || m[2] != ""
	num := m[6]
	dec := string(nf.Decimal)
	if strings.Count(num, dec) > 1 {
		return "", false
	}
	intp, frac, point := strings.Cut(num, dec)
	allDigits := func(s string) bool { return strings.Trim(s, "0123456789") == "" }
	if !allDigits(frac) {
		return "", false
	}
	digits := intp
	if !allDigits(intp) {
		var sep string
		for _, r := range intp {
			if r < '0' || r > '9' {
				if sep != "" && sep != string(r) {
					return "", false
				}
				sep = string(r)
			}
		}
		if nf.Thousands != 0 && sep != string(nf.Thousands) {
			return "", false
		}
		groups := strings.Split(intp, sep)
		if len(groups[0]) < 1 || len(groups[0]) > 3 || groups[0][0] == '0' {
			return "", false
		}
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return "", false
			}
		}
		digits = strings.Join(groups, "")
	}
	if digits == "" && frac == "" || !refUnitsOK(digits+frac, len(frac)) {
		return "", false
	}
	out := digits
	if point {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out, true
}

// refUnitsOK reports whether an amount's digits and fraction digits fit
// Amount: at most 1<<63 units and 255 fraction digits.
func refUnitsOK(digits string, frac int) bool {
	units, _ := new(big.Int).SetString("0"+digits, 10)
	return frac <= 255 && units.Cmp(new(big.Int).Lsh(big.NewInt(1), 63)) <= 0
}

var fuzzFormats = []NumberFormat{
	numberPlain, numberPoint, numberComma,
	{Decimal: '.', Thousands: ','}, {Decimal: ',', Thousands: '.'},
	{Decimal: ',', Thousands: ' '}, {Decimal: '.', Thousands: '\''},
}

// FuzzParseAmount checks that ParseAmount never panics, agrees with the
// reference parser in every format, converts as the plain parsers convert
// the same number written plainly (ParseDecimal, strconv.ParseFloat,
// strconv.ParseInt), reads everything ParseDecimal reads to the same value,
// and that NumberSniffer's choice reads the values that voted for it.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"1234.56", "1,234.56", "1.234,56", "$ 1,234.56", "1 234,56", "1\u00a0234,56",
		"1\xa0234,56", "-1.234,56", "(1,234.56)", "$(1,234.56)", "1234.5", "1234", "-0.00", "+.5", "5.",
		"1,234.56 M.N.", "US$ 12", "1.234,56 €", "1.234,56\x80", "1'234.56", "1,234.56-", "9223372036854775808",
		"922337203685477570.9", "0.00000000000000000001", "1e3", "NaN", "1,23", "0,123", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var sn NumberSniffer
		sn.Add(b)
		sn.Format()
		if v, gp, gc := classifyAmount(b); true {
			sv, sgp, sgc := classifyAmountSlow(b)
			if v != sv || gp != sgp || gc != sgc {
				t.Fatalf("classifyAmount(%q) = %v, %b, %b; by parsing %v, %b, %b", b, v, gp, gc, sv, sgp, sgc)
			}
		}
		for _, nf := range fuzzFormats {
			a, ok := ParseAmount(b, nf)
			ref, refOK := refParseAmount(string(b), nf)
			if ok != refOK {
				t.Fatalf("ParseAmount(%q, %v) = %v, %v; the reference says %q, %v", b, nf, a, ok, ref, refOK)
			}
			if !ok {
				continue
			}
			if back, ok := ParseAmount([]byte(a.String()), numberPlain); !ok || back != a {
				t.Fatalf("ParseAmount(%q, %v) = %+v, whose plain form %q reads back as %+v, %v", b, nf, a, a.String(), back, ok)
			}
			for digits := 0; digits <= 9; digits++ {
				got, err := a.Decimal(digits)
				want, wantErr := ParseDecimal([]byte(ref), digits)
				if (err == nil) != (wantErr == nil) || got != want {
					t.Fatalf("ParseAmount(%q, %v).Decimal(%d) = %d, %v; ParseDecimal(%q) = %d, %v", b, nf, digits, got, err, ref, want, wantErr)
				}
			}
			want, err := strconv.ParseFloat(ref, 64)
			if got := a.Float(); err != nil || math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("ParseAmount(%q, %v).Float() = %v; strconv.ParseFloat(%q) = %v, %v", b, nf, got, ref, want, err)
			}
			wantInt, err := strconv.ParseInt(ref, 10, 64)
			if got, ok := a.Int(); ok != (err == nil) || ok && got != wantInt {
				t.Fatalf("ParseAmount(%q, %v).Int() = %d, %v; strconv.ParseInt(%q) = %d, %v", b, nf, got, ok, ref, wantInt, err)
			}
		}
		// Every format with a '.' decimal reads what ParseDecimal reads.
		for digits := 0; digits <= 9; digits++ {
			want, err := ParseDecimal(b, digits)
			if err != nil {
				continue
			}
			for _, nf := range []NumberFormat{numberPlain, numberPoint, {Decimal: '.', Thousands: ','}} {
				if got, err := nf.ParseDecimal(b, digits); err != nil || got != want {
					t.Fatalf("%v.ParseDecimal(%q, %d) = %d, %v; ParseDecimal gives %d", nf, b, digits, got, err, want)
				}
			}
		}
		// A point format's ParseFloat reads what strconv reads.
		if want, err := strconv.ParseFloat(string(b), 64); err == nil {
			if got, err := numberPoint.ParseFloat(b); err != nil || math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("numberPoint.ParseFloat(%q) = %v, %v; strconv gives %v", b, got, err, want)
			}
		}
	})
}

// refDateLayouts are time.Parse layouts for the day-first forms of sep.
func refDateLayouts(sep string, dayFirst bool) []string {
	date := "2" + sep + "1" + sep + "2006"
	if !dayFirst {
		date = "1" + sep + "2" + sep + "2006"
	}
	out := []string{date}
	for _, tsep := range []string{" ", "T"} {
		for _, tm := range []string{"15:04", "15:04:05.999999999"} {
			for _, z := range []string{"", "Z07:00"} {
				out = append(out, date+tsep+tm+z)
			}
		}
	}
	return out
}

// FuzzParseDate checks that ParseDate never panics; that with the zero
// DateFormat it is ParseTime, and reads what time.Parse reads in the ISO
// layouts, with the zone when there is one; that the day-first and
// month-first layouts agree with time.Parse both ways; and that epoch
// agrees with strconv and time.Unix.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2023-01-31T14:05:00", "2023-01-31 14:05:00", "2023-01-31", "2023-01-31T14:05:00Z",
		"2023-01-31T14:05:00+01:00", "2023-01-31 14:05:00.5-06:00", "31/01/2023", "31/01/2023 14:05",
		"01/31/2023", "1/2/2023 9:05:07.25Z", "31.01.2023 14:05:00+05:30", "31-01-2023T14:05", "1675173900",
		"-1675173900.5", "2024-02-30", "2024-12-31 10:00:60", "29/02/2024", "x", ""} {
		f.Add([]byte(s))
	}
	cst := time.FixedZone("CST", -6*3600)
	f.Fuzz(func(t *testing.T, b []byte) {
		s := string(b)
		var sn DateSniffer
		sn.Add(b)
		sn.Format()
		for _, l := range []DateLayout{DateISO, DateDMY, DateMDY, DateEpoch} {
			ParseDate(b, DateFormat{Layout: l, Location: cst})
		}

		// ISO is ParseTime.
		got, err := ParseDate(b, DateFormat{})
		want, wantErr := ParseTime(b)
		if (err == nil) != (wantErr == nil) || got.Time != want {
			t.Fatalf("ParseDate(%q, ISO) = %v, %v; ParseTime gives %v, %v", b, got.Time, err, want, wantErr)
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05Z07:00"} {
			ref, err := time.Parse(layout, s)
			if err != nil {
				continue
			}
			got, err := ParseDate(b, DateFormat{})
			if err != nil || !got.Time.Equal(ref) || got.Zoned != strings.HasSuffix(layout, "Z07:00") {
				t.Fatalf("ParseDate(%q, ISO) = %+v, %v; time.Parse(%q) gives %v", b, got, err, layout, ref)
			}
		}

		// Day first and month first are time.Parse in every layout they
		// stand for.
		for _, dayFirst := range []bool{true, false} {
			df := DateFormat{Layout: DateDMY}
			if !dayFirst {
				df.Layout = DateMDY
			}
			got, err := ParseDate(b, df)
			var ref time.Time
			var refLayout string
			for _, sep := range []string{"/", "-", "."} {
				for _, layout := range refDateLayouts(sep, dayFirst) {
					// NB: time.Parse also takes a comma before the
					// fraction and a run of spaces for one; ParseDate
					// does not.
					if r, err := time.Parse(layout, s); err == nil && !strings.Contains(s, ",") && !strings.Contains(s, "  ") {
						ref, refLayout = r, layout
					}
				}
			}
			if (err == nil) != (refLayout != "") || err == nil && (!got.Time.Equal(ref) || got.Zoned != strings.HasSuffix(refLayout, "Z07:00")) {
				t.Fatalf("ParseDate(%q, %v) = %+v, %v; time.Parse(%q) gives %v", b, df, got, err, refLayout, ref)
			}
		}

		// Epoch is strconv and time.Unix.
		got, err = ParseDate(b, DateFormat{Layout: DateEpoch})
		intPart, frac, hasFrac := strings.Cut(s, ".")
		sec, err1 := strconv.ParseInt(intPart, 10, 64)
		okRef := err1 == nil && len(strings.TrimPrefix(intPart, "-")) <= maxEpochDigits && !strings.HasPrefix(intPart, "+") &&
			(!hasFrac || len(frac) >= 1 && len(frac) <= 9 && strings.Trim(frac, "0123456789") == "")
		if (err == nil) != okRef {
			t.Fatalf("ParseDate(%q, epoch) = %v, %v; the reference says ok=%v", b, got.Time, err, okRef)
		}
		if okRef {
			ns, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
			if strings.HasPrefix(intPart, "-") {
				ns = -ns
			}
			if ref := time.Unix(sec, ns); !got.Time.Equal(ref) || !got.Zoned {
				t.Fatalf("ParseDate(%q, epoch) = %+v; want %v", b, got, ref)
			}
		}
	})
}
