package feature

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/mce-engine/mce/internal/ascii"
	"github.com/mce-engine/mce/internal/civil"
	"github.com/mce-engine/mce/internal/cp1252"
)

// Row is one input row: one field per column of the schema, as raw bytes.
//
// A Row handed out by [Rows] is only valid until the next call to Next; the
// byte slices it returns alias the engine's buffers. Copy what you keep
// (string(b), or [Row.String], which always copies).
type Row struct {
	// Fields holds the raw bytes of each column, in schema order.
	Fields [][]byte
	// Encoding is the text encoding of the file the row came from.
	Encoding Encoding
	// Schema names the columns. It may be nil in tests; errors then name
	// the column by position.
	Schema *Schema
	// Parsed holds values the engine already has for some of Fields (the
	// seconds of the times a store keeps packed), so that Time and the
	// built-in features do not parse them again. The zero Parsed holds
	// none; a row built by hand needs none.
	Parsed Parsed

	// rcv is the receiver's key as the built-in features' Slot packed it
	// for the Add that follows on this row, so that Add does not pack it
	// again; its first byte is 0 when there is none.
	rcv rcvKey
}

// Parsed holds values of a row's fields, for the first 64 columns: bit j
// of Times set means that Values[j] holds the Unix seconds of Fields[j],
// a time without a zone in the form "YYYY-MM-DD hh:mm:ss" or
// "YYYY-MM-DDThh:mm:ss", read as UTC: what [LocalSeconds] and
// [ParseTime] read it as. Bit j of Decimals set means that Values[j]
// holds Fields[j], a decimal number in its plain spelling ("-1234.50",
// "7": an optional "-", then "0" or digits not starting with 0, then
// "." and Scales[j] digits when Scales[j] is not 0), in units of its
// last digit (-123450, 7), with at most 17 digits in all. Whoever sets a
// bit must set it only for such a value; Values and Scales may hold
// anything where no bit is set.
type Parsed struct {
	Times    uint64
	Decimals uint64
	Values   []int64
	Scales   []uint8
}

// hasTime reports whether Values holds the seconds of column i.
func (p *Parsed) hasTime(i int) bool { return uint(i) < 64 && p.Times>>uint(i)&1 != 0 }

// decimal returns what ParseDecimal(Fields[i], digits) returns, value
// and error alike, when Values holds column i (has); has is false
// otherwise, and the text is to be parsed.
func (p *Parsed) decimal(i, digits int) (v int64, has bool, err error) {
	if uint(i) >= 64 || p.Decimals>>uint(i)&1 == 0 || digits < 0 || digits > 9 {
		return 0, false, nil
	}
	v, err = scaleUnits(p.Values[i], int(p.Scales[i]), digits)
	return v, true, err
}

// scaleUnits returns what ParseDecimal(text, digits) returns for the text
// of units u at scale fraction digits (a plain decimal of at most 17
// digits: Parsed).
func scaleUnits(u int64, scale, digits int) (int64, error) {
	if scale > digits {
		return 0, fmt.Errorf("more than %d fraction digits", digits)
	}
	// The text has at most 17 digits, which ParseDecimal reads without
	// reaching its bound; then it multiplies by ten once per fraction
	// digit the text lacks, as here.
	v := u
	if u < 0 {
		v = -u
	}
	for ; scale < digits; scale++ {
		if v > (1<<63-1)/10 {
			return 0, errors.New("decimal out of range")
		}
		v *= 10
	}
	if u < 0 {
		v = -v
	}
	return v, nil
}

// LocalSeconds reads b as a time without a zone in one of the forms
// "YYYY-MM-DD", "YYYY-MM-DD hh:mm:ss" and "YYYY-MM-DDThh:mm:ss", in UTC,
// and returns its Unix seconds: what ParseTime(b).Unix() gives for those
// forms, which ParseTime reads with it. It reports false for any other
// form (which ParseTime may still read).
func LocalSeconds(b []byte) (int64, bool) { return fastUnix(b) }

