package feature

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
)

var numberThousandsPoint = NumberFormat{Decimal: '.', Thousands: ','}

// numberPlain is the zero NumberFormat, named for the tables.
var numberPlain = NumberFormat{}

func TestParseAmount(t *testing.T) {
	// want is the amount in the plain format, or "" when it is not one.
	f := func(in string, nf NumberFormat, want string) {
		t.Helper()
		a, ok := ParseAmount([]byte(in), nf)
		got := ""
		if ok {
			got = a.String()
		}
		if got != want {
			t.Errorf("ParseAmount(%q, %v) = %q, %v; want %q", in, nf, got, ok, want)
		}
	}
	// The plain format: what ParseDecimal reads, nothing more.
	f("1234.56", numberPlain, "1234.56")
	f("-3", numberPlain, "-3")
	f("+.5", numberPlain, "0.5")
	f("5.", numberPlain, "5.")
	f("007.50", numberPlain, "7.50")
	f("-0.00", numberPlain, "-0.00")
	f("1,234.56", numberPlain, "")
	f("$5", numberPlain, "")
	f(" 5", numberPlain, "")
	f("1e3", numberPlain, "")
	f(".", numberPlain, "")
	f("", numberPlain, "")

	// A point for decimals.
	f("1234.56", numberPoint, "1234.56")
	f("1,234.56", numberPoint, "1234.56")
	f("1,234,567.8", numberPoint, "1234567.8")
	f("1,234", numberPoint, "1234")
	f("$ 1,234.56", numberPoint, "1234.56")
	f("$1,234.56", numberPoint, "1234.56")
	f("USD 1,234.56", numberPoint, "1234.56")
	f("1,234.56 USD", numberPoint, "1234.56")
	f("1,234.56MXN", numberPoint, "1234.56")
	f("US$1,234.56", numberPoint, "1234.56")
	f("MX$ 1,234.56", numberPoint, "1234.56")
	f("$ 1,234.56 M.N.", numberPoint, "1234.56")
	f("€5.00", numberPoint, "5.00")
	f("5.00 €", numberPoint, "5.00")
	f("5.00\x80", numberPoint, "5.00") // € in cp1252
	f("£5", numberPoint, "5")
	f("\xa35", numberPoint, "5") // £ in cp1252
	f("(1,234.56)", numberPoint, "-1234.56")
	f("$(1,234.56)", numberPoint, "-1234.56")
	f("($1,234.56)", numberPoint, "-1234.56")
	f("(1,234.56) MXN", numberPoint, "-1234.56")
	f("-$1,234.56", numberPoint, "-1234.56")
	f("$-1,234.56", numberPoint, "-1234.56")
	f("- 1,234.56", numberPoint, "-1234.56")
	f("1,234.56-", numberPoint, "-1234.56")
	f("+1,234.56", numberPoint, "1234.56")
	f("1'234.56", numberPoint, "1234.56")
	f("1 234.56", numberPoint, "1234.56")
	f("1\u00a0234.56", numberPoint, "1234.56")
	f("1\xa0234.56", numberPoint, "1234.56") // no-break space in cp1252
	f("1\u202f234\u202f567.5", numberPoint, "1234567.5")
	f("  12.5\u00a0", numberPoint, "12.5")
	f(".5", numberPoint, "0.5")
	f("-0.00", numberPoint, "-0.00")
	f("1,23.45", numberPoint, "")   // groups of 3
	f("12,34,567", numberPoint, "") // no lakh grouping
	f("1,2345.6", numberPoint, "")
	f("1234,567.8", numberPoint, "")
	f("0,123", numberPoint, "") // a group does not start with 0
	f("1,,234", numberPoint, "")
	f("1, 234", numberPoint, "") // one separator per value
	f("1 234,567.5", numberPoint, "")
	f(",123", numberPoint, "")
	f("1.234,56", numberPoint, "")
	f("1.5.6", numberPoint, "")
	f("1e3", numberPoint, "")
	f("NaN", numberPoint, "")
	f("$", numberPoint, "")
	f("--5", numberPoint, "")
	f("-(5)", numberPoint, "")
	f("(5", numberPoint, "")
	f("5)", numberPoint, "")
	f("$ MXN 5", numberPoint, "") // one currency a side
	f("ABCD 5", numberPoint, "")
	f("mxn 5", numberPoint, "") // codes are upper case
	f("5 à", numberPoint, "")
	f("9,223,372,036,854,775,808", numberPoint, "9223372036854775808")
	f("18446744073709551616", numberPoint, "")

	// A comma for decimals.
	f("1.234,56", numberComma, "1234.56")
	f("-1.234,56", numberComma, "-1234.56")
	f("1.234,56-", numberComma, "-1234.56")
	f("1 234,56", numberComma, "1234.56")
	f("1\u202f234,56 €", numberComma, "1234.56")
	f("1234,5", numberComma, "1234.5")
	f("1.234", numberComma, "1234")
	f("1234.56", numberComma, "")
	f("1,234.56", numberComma, "")

	// A thousands separator, when set, is the only one.
	f("1,234.56", numberThousandsPoint, "1234.56")
	f("1 234.56", numberThousandsPoint, "")
	f("1234.56", numberThousandsPoint, "1234.56")
	f("1 234,56", NumberFormat{Decimal: ',', Thousands: ' '}, "1234.56")
	f("1\u00a0234,56", NumberFormat{Decimal: ',', Thousands: ' '}, "1234.56")
	f("1.234,56", NumberFormat{Decimal: ',', Thousands: ' '}, "")
}

