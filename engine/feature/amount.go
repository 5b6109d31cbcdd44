package feature

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// NumberFormat is how one file writes its numbers: which byte separates
// the decimals and which one groups the thousands. A reader finds it per
// file with [SniffAmounts] (or takes it from --decimal) and hands it to the
// parsers; [ParseAmount] and the methods below read values with it.
//
// The zero NumberFormat is the plain format mce has always read, and it
// reads exactly as before: an optional sign, digits and at most one '.',
// nothing else (the methods are then [ParseDecimal], strconv.ParseFloat and
// strconv.ParseInt, errors included). A NumberFormat with Decimal set reads
// amounts as people write them:
//
//	1234.56   1,234.56   $ 1,234.56   USD 1,234.56   1.234,56 €   1 234,56
//	-1.234,56   (1,234.56)   1.234,56-   $(1,234.56)   1'234.56   1234,5
//
// That is, around the number, in any order and with spaces between them: at
// most one sign ('-' or '+', before or after the number) or else a pair of
// parentheses (negative), and at most one currency on each side ("$ 1,234.56
// M.N." is common in Mexico): '$', '€', '£', '¥'
// (UTF-8 or cp1252), three upper-case letters (MXN, USD, EUR, ...), one to
// three letters and '$' (US$, MX$, R$), or "M.N.". Spaces are ' ', the
// no-break space U+00A0 (UTF-8 or cp1252) and U+202F, U+2009. The number
// itself is digits with at most one Decimal separator; digits before it may
// be grouped by thousands: a first group of 1 to 3 digits that does not
// start with 0, then groups of exactly 3, all separated by the same
// separator. Other groupings (1,23,456.78) and exponents are not amounts.
type NumberFormat struct {
	// Decimal is the decimal separator, '.' or ','; 0 is the plain format.
	Decimal byte
	// Thousands is the only grouping separator a value may use: ',', '.',
	// '\'' or ' ' (which stands for every space above). 0 allows any of
	// them but Decimal. It is ignored by the plain format.
	Thousands byte
}

// The point and comma formats with any thousands separator.
var (
	numberPoint = NumberFormat{Decimal: '.'}
	numberComma = NumberFormat{Decimal: ','}
)

// Validate reports whether nf is a format the parsers know.
func (nf NumberFormat) Validate() error {
	switch nf.Decimal {
	case 0:
		if nf.Thousands != 0 {
			return fmt.Errorf("number format: thousands separator %q without a decimal separator", nf.Thousands)
		}
		return nil
	case '.', ',':
	default:
		return fmt.Errorf("number format: decimal separator %q: want '.' or ','", nf.Decimal)
	}
	switch nf.Thousands {
	case 0, ',', '.', '\'', ' ':
	default:
		return fmt.Errorf("number format: thousands separator %q: want ',', '.', '\\'' or ' '", nf.Thousands)
	}
	if nf.Thousands == nf.Decimal {
		return fmt.Errorf("number format: %q is both the decimal and the thousands separator", nf.Decimal)
	}
	return nil
}

// String returns the format as [ParseNumberFormat] reads it: "plain", or
// the separators by name, "decimal=comma" or
// "decimal=point,thousands=comma" (names: point, comma, apostrophe, space).
func (nf NumberFormat) String() string {
	if nf.Decimal == 0 {
		return "plain"
	}
	s := "decimal=" + sepName(nf.Decimal)
	if nf.Thousands != 0 {
		s += ",thousands=" + sepName(nf.Thousands)
	}
	return s
}

func sepName(c byte) string {
	switch c {
	case '.':
		return "point"
	case ',':
		return "comma"
	case '\'':
		return "apostrophe"
	case ' ':
		return "space"
	}
	return fmt.Sprintf("0x%02x", c)
}