// unixNano is parseUnixNano(Fields[i]).
func (r *Row) unixNano(i int) (int64, error) {
	if r.Parsed.hasTime(i) {
		return secondsNano(r.Parsed.Values[i])
	}
	return parseUnixNano(r.Fields[i])
}

// ErrEmpty is returned by the typed accessors for an empty field.
var ErrEmpty = errors.New("empty field")

// FieldError reports a field that could not be read as the asked type.
type FieldError struct {
	Column string
	Value  string
	Err    error
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("column %s: cannot parse %q: %v", e.Column, e.Value, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

func (r *Row) fieldErr(i int, err error) error {
	name := "#" + strconv.Itoa(i+1)
	if r.Schema != nil && i < r.Schema.Len() {
		name = r.Schema.Name(i)
	}
	v := r.Fields[i]
	if len(v) > 64 {
		v = v[:64]
	}
	return &FieldError{Column: name, Value: string(v), Err: err}
}

// Bytes returns field i as it was in the file (not decoded). It aliases the
// engine's buffer: valid until the iterator moves on.
func (r *Row) Bytes(i int) []byte { return r.Fields[i] }

// String returns field i as UTF-8 text, decoding cp1252 when the file (or,
// with auto encoding, the field) is cp1252. It always returns a copy.
func (r *Row) String(i int) string { return DecodeText(r.Fields[i], r.Encoding) }

// DecodeText returns b as a UTF-8 string, decoding it from cp1252 when enc
// says so (or, for EncodingAuto, when b is not valid UTF-8). Invalid UTF-8
// in an EncodingUTF8 field becomes U+FFFD.
func DecodeText(b []byte, enc Encoding) string {
	if ascii.Valid(b) {
		return string(b)
	}
	switch enc {
	case EncodingCP1252:
		return decodeCP1252(b)
	case EncodingUTF8:
		if utf8.Valid(b) {
			return string(b)
		}
		return string([]rune(string(b))) // replaces invalid bytes with U+FFFD
	default:
		if utf8.Valid(b) {
			return string(b)
		}
		return decodeCP1252(b)
	}
}

func decodeCP1252(b []byte) string { return string(cp1252.AppendUTF8(nil, b)) }

// unsafeString views b as a string without copying, for parsing only: the
// result must not outlive the call.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// Int parses field i as a base-10 integer.
func (r *Row) Int(i int) (int64, error) {
	b := r.Fields[i]
	if len(b) == 0 {
		return 0, r.fieldErr(i, ErrEmpty)
	}
	v, err := strconv.ParseInt(unsafeString(b), 10, 64)
	if err != nil {
		return 0, r.fieldErr(i, errors.Unwrap(err))
	}
	return v, nil
}

// Float parses field i as a decimal number ("1234.5", "-3", "1e3").
func (r *Row) Float(i int) (float64, error) {
	b := r.Fields[i]
	if len(b) == 0 {
		return 0, r.fieldErr(i, ErrEmpty)
	}
	v, err := strconv.ParseFloat(unsafeString(b), 64)
	if err != nil {
		return 0, r.fieldErr(i, errors.Unwrap(err))
	}
	return v, nil
}

// Decimal parses field i as a fixed-point decimal with the given number of
// fraction digits (0 to 9) and returns it scaled: with digits=4, "12.5"
// becomes 125000. More fraction digits than asked for are an error, so that
// sums of Decimals are exact and do not depend on the order of rows.
func (r *Row) Decimal(i int, digits int) (int64, error) {
	v, err := r.decimal(i, digits)
	if err != nil {
		return 0, r.fieldErr(i, err)
	}
	return v, nil
}

// decimal is Decimal without the column in its error: the value Parsed
// holds for column i, else its text parsed. A row without parsed decimals
// (every row of `mce run`) costs one test before the parse.
func (r *Row) decimal(i, digits int) (int64, error) {
	if r.Parsed.Decimals != 0 {
		if v, has, err := r.Parsed.decimal(i, digits); has {
			return v, err
		}
	}
	return ParseDecimal(r.Fields[i], digits)
}

var errDecimal = errors.New("not a decimal number")

// ParseDecimal parses b as a fixed-point decimal scaled by 10^digits.
func ParseDecimal(b []byte, digits int) (int64, error) {
	if digits < 0 || digits > 9 {
		return 0, fmt.Errorf("decimal digits %d out of range 0..9", digits)
	}
	if len(b) == 0 {
		return 0, ErrEmpty
	}
	neg := false
	switch b[0] {
	case '-':
		neg = true
		b = b[1:]
	case '+':
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, errDecimal
	}
	var v int64
	frac := -1
	nd := 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if frac >= 0 {
				if frac == digits {
					return 0, fmt.Errorf("more than %d fraction digits", digits)
				}
				frac++
			}
			if v > (1<<63-1)/10-10 {
				return 0, errors.New("decimal out of range")
			}
			v = v*10 + int64(c-'0')
			nd++
		case c == '.' && frac < 0:
			frac = 0
		default:
			return 0, errDecimal
		}
	}
	if nd == 0 {
		return 0, errDecimal
	}
	if frac < 0 {
		frac = 0
	}
	for ; frac < digits; frac++ {
		if v > (1<<63-1)/10 {
			return 0, errors.New("decimal out of range")
		}
		v *= 10
	}
	if neg {
		v = -v
	}
	return v, nil
}