func TestAmount_Convert(t *testing.T) {
	f := func(in string, nf NumberFormat, digits int, wantDec int64, decErr bool, wantFloat float64, wantInt int64, intOK bool) {
		t.Helper()
		a, ok := ParseAmount([]byte(in), nf)
		if !ok {
			t.Fatalf("ParseAmount(%q, %v) failed", in, nf)
		}
		if d, err := a.Decimal(digits); (err != nil) != decErr || !decErr && d != wantDec {
			t.Errorf("%q: Decimal(%d) = %d, %v; want %d, err=%v", in, digits, d, err, wantDec, decErr)
		}
		if fl := a.Float(); math.Float64bits(fl) != math.Float64bits(wantFloat) {
			t.Errorf("%q: Float = %v; want %v", in, fl, wantFloat)
		}
		if i, ok := a.Int(); ok != intOK || ok && i != wantInt {
			t.Errorf("%q: Int = %d, %v; want %d, %v", in, i, ok, wantInt, intOK)
		}
	}
	f("(1,234.5678)", numberPoint, 4, -12345678, false, -1234.5678, 0, false)
	f("(1,234.5678)", numberPoint, 2, 0, true, -1234.5678, 0, false)
	f("1.234,5", numberComma, 2, 123450, false, 1234.5, 0, false)
	f("-0,00", numberComma, 2, 0, false, math.Copysign(0, -1), 0, false)
	f("1,234", numberPoint, 0, 1234, false, 1234, 1234, true)
	f("(5)", numberPoint, 4, -50000, false, -5, -5, true)
	f("5,", numberComma, 1, 50, false, 5, 0, false)
	f("9,223,372,036,854,775,807", numberPoint, 0, 0, true, 9223372036854775807, 9223372036854775807, true)
	f("-9.223.372.036.854.775.808", numberComma, 0, 0, true, -9223372036854775808, -9223372036854775808, true)
	f("922,337,203,685,477,570.9", numberPoint, 1, 9223372036854775709, false, 922337203685477570.9, 0, false)
	f("922,337,203,685,477,571.0", numberPoint, 1, 0, true, 922337203685477571.0, 0, false)
	f("0.1", numberPoint, 9, 100000000, false, 0.1, 0, false)
	f("123,456,789,012,345,678.9", numberPoint, 1, 1234567890123456789, false, 123456789012345678.9, 0, false)
	f("0.00000000000000000000000001", numberPoint, 9, 0, true, 1e-26, 0, false)
}

func TestNumberFormat_Parse(t *testing.T) {
	type res struct {
		v   string
		err string
	}
	f := func(method string, in string, nf NumberFormat, want res) {
		t.Helper()
		var v string
		var err error
		switch method {
		case "Decimal":
			var d int64
			d, err = nf.ParseDecimal([]byte(in), 2)
			v = strconv.FormatInt(d, 10)
		case "Float":
			var fl float64
			fl, err = nf.ParseFloat([]byte(in))
			v = strconv.FormatFloat(fl, 'g', -1, 64)
		case "Int":
			var i int64
			i, err = nf.ParseInt([]byte(in))
			v = strconv.FormatInt(i, 10)
		}
		got := res{v: v}
		if err != nil {
			got = res{err: err.Error()}
		}
		if got.v != want.v || !strings.Contains(got.err, want.err) || (got.err == "") != (want.err == "") {
			t.Errorf("%v.Parse%s(%q) = %+v; want %+v", nf, method, in, got, want)
		}
	}
	ok := func(v string) res { return res{v: v} }
	fail := func(e string) res { return res{err: e} }
	// The plain format is the parsers of old, errors included.
	f("Decimal", "12.5", numberPlain, ok("1250"))
	f("Decimal", "1,234.5", numberPlain, fail("not a decimal number"))
	f("Decimal", "", numberPlain, fail("empty field"))
	f("Float", "1e3", numberPlain, ok("1000"))
	f("Float", "1,5", numberPlain, fail("invalid syntax"))
	f("Float", "1e999", numberPlain, fail("value out of range"))
	f("Int", "-42", numberPlain, ok("-42"))
	f("Int", "4.0", numberPlain, fail("invalid syntax"))
	f("Int", "99999999999999999999", numberPlain, fail("value out of range"))
	f("Int", "", numberPlain, fail("empty field"))
	// Other formats read amounts as people write them.
	f("Decimal", "$ 1,234.5", numberPoint, ok("123450"))
	f("Decimal", "1.234,567", numberComma, fail("more than 2 fraction digits"))
	f("Decimal", "1,5", numberPoint, fail("not an amount (number format decimal=point)"))
	f("Decimal", "", numberComma, fail("empty field"))
	f("Float", "1.234,5", numberComma, ok("1234.5"))
	f("Float", "1e3", numberPoint, ok("1000")) // what strconv reads, a point format reads
	f("Float", "NaN", numberPoint, ok("NaN"))
	f("Float", "1e3", numberComma, fail("not an amount (number format decimal=comma)"))
	f("Int", "1.234", numberComma, ok("1234"))
	f("Int", "(1,234)", numberPoint, ok("-1234"))
	f("Int", "1,5", numberComma, fail("not an integer"))
	f("Int", "x", numberComma, fail("not an amount"))
}