// ParseNumberFormat reads a number format as given on a command line or
// kept in a manifest: the decimal separator alone, "," "." "comma" "point"
// or "dot" (--decimal), "plain", or what String returns.
func ParseNumberFormat(s string) (NumberFormat, error) {
	var nf NumberFormat
	sep := func(v string) (byte, bool) {
		switch strings.ToLower(v) {
		case ".", "point", "dot", "period":
			return '.', true
		case ",", "comma":
			return ',', true
		case "'", "apostrophe":
			return '\'', true
		case " ", "space":
			return ' ', true
		}
		return 0, false
	}
	if d, ok := sep(s); ok && (d == '.' || d == ',') {
		return NumberFormat{Decimal: d}, nil
	}
	if strings.EqualFold(s, "plain") {
		return nf, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		k, v, _ := strings.Cut(part, "=")
		c, ok := sep(v)
		switch {
		case !ok:
			return NumberFormat{}, fmt.Errorf("number format %q: want \",\" or \".\" (the decimal separator), plain, or decimal=NAME[,thousands=NAME]", s)
		case k == "decimal":
			nf.Decimal = c
		case k == "thousands":
			nf.Thousands = c
		default:
			return NumberFormat{}, fmt.Errorf("number format %q: unknown part %q", s, k)
		}
	}
	if nf.Decimal == 0 {
		return NumberFormat{}, fmt.Errorf("number format %q: no decimal separator", s)
	}
	if err := nf.Validate(); err != nil {
		return NumberFormat{}, fmt.Errorf("number format %q: %w", s, err)
	}
	return nf, nil
}

// Amount is a number read by [ParseAmount], exactly as written: its digits
// as an integer, how many of them are fraction digits, and its sign. Its
// methods convert it as the plain parsers would convert the same number
// written plainly ("(1.234,50)" as "-1234.50").
type Amount struct {
	units uint64 // all digits: "1.234,50" is 123450; at most 1<<63
	scale uint8  // fraction digits as written
	neg   bool
	point bool // a decimal separator was written: "5." is not an integer
}

// Scale returns the number of fraction digits written.
func (a Amount) Scale() int { return int(a.scale) }

// Units returns the amount's digits as an integer with its sign:
// "-1.234,50" is -123450 (with Scale 2), and false when that does not fit
// an int64.
func (a Amount) Units() (int64, bool) {
	if a.neg {
		if a.units > 1<<63 {
			return 0, false
		}
		return -int64(a.units), true
	}
	if a.units > math.MaxInt64 {
		return 0, false
	}
	return int64(a.units), true
}

var errDecimalRange = errors.New("decimal out of range")

// maxDecimalUnits is the largest number of units ParseDecimal accepts:
// it refuses to add a digit to more than (1<<63-1)/10-10.
const maxDecimalUnits = ((1<<63-1)/10-10)*10 + 9

// pow10Int holds the powers of ten up to 10^9, and maxScaled[s] the most
// units that ParseDecimal scales by 10^s: it multiplies by 10 one step at
// a time, each time from at most (1<<63-1)/10.
var (
	pow10Int  = [10]int64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}
	maxScaled = [10]int64{9223372036854775807, 922337203685477580, 92233720368547758, 9223372036854775, 922337203685477, 92233720368547, 9223372036854, 922337203685, 92233720368, 9223372036}
)

// Decimal returns the amount scaled by 10^digits, as [ParseDecimal] gives
// it for the same number written plainly: more fraction digits than asked
// for are an error (so that sums stay exact), and so is a value out of
// range.
func (a Amount) Decimal(digits int) (int64, error) {
	s := uint(digits - int(a.scale))
	if uint(digits) > 9 || s > 9 || a.units > maxDecimalUnits || int64(a.units) > maxScaled[s] {
		return 0, a.decimalErr(digits)
	}
	v := int64(a.units) * pow10Int[s]
	if a.neg {
		v = -v
	}
	return v, nil
}

func (a Amount) decimalErr(digits int) error {
	switch {
	case digits < 0 || digits > 9:
		return fmt.Errorf("decimal digits %d out of range 0..9", digits)
	case int(a.scale) > digits:
		return fmt.Errorf("more than %d fraction digits", digits)
	}
	return errDecimalRange
}