// Time parses field i as a timestamp: "2006-01-02T15:04:05" or with a space
// instead of T, optional fraction and zone ("Z", "+01:00"), or a date
// "2006-01-02" alone. Times without a zone are UTC.
func (r *Row) Time(i int) (time.Time, error) {
	if r.Parsed.hasTime(i) {
		return time.Unix(r.Parsed.Values[i], 0).UTC(), nil
	}
	t, err := ParseTime(r.Fields[i])
	if err != nil {
		return time.Time{}, r.fieldErr(i, err)
	}
	return t, nil
}

var errTime = errors.New("not a timestamp (want YYYY-MM-DD[ T]hh:mm:ss)")

// ParseTime parses a timestamp in the forms Row.Time accepts.
func ParseTime(b []byte) (time.Time, error) {
	if len(b) == 0 {
		return time.Time{}, ErrEmpty
	}
	if sec, ok := fastUnix(b); ok {
		return time.Unix(sec, 0).UTC(), nil
	}
	s := unsafeString(b)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errTime
}

// errTimeRange is the error of a time that int64 nanoseconds since 1970
// cannot hold (before 1677-09-21 or after 2262-04-11: a year typed wrong,
// or a placeholder such as 9999-12-31), where UnixNano would wrap to
// another time.
var errTimeRange = errors.New("time out of range (1677-09-21 to 2262-04-11)")

// The first and last whole seconds int64 nanoseconds hold, in Unix time.
const (
	minNanoSec = math.MinInt64 / 1_000_000_000
	maxNanoSec = math.MaxInt64 / 1_000_000_000
)

// secondsNano returns Unix seconds sec as nanoseconds, or errTimeRange
// when int64 cannot hold them.
func secondsNano(sec int64) (int64, error) {
	if sec < minNanoSec || sec > maxNanoSec {
		return 0, errTimeRange
	}
	return sec * 1e9, nil
}

// parseUnixNano is ParseTime(b).UnixNano() without building a time.Time
// on the common forms; a time UnixNano cannot hold is errTimeRange.
func parseUnixNano(b []byte) (int64, error) {
	if sec, ok := fastUnix(b); ok {
		return secondsNano(sec)
	}
	t, err := ParseTime(b)
	if err != nil {
		return 0, err
	}
	ns := t.UnixNano()
	if !time.Unix(0, ns).Equal(t) {
		return 0, errTimeRange
	}
	return ns, nil
}

