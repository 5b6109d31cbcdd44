package feature

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
)

// ErrAmbiguousDecimal is returned by the amount sniffers when the values
// do not say which separator is the decimal one: all of them read as well
// with '.' as with ',' ("1,234", "12.500"), or as many read only one way
// as only the other. Callers name the file and ask for --decimal.
var ErrAmbiguousDecimal = errors.New("ambiguous decimal separator")

// ErrAmbiguousDate is returned by the date sniffers when the values do not
// say whether the day or the month comes first (all of them read both
// ways, as "01/02/2023" does), or as many values are written in one
// layout as in another. Callers name the file and ask for --date-format.
var ErrAmbiguousDate = errors.New("ambiguous date format")

// SniffAmounts decides the number format of an amount column from a sample
// of its values; see [NumberSniffer].
func SniffAmounts(samples [][]byte) (NumberFormat, error) {
	var s NumberSniffer
	for _, b := range samples {
		s.Add(b)
	}
	return s.Format()
}

// NumberSniffer decides the number format of a column from its values,
// given one at a time: a reader may feed it a sample or, as it is cheap,
// every value of the column (which makes an ambiguous file rare). The zero
// value is ready; it is not safe for concurrent use.
//
// Each value is read with '.' and with ',' as the decimal separator. A
// value that reads only one way votes for it ("1,234.56", "1.234,56",
// "1234.5", "0,125", "1.234.567"); one that reads both ways and holds a
// separator ("1,234") is ambiguous; integers ("1234", "1 234") and values
// that read neither way say nothing.
type NumberSniffer struct {
	point, comma, either int64
	// grpPoint and grpComma are the thousands separators seen in the
	// values each reading accepts (grpBit).
	grpPoint, grpComma uint8
	example            []byte // the first ambiguous value
}

// Add looks at one value.
func (s *NumberSniffer) Add(b []byte) {
	v, gp, gc := classifyAmount(b)
	s.grpPoint |= gp
	s.grpComma |= gc
	switch v {
	case votePoint:
		s.point++
	case voteComma:
		s.comma++
	case voteEither:
		s.either++
		if s.example == nil {
			s.example = append([]byte(nil), b...)
		}
	}
}

// Merge adds what other has seen, so that parallel readers of one file
// can each keep a sniffer and decide together.
func (s *NumberSniffer) Merge(other *NumberSniffer) {
	s.point += other.point
	s.comma += other.comma
	s.either += other.either
	s.grpPoint |= other.grpPoint
	s.grpComma |= other.grpComma
	if s.example == nil {
		s.example = other.example
	}
}

// amountVote is what one value says of the decimal separator.
type amountVote uint8

const (
	voteNone   amountVote = iota // an integer, or not a number
	votePoint                    // it reads with '.' only
	voteComma                    // it reads with ',' only
	voteEither                   // it reads both ways, to different numbers
)

// classifyAmount reads b both ways and returns its vote and the grouping
// separators each reading found (grpBit). Plain values ("1234.56",
// "-12,5") are classified without parsing.
func classifyAmount(b []byte) (v amountVote, grpPoint, grpComma uint8) {
	i := 0
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		i = 1
	}
	start, sep, pt := i, byte(0), 0
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			continue
		case (c == '.' || c == ',') && sep == 0:
			sep, pt = c, i
			continue
		}
		return classifyAmountSlow(b)
	}
	if len(b)-start > 19 {
		return classifyAmountSlow(b) // maybe out of range
	}
	before, after := pt-start, len(b)-pt-1
	switch {
	case len(b) == start || sep != 0 && before+after == 0:
		return voteNone, 0, 0 // not a number
	case sep == 0:
		return voteNone, 0, 0 // an integer reads alike
	case after == 3 && before >= 1 && before <= 3 && b[start] != '0':
		// "1,234": a decimal one way, a thousands separator the other.
		if sep == ',' {
			return voteEither, grpBit(sep), 0
		}
		return voteEither, 0, grpBit(sep)
	case sep == '.':
		return votePoint, 0, 0
	}
	return voteComma, 0, 0
}

// classifyAmountSlow is classifyAmount by parsing.
func classifyAmountSlow(b []byte) (v amountVote, grpPoint, grpComma uint8) {
	_, gp, okP := parseAmount(b, numberPoint)
	_, gc, okC := parseAmount(b, numberComma)
	if okP {
		grpPoint = grpBit(gp)
	}
	if okC {
		grpComma = grpBit(gc)
	}
	switch {
	case okP && okC:
		// Both read it: it holds no separator, or its one separator is
		// grouping in one reading and decimal in the other.
		if core, _, _ := amountCore(b); bytes.ContainsAny(core, ".,") {
			v = voteEither
		}
	case okP:
		v = votePoint
	case okC:
		v = voteComma
	}
	return v, grpPoint, grpComma
}

// Format returns the format the values voted for, by majority. Values
// that only hold integers give the point format, which reads them as the
// comma one would. Thousands is set when the values of that reading used
// one grouping separator and no other. It returns an error wrapping
// ErrAmbiguousDecimal when nothing decides or the vote is tied.
func (s *NumberSniffer) Format() (NumberFormat, error) {
	nf := numberPoint
	mask := s.grpPoint
	switch {
	case s.point > s.comma:
	case s.comma > s.point:
		nf, mask = numberComma, s.grpComma
	case s.point > 0:
		return NumberFormat{}, fmt.Errorf("%w: as many values read only with '.' as the decimal separator as only with ',' (%d)",
			ErrAmbiguousDecimal, s.point)
	case s.either > 0:
		return NumberFormat{}, fmt.Errorf("%w: %d values such as %q read with '.' or ',' as the decimal separator, and no value tells which",
			ErrAmbiguousDecimal, s.either, s.example)
	}
	if bits.OnesCount8(mask) == 1 {
		nf.Thousands = grpSeps[bits.TrailingZeros8(mask)]
	}
	return nf, nil
}