// pow10 holds the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// Float returns the float64 nearest to the amount, the one
// strconv.ParseFloat gives for the same number written plainly (a negative
// zero stays negative).
func (a Amount) Float() float64 {
	if a.units > 1<<53 || int(a.scale) >= len(pow10) {
		// AppendPlain writes the sign too.
		var buf [32]byte
		f, err := strconv.ParseFloat(string(a.AppendPlain(buf[:0])), 64)
		if err != nil { // AppendPlain writes digits and a '.': our bug.
			panic("BUG: amount " + a.String() + ": " + err.Error())
		}
		return f
	}
	// Both operands are exact, so the one rounding of the division is the
	// correctly rounded value, as strconv's own fast path computes it.
	f := float64(a.units) / pow10[a.scale]
	if a.neg {
		f = -f
	}
	return f
}

// Int returns the amount as an integer, as strconv.ParseInt reads the same
// number written plainly: false when it was written with a decimal
// separator ("5.", "5,00") or does not fit an int64.
func (a Amount) Int() (int64, bool) {
	if a.point {
		return 0, false
	}
	return a.Units()
}

// AppendPlain appends the amount in the plain format, the way ParseDecimal
// and strconv read it: a '-' when negative, the integer digits (at least
// one), and the decimal point and fraction digits when one was written:
// "(1.234,50)" gives "-1234.50", "5," gives "5.", ",5" gives "0.5".
func (a Amount) AppendPlain(dst []byte) []byte {
	if a.neg {
		dst = append(dst, '-')
	}
	var tmp [20]byte
	i := len(tmp)
	for v := a.units; v > 0; v /= 10 {
		i--
		tmp[i] = byte('0' + v%10)
	}
	digits := tmp[i:]
	// Fraction digits beyond the significant ones are leading zeros.
	if n := int(a.scale) - len(digits); n >= 0 {
		dst = append(dst, '0')
		if a.point {
			dst = append(dst, '.')
		}
		for ; n > 0; n-- {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	cut := len(digits) - int(a.scale)
	dst = append(dst, digits[:cut]...)
	if a.point {
		dst = append(dst, '.')
	}
	return append(dst, digits[cut:]...)
}

// String returns the amount in the plain format (see AppendPlain).
func (a Amount) String() string { return string(a.AppendPlain(nil)) }

// ParseAmount reads b as an amount in the format nf (see [NumberFormat]).
// It does not allocate. Plain values ("1234.56", "-3") take a fast path
// in every format; with the zero NumberFormat they are all it accepts, and
// it accepts exactly what [ParseDecimal] does.
func ParseAmount(b []byte, nf NumberFormat) (Amount, bool) {
	// The fast path: [+-]digits[dec digits].
	dec := nf.Decimal
	if dec == 0 {
		dec = '.'
	}
	var a Amount
	i := 0
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		a.neg = b[0] == '-'
		i = 1
	}
	start, pt := i, -1
	var v uint64
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 {
			if b[i] == dec && pt < 0 {
				pt = i
				continue
			}
			// A second decimal separator is wrong in every format.
			if nf.Decimal == 0 || b[i] == dec {
				return a, false
			}
			a, _, ok := parseAmount(b, nf)
			return a, ok
		}
		if v >= (1<<63)/10 && (v > (1<<63)/10 || d > (1<<63)%10) {
			return a, false
		}
		v = v*10 + uint64(d)
	}
	nd := len(b) - start
	if pt >= 0 {
		nd--
		frac := len(b) - pt - 1
		if frac > math.MaxUint8 {
			return a, false
		}
		a.point, a.scale = true, uint8(frac)
	}
	a.units = v
	return a, nd > 0
}