func TestNumberFormat_String(t *testing.T) {
	f := func(in string, want NumberFormat, wantErr bool) {
		t.Helper()
		got, err := ParseNumberFormat(in)
		if (err != nil) != wantErr || got != want {
			t.Fatalf("ParseNumberFormat(%q) = %v, %v; want %v, err=%v", in, got, err, want, wantErr)
		}
		if err != nil {
			return
		}
		if back, err := ParseNumberFormat(got.String()); err != nil || back != got {
			t.Errorf("ParseNumberFormat(%q.String() = %q) = %v, %v", in, got.String(), back, err)
		}
	}
	f(",", numberComma, false)
	f(".", numberPoint, false)
	f("comma", numberComma, false)
	f("dot", numberPoint, false)
	f("plain", numberPlain, false)
	f("decimal=comma,thousands=space", NumberFormat{Decimal: ',', Thousands: ' '}, false)
	f("decimal=point,thousands=apostrophe", NumberFormat{Decimal: '.', Thousands: '\''}, false)
	f("decimal=point,thousands=comma", numberThousandsPoint, false)
	f("decimal=point,thousands=point", NumberFormat{}, true)
	f("thousands=comma", NumberFormat{}, true)
	f("decimal=x", NumberFormat{}, true)
	f("size=comma", NumberFormat{}, true)
	f(";", NumberFormat{}, true)
	f("", NumberFormat{}, true)
}

func TestSniffAmounts(t *testing.T) {
	f := func(want NumberFormat, wantErr error, samples ...string) {
		t.Helper()
		bs := make([][]byte, len(samples))
		for i, s := range samples {
			bs[i] = []byte(s)
		}
		got, err := SniffAmounts(bs)
		if !errors.Is(err, wantErr) || got != want {
			t.Errorf("SniffAmounts(%q) = %v, %v; want %v, %v", samples, got, err, want, wantErr)
		}
		if err != nil {
			return
		}
		// The format it finds reads every value that voted for it.
		for _, s := range samples {
			_, okP := ParseAmount([]byte(s), numberPoint)
			_, okC := ParseAmount([]byte(s), numberComma)
			if okP != okC && (okP == (got.Decimal == '.')) {
				if _, ok := ParseAmount([]byte(s), got); !ok {
					t.Errorf("SniffAmounts(%q) = %v, which does not read %q", samples, got, s)
				}
			}
		}
	}
	f(NumberFormat{Decimal: ',', Thousands: '.'}, nil, "1.234,56", "12,50")
	f(numberThousandsPoint, nil, "1,234.56", "5.00")
	f(numberThousandsPoint, nil, "$ 1,234.56", "$ 5.00", "$ 1,000,000.00")
	f(NumberFormat{Decimal: ',', Thousands: ' '}, nil, "1 234,56", "5,00")
	f(NumberFormat{Decimal: ',', Thousands: ' '}, nil, "1\u00a0234,56", "1\xa0234,56")
	f(NumberFormat{Decimal: ',', Thousands: '.'}, nil, "-1.234,56")
	f(numberThousandsPoint, nil, "(1,234.56)")
	f(numberPoint, nil, "1234.5", "12")
	f(numberPoint, nil, "1234", "56")           // integers read alike either way
	f(numberPoint, nil, "1,234.56", "1 234.56") // two groupings: any
	f(numberPoint, nil)
	f(numberPoint, nil, "abc", "")
	f(numberPoint, nil, "0.125")    // a group does not start with 0
	f(numberPoint, nil, "1234.567") // nor has 4 digits
	f(numberComma, nil, "1,234", "12,5")
	f(NumberFormat{Decimal: ',', Thousands: '.'}, nil, "1.234.567")
	f(NumberFormat{Decimal: '.', Thousands: ','}, nil, "1,234.56", "1,234.56", "1.234,56") // the majority
	f(NumberFormat{}, ErrAmbiguousDecimal, "1,234", "5,678")
	f(NumberFormat{}, ErrAmbiguousDecimal, "-1.234", "12")
	f(NumberFormat{}, ErrAmbiguousDecimal, "1,234.56", "1.234,56") // a tie
}