// grpSeps are the thousands separators, by bit.
var grpSeps = [...]byte{',', '.', '\'', ' '}

func grpBit(c byte) uint8 {
	for i, g := range grpSeps {
		if g == c {
			return 1 << i
		}
	}
	return 0
}

// SniffDates decides the date format of a column from a sample of its
// values; see [DateSniffer]. The result has no Location.
func SniffDates(samples [][]byte) (DateFormat, error) {
	var s DateSniffer
	for _, b := range samples {
		s.Add(b)
	}
	return s.Format()
}

// DateSniffer decides the date layout of a column from its values, given
// one at a time; like NumberSniffer it may see a sample or every value. The
// zero value is ready; it is not safe for concurrent use.
//
// Each value votes for the layout that reads it: ISO, epoch (9 to 11
// digits, 1973 to 5138, so that a number of another kind is not taken for
// a time), or day-first or month-first. A value that reads both day-first
// and month-first as different dates ("01/02/2023") is ambiguous; one
// whose day is its month ("05/05/2023") says nothing about the order.
type DateSniffer struct {
	iso, epoch         int64
	dmy, mdy           int64
	either, same       int64
	example            []byte // the first ambiguous value
	dmyFirst, mdyFirst []byte // the first value of each order, for errors
}

// Add looks at one value.
func (s *DateSniffer) Add(b []byte) {
	switch {
	case len(b) == 0:
	case len(b) >= 10 && b[4] == '-' && startsWithYear(b):
		if _, err := parseISO(b); err == nil {
			s.iso++
		}
	case b[0] == '-' || b[0] >= '0' && b[0] <= '9' && len(b) >= 9 && epochDigits(b) >= 9:
		if _, ok := parseEpoch(b); ok && epochDigits(b) >= 9 {
			s.epoch++
		}
	default:
		d, okD := parseSlashDate(b, true)
		m, okM := parseSlashDate(b, false)
		switch {
		case okD && okM && d.Time.Equal(m.Time):
			s.same++
		case okD && okM:
			s.either++
			if s.example == nil {
				s.example = append([]byte(nil), b...)
			}
		case okD:
			s.dmy++
			if s.dmyFirst == nil {
				s.dmyFirst = append([]byte(nil), b...)
			}
		case okM:
			s.mdy++
			if s.mdyFirst == nil {
				s.mdyFirst = append([]byte(nil), b...)
			}
		}
	}
}

// startsWithYear reports whether b starts with 4 digits.
func startsWithYear(b []byte) bool {
	_, ok := digits(b[:4])
	return ok
}

// Merge adds what other has seen (see NumberSniffer.Merge).
func (s *DateSniffer) Merge(other *DateSniffer) {
	s.iso += other.iso
	s.epoch += other.epoch
	s.dmy += other.dmy
	s.mdy += other.mdy
	s.either += other.either
	s.same += other.same
	for _, p := range []struct{ dst, src *[]byte }{{&s.example, &other.example}, {&s.dmyFirst, &other.dmyFirst}, {&s.mdyFirst, &other.mdyFirst}} {
		if *p.dst == nil {
			*p.dst = *p.src
		}
	}
}

// epochDigits counts the digits of b's integer part.
func epochDigits(b []byte) int {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	return n
}

// Format returns the layout most values are written in. When no value
// reads as a date it returns the zero DateFormat (ISO), and the values
// will be counted as bad ones.
//
// NB: when every day-first or month-first value reads both ways, Format
// does not guess: it returns an error wrapping ErrAmbiguousDate. Guessing
// day-first (the convention of the Spanish-language exports mce was built
// for) would be right more often, but a wrong guess is silent: every date
// parses, to another date, and features such as first and last issue
// times are wrong without a single bad value. Fed every value of a
// monthly file, the sniffer sees a day past the 12th unless the file only
// covers the first 12 days of its months; for such a file --date-format
// costs the user one flag.
func (s *DateSniffer) Format() (DateFormat, error) {
	slash := s.dmy + s.mdy + s.either + s.same
	best := max(s.iso, s.epoch, slash)
	switch {
	case best == 0:
		return DateFormat{}, nil
	case s.iso == best && (s.epoch == best || slash == best), s.epoch == best && slash == best:
		return DateFormat{}, fmt.Errorf("%w: as many values are written in one layout as in another (ISO %d, epoch %d, DD/MM/YYYY or MM/DD/YYYY %d)",
			ErrAmbiguousDate, s.iso, s.epoch, slash)
	case s.iso == best:
		return DateFormat{Layout: DateISO}, nil
	case s.epoch == best:
		return DateFormat{Layout: DateEpoch}, nil
	}
	switch {
	case s.dmy > s.mdy:
		return DateFormat{Layout: DateDMY}, nil
	case s.mdy > s.dmy:
		return DateFormat{Layout: DateMDY}, nil
	case s.dmy > 0:
		return DateFormat{}, fmt.Errorf("%w: as many values read only day first (%q) as only month first (%q): %d",
			ErrAmbiguousDate, s.dmyFirst, s.mdyFirst, s.dmy)
	case s.either > 0:
		return DateFormat{}, fmt.Errorf("%w: %d values such as %q read day first and month first, and no value tells which",
			ErrAmbiguousDate, s.either, s.example)
	}
	// Every value has its day equal to its month: the order does not
	// matter.
	return DateFormat{Layout: DateDMY}, nil
}