// parseAmount is ParseAmount's full parser; nf.Decimal is not 0. It also
// returns the thousands separator the value used (' ' for any space), or
// 0.
func parseAmount(b []byte, nf NumberFormat) (a Amount, grp byte, ok bool) {
	core, neg, ok := amountCore(b)
	if !ok {
		return a, 0, false
	}
	a.neg = neg
	var v uint64
	nd, frac, run := 0, -1, 0
	lead := byte(0) // the first digit
	for i := 0; i < len(core); {
		c := core[i]
		if d := c - '0'; d <= 9 {
			if v >= (1<<63)/10 && (v > (1<<63)/10 || d > (1<<63)%10) {
				return a, 0, false
			}
			if nd == 0 {
				lead = c
			}
			v = v*10 + uint64(d)
			nd++
			run++
			if frac >= 0 {
				frac++
			}
			i++
			continue
		}
		if c == nf.Decimal {
			if frac >= 0 || grp != 0 && run != 3 {
				return a, 0, false
			}
			frac = 0
			i++
			continue
		}
		cls, w := c, 1
		switch c {
		case ',', '.', '\'':
		default:
			if w = spaceLen(core[i:]); w == 0 {
				return a, 0, false
			}
			cls = ' '
		}
		switch {
		case frac >= 0, nf.Thousands != 0 && cls != nf.Thousands, grp != 0 && cls != grp:
			return a, 0, false
		case grp == 0 && (run < 1 || run > 3 || lead == '0'), grp != 0 && run != 3:
			return a, 0, false
		}
		grp, run = cls, 0
		i += w
	}
	if nd == 0 || grp != 0 && frac < 0 && run != 3 || frac > math.MaxUint8 {
		return a, 0, false
	}
	a.units = v
	if frac >= 0 {
		a.point = true
		a.scale = uint8(frac)
	}
	return a, grp, true
}

// amountCore strips the spaces, sign, parentheses and currency around an
// amount and returns the number between them.
func amountCore(b []byte) (core []byte, neg, ok bool) {
	var sign, paren, cur, curEnd int
	for len(b) > 0 {
		if n := spaceLen(b); n > 0 {
			b = b[n:]
			continue
		}
		switch c := b[0]; {
		case c == '-' || c == '+':
			sign++
			neg = c == '-'
			b = b[1:]
			continue
		case c == '(':
			paren++
			b = b[1:]
			continue
		}
		if n := currencyLen(b); n > 0 {
			cur++
			b = b[n:]
			continue
		}
		break
	}
	closed := 0
	for len(b) > 0 {
		if n := spaceLenEnd(b); n > 0 {
			b = b[:len(b)-n]
			continue
		}
		switch c := b[len(b)-1]; {
		case c == '-' || c == '+':
			sign++
			neg = c == '-'
			b = b[:len(b)-1]
			continue
		case c == ')':
			closed++
			b = b[:len(b)-1]
			continue
		}
		if n := currencyLenEnd(b); n > 0 {
			curEnd++
			b = b[:len(b)-n]
			continue
		}
		break
	}
	if len(b) == 0 || cur > 1 || curEnd > 1 || paren > 1 || paren != closed || sign+paren > 1 {
		return nil, false, false
	}
	return b, neg || paren == 1, true
}

// spaceLen returns the length of the space that starts b, or 0: ' ', a
// no-break space (U+00A0 in UTF-8 or cp1252), or U+202F or U+2009.
func spaceLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	switch b[0] {
	case ' ', 0xa0:
		return 1
	case 0xc2:
		if len(b) > 1 && b[1] == 0xa0 {
			return 2
		}
	case 0xe2:
		if len(b) > 2 && b[1] == 0x80 && (b[2] == 0xaf || b[2] == 0x89) {
			return 3
		}
	}
	return 0
}