// fastUnix reads the common forms, exactly "YYYY-MM-DD" or "YYYY-MM-DD
// hh:mm:ss" (or with T), in UTC, as Unix seconds with time.Date's
// arithmetic: a date alone is normalised as time.Date does ("2023-02-30"
// is March 2), a date with a time must name a real day, and a leap second
// (:60) is the next minute unless it would turn the day. It reports false for anything else, which the
// layouts then read.
func fastUnix(b []byte) (int64, bool) {
	n := len(b)
	if n != 19 && n != 10 {
		return 0, false
	}
	_ = b[9]
	// Each digit minus '0': a byte that is not a digit is then above 9
	// (those below '0' wrap around).
	y0, y1, y2, y3 := b[0]-'0', b[1]-'0', b[2]-'0', b[3]-'0'
	m0, m1, d0, d1 := b[5]-'0', b[6]-'0', b[8]-'0', b[9]-'0'
	if b[4] != '-' || b[7] != '-' || y0 > 9 || y1 > 9 || y2 > 9 || y3 > 9 || m0 > 9 || m1 > 9 || d0 > 9 || d1 > 9 {
		return 0, false
	}
	y := int(y0)*1000 + int(y1)*100 + int(y2)*10 + int(y3)
	mo, d := int(m0)*10+int(m1), int(d0)*10+int(d1)
	if mo < 1 || mo > 12 || d < 1 || d > 31 {
		return 0, false
	}
	if n == 10 {
		return civilDays(y, mo, d) * 86400, true
	}
	_ = b[18]
	h0, h1, i0, i1, s0, s1 := b[11]-'0', b[12]-'0', b[14]-'0', b[15]-'0', b[17]-'0', b[18]-'0'
	if (b[10] != 'T' && b[10] != ' ') || b[13] != ':' || b[16] != ':' || h0 > 9 || h1 > 9 || i0 > 9 || i1 > 9 || s0 > 9 || s1 > 9 {
		return 0, false
	}
	h, mi, s := int(h0)*10+int(h1), int(i0)*10+int(i1), int(s0)*10+int(s1)
	if h >= 24 || mi >= 60 || s >= 61 || h == 23 && mi == 59 && s == 60 || d > 28 && d > civil.DaysIn(y, mo) {
		return 0, false
	}
	return civilDays(y, mo, d)*86400 + int64(h*3600+mi*60+s), true
}

// civilDays is civil.Days, by table for the years of yearStart.
func civilDays(y, m, d int) int64 {
	if k := y - yearStartFrom; k >= 0 && k < len(yearStart) {
		days := yearStart[k] + monthStart[m-1] + int32(d) - 1
		if m > 2 && civil.IsLeap(y) {
			days++
		}
		return int64(days)
	}
	return civil.Days(y, m, d)
}

// yearStart holds the days from 1970-01-01 to January 1st of the years
// yearStartFrom on: fastUnix's common years without the calendar's
// divisions.
const yearStartFrom = 1900

var yearStart = func() (t [300]int32) {
	for k := range t {
		t[k] = int32(civil.Days(yearStartFrom+k, 1, 1))
	}
	return t
}()

// monthStart holds the days before each month in a year that is not leap.
var monthStart = [12]int32{0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02",
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// KeyUTF8 returns a grouping key (what Map returned) as UTF-8, so that the
// same key written in cp1252 in one file and UTF-8 in another groups
// together: b itself when it is ASCII, or valid UTF-8 in a file that is
// not cp1252; else b decoded from cp1252.
func KeyUTF8(b []byte, enc Encoding) []byte { return utf8Text(nil, b, enc) }

// utf8Text returns b as UTF-8, as DecodeText does: b itself when it is
// ASCII or UTF-8 (unless enc says cp1252), else decoded into buf, so that
// the built-in features' receivers' lookup costs no allocation.
func utf8Text(buf, b []byte, enc Encoding) []byte {
	switch {
	case ascii.Valid(b):
		return b
	case enc == EncodingCP1252 || enc != EncodingUTF8 && !utf8.Valid(b):
		return cp1252.AppendUTF8(buf, b)
	case utf8.Valid(b):
		return b
	}
	s := DecodeText(b, enc)
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