// spaceLenEnd returns the length of the space that ends b, or 0.
func spaceLenEnd(b []byte) int {
	n := len(b)
	if n == 0 {
		return 0
	}
	switch b[n-1] {
	case ' ':
		return 1
	case 0xa0:
		if n > 1 && b[n-2] == 0xc2 {
			return 2
		}
		return 1
	case 0xaf, 0x89:
		if n > 2 && b[n-3] == 0xe2 && b[n-2] == 0x80 {
			return 3
		}
	}
	return 0
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isUpper(c byte) bool  { return c >= 'A' && c <= 'Z' }

// currencyLen returns the length of the currency that starts b, or 0.
func currencyLen(b []byte) int {
	switch {
	case len(b) == 0:
		return 0
	case b[0] == '$', b[0] == 0x80, b[0] == 0xa3, b[0] == 0xa5: // $, cp1252 € £ ¥
		return 1
	case len(b) >= 2 && b[0] == 0xc2 && (b[1] == 0xa3 || b[1] == 0xa5): // £ ¥
		return 2
	case len(b) >= 3 && b[0] == 0xe2 && b[1] == 0x82 && b[2] == 0xac: // €
		return 3
	case len(b) >= 4 && string(b[:4]) == "M.N.":
		return 4
	}
	n := 0
	for n < len(b) && n < 4 && isLetter(b[n]) {
		n++
	}
	switch {
	case n >= 1 && n <= 3 && n < len(b) && b[n] == '$': // US$
		return n + 1
	case n == 3 && isUpper(b[0]) && isUpper(b[1]) && isUpper(b[2]): // MXN
		return 3
	}
	return 0
}

// currencyLenEnd returns the length of the currency that ends b, or 0.
func currencyLenEnd(b []byte) int {
	n := len(b)
	switch {
	case n == 0:
		return 0
	case b[n-1] == '$':
		k := 0
		for k < n-1 && k < 4 && isLetter(b[n-2-k]) {
			k++
		}
		if k <= 3 {
			return k + 1
		}
		return 1
	case n >= 2 && b[n-2] == 0xc2 && (b[n-1] == 0xa3 || b[n-1] == 0xa5):
		return 2
	case n >= 3 && b[n-3] == 0xe2 && b[n-2] == 0x82 && b[n-1] == 0xac:
		return 3
	case b[n-1] == 0x80, b[n-1] == 0xa3, b[n-1] == 0xa5:
		return 1
	case n >= 4 && string(b[n-4:]) == "M.N.":
		return 4
	}
	k := 0
	for k < n && k < 4 && isLetter(b[n-1-k]) {
		k++
	}
	if k == 3 && isUpper(b[n-1]) && isUpper(b[n-2]) && isUpper(b[n-3]) {
		return 3
	}
	return 0
}

var errAmount = errors.New("not an amount")

// ParseDecimal reads b in the format nf as a fixed-point decimal scaled by
// 10^digits (see [Amount.Decimal]). For the plain format it is the package's
// ParseDecimal; a format whose Decimal is '.' tries that first too, so
// plain values cost what they always did.
func (nf NumberFormat) ParseDecimal(b []byte, digits int) (int64, error) {
	if nf.Decimal == 0 || nf.Decimal == '.' {
		v, err := ParseDecimal(b, digits)
		if err == nil || nf.Decimal == 0 {
			return v, err
		}
	}
	if len(b) == 0 {
		return 0, ErrEmpty
	}
	a, ok := ParseAmount(b, nf)
	if !ok {
		return 0, nf.errAmount()
	}
	return a.Decimal(digits)
}

// ParseFloat reads b in the format nf as a float64. For the plain format
// it is strconv.ParseFloat, and so is it for what ParseAmount does not
// read in a format whose Decimal is '.' ("1e3", "NaN", "Inf"). The error
// is the cause alone (ErrEmpty, strconv.ErrSyntax, strconv.ErrRange or one
// that names the format), for the caller to name the value.
func (nf NumberFormat) ParseFloat(b []byte) (float64, error) {
	if len(b) == 0 {
		return 0, ErrEmpty
	}
	if nf.Decimal != 0 {
		if a, ok := ParseAmount(b, nf); ok {
			return a.Float(), nil
		}
		if nf.Decimal != '.' {
			return 0, nf.errAmount()
		}
	}
	v, err := strconv.ParseFloat(unsafeString(b), 64)
	if err != nil {
		return 0, errors.Unwrap(err)
	}
	return v, nil
}

// ParseInt reads b in the format nf as a base-10 integer. For the plain
// format it is strconv.ParseInt; in others, grouped digits, currencies and
// parentheses are read as by ParseAmount, but not a decimal separator. The
// error is the cause alone, as for ParseFloat.
func (nf NumberFormat) ParseInt(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, ErrEmpty
	}
	if nf.Decimal == 0 {
		v, err := strconv.ParseInt(unsafeString(b), 10, 64)
		if err != nil {
			return 0, errors.Unwrap(err)
		}
		return v, nil
	}
	a, ok := ParseAmount(b, nf)
	if !ok {
		return 0, nf.errAmount()
	}
	v, ok := a.Int()
	if !ok {
		return 0, errors.New("not an integer")
	}
	return v, nil
}

func (nf NumberFormat) errAmount() error {
	return fmt.Errorf("%w (number format %s)", errAmount, nf)
}
