package feature

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mce-engine/mce/internal/civil"
)

// DateLayout is how one file writes its dates and times.
type DateLayout uint8

// Date layouts. In every layout a time may be followed by its zone, "Z" or
// "±hh:mm"; a value without one has no zone (see [DateTime]).
const (
	// DateISO is the zero layout: exactly the forms [ParseTime] reads, with
	// the same results: "2006-01-02T15:04:05" or with a space for the T,
	// an optional fraction and zone, or "2006-01-02" alone.
	DateISO DateLayout = iota
	// DateDMY is day first: "31/01/2023", "31/01/2023 14:05",
	// "31/01/2023 14:05:00.5", "31/01/2023T14:05:00Z". The separator may
	// also be '-' or '.' (the same twice); day, month and hour may have one
	// digit; the year has four.
	DateDMY
	// DateMDY is month first, as DateDMY otherwise: "01/31/2023 14:05".
	DateMDY
	// DateEpoch is Unix seconds, with an optional sign and fraction:
	// "1675173900", "1675173900.25". It is always zoned (UTC).
	DateEpoch
)

// String returns the layout as --date-format names it: ISO, DD/MM/YYYY,
// MM/DD/YYYY or epoch.
func (l DateLayout) String() string {
	switch l {
	case DateISO:
		return "ISO"
	case DateDMY:
		return "DD/MM/YYYY"
	case DateMDY:
		return "MM/DD/YYYY"
	case DateEpoch:
		return "epoch"
	}
	return fmt.Sprintf("DateLayout(%d)", uint8(l))
}

// ParseDateLayout reads a --date-format value, in any case: ISO (or
// YYYY-MM-DD), DD/MM/YYYY (or DD-MM-YYYY, DD.MM.YYYY, DMY), MM/DD/YYYY (or
// MM-DD-YYYY, MM.DD.YYYY, MDY), epoch (or unix).
func ParseDateLayout(s string) (DateLayout, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "ISO", "YYYY-MM-DD", "ISO8601", "RFC3339":
		return DateISO, nil
	case "DD/MM/YYYY", "DD-MM-YYYY", "DD.MM.YYYY", "DMY":
		return DateDMY, nil
	case "MM/DD/YYYY", "MM-DD-YYYY", "MM.DD.YYYY", "MDY":
		return DateMDY, nil
	case "EPOCH", "UNIX":
		return DateEpoch, nil
	}
	return 0, fmt.Errorf("date format %q: want ISO, DD/MM/YYYY, MM/DD/YYYY or epoch", s)
}

// DateFormat is how one file writes its dates, and which zone its times
// without one are in. The zero DateFormat reads exactly as [ParseTime].
type DateFormat struct {
	Layout DateLayout
	// Location is the zone of the values that name none (--tz). Nil
	// leaves them without a zone.
	Location *time.Location
}

// String returns the layout, and the location when there is one:
// "DD/MM/YYYY" or "DD/MM/YYYY in America/Mexico_City".
func (df DateFormat) String() string {
	if df.Location == nil {
		return df.Layout.String()
	}
	return df.Layout.String() + " in " + df.Location.String()
}

// DateTime is a date or time read by [ParseDate].
type DateTime struct {
	// Time is the instant, in UTC. A value without a zone is its wall
	// clock read as if it were UTC, as ParseTime reads it.
	Time time.Time
	// Zoned reports whether the value said its zone ("Z", "+01:00", Unix
	// seconds) or DateFormat.Location gave it one. A time that is not
	// zoned should be written back without a zone.
	Zoned bool
	// DateOnly reports a date without a time ("2023-01-31", "31/01/2023").
	DateOnly bool
}

// AppendFormat appends t as RFC 3339 in UTC ("2023-01-31T14:05:00Z") when
// it is zoned, and otherwise without a zone: "2023-01-31T14:05:00", or
// "2023-01-31" for a date alone.
func (t DateTime) AppendFormat(dst []byte) []byte {
	switch {
	case t.Zoned:
		return t.Time.AppendFormat(dst, time.RFC3339Nano)
	case t.DateOnly:
		return t.Time.AppendFormat(dst, time.DateOnly)
	}
	return t.Time.AppendFormat(dst, "2006-01-02T15:04:05.999999999")
}

var (
	errDMY   = errors.New("not a date (want DD/MM/YYYY[ hh:mm[:ss]][zone])")
	errMDY   = errors.New("not a date (want MM/DD/YYYY[ hh:mm[:ss]][zone])")
	errEpoch = errors.New("not Unix seconds")
)

// ParseDate reads b as a date or time written in the format df. With the
// zero DateFormat it reads what [ParseTime] reads, and gives the same
// Time; it does not allocate on the common forms of any layout.
func ParseDate(b []byte, df DateFormat) (DateTime, error) {
	if len(b) == 0 {
		return DateTime{}, ErrEmpty
	}
	var t DateTime
	var err error
	switch df.Layout {
	case DateISO:
		t, err = parseISO(b)
	case DateDMY, DateMDY:
		var ok bool
		if t, ok = parseSlashDate(b, df.Layout == DateDMY); !ok {
			err = errDMY
			if df.Layout == DateMDY {
				err = errMDY
			}
		}
	case DateEpoch:
		var ok bool
		if t, ok = parseEpoch(b); !ok {
			err = errEpoch
		}
	default:
		return DateTime{}, fmt.Errorf("unknown %v", df.Layout)
	}
	if err != nil {
		return DateTime{}, err
	}
	if !t.Zoned && df.Location != nil {
		y, m, d := t.Time.Date()
		h, mi, s := t.Time.Clock()
		t.Time = time.Date(y, m, d, h, mi, s, t.Time.Nanosecond(), df.Location).UTC()
		t.Zoned = true
	}
	return t, nil
}

// parseISO is ParseTime, telling also whether the value had a zone.
func parseISO(b []byte) (DateTime, error) {
	if sec, ok := fastUnix(b); ok {
		return DateTime{Time: time.Unix(sec, 0).UTC(), DateOnly: len(b) == 10}, nil
	}
	s := unsafeString(b)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return DateTime{
				Time:     t.UTC(),
				Zoned:    strings.HasSuffix(layout, "Z07:00"),
				DateOnly: layout == time.DateOnly,
			}, nil
		}
	}
	return DateTime{}, errTime
}

// parseSlashDate reads the DateDMY form, or DateMDY's when dayFirst is
// false.
func parseSlashDate(b []byte, dayFirst bool) (DateTime, bool) {
	a, i := upTo2(b)
	if i == 0 || i >= len(b) {
		return DateTime{}, false
	}
	sep := b[i]
	if sep != '/' && sep != '-' && sep != '.' {
		return DateTime{}, false
	}
	c, n := upTo2(b[i+1:])
	i += 1 + n
	if n == 0 || i+5 > len(b) || b[i] != sep {
		return DateTime{}, false
	}
	y, ok := digits(b[i+1 : i+5])
	i += 5
	if !ok {
		return DateTime{}, false
	}
	day, mon := a, c
	if !dayFirst {
		day, mon = c, a
	}
	if mon < 1 || mon > 12 || day < 1 || day > civil.DaysIn(y, mon) {
		return DateTime{}, false
	}
	sec := civil.Days(y, mon, day) * 86400
	if i == len(b) {
		return DateTime{Time: time.Unix(sec, 0).UTC(), DateOnly: true}, true
	}
	if b[i] != ' ' && b[i] != 'T' {
		return DateTime{}, false
	}
	i++
	h, n := upTo2(b[i:])
	i += n
	if n == 0 || i+3 > len(b) || b[i] != ':' {
		return DateTime{}, false
	}
	mi, ok := digits(b[i+1 : i+3])
	i += 3
	if !ok || h > 23 || mi > 59 {
		return DateTime{}, false
	}
	s, nsec := 0, 0
	if i < len(b) && b[i] == ':' {
		if i+3 > len(b) {
			return DateTime{}, false
		}
		if s, ok = digits(b[i+1 : i+3]); !ok || s > 59 {
			return DateTime{}, false
		}
		i += 3
		if i < len(b) && b[i] == '.' {
			i++
			nd := 0
			// NB: digits past the nanoseconds are dropped, as
			// time.Parse drops them.
			for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
				if nd < 9 {
					nsec = nsec*10 + int(b[i]-'0')
				}
				nd++
			}
			if nd == 0 {
				return DateTime{}, false
			}
			for ; nd < 9; nd++ {
				nsec *= 10
			}
		}
	}
	sec += int64(h*3600 + mi*60 + s)
	off, zoned, ok := zoneOffset(b[i:])
	if !ok {
		return DateTime{}, false
	}
	return DateTime{Time: time.Unix(sec-int64(off), int64(nsec)).UTC(), Zoned: zoned}, true
}

// zoneOffset reads what follows a time: nothing, "Z" or "±hh:mm", as
// seconds east of UTC.
func zoneOffset(b []byte) (off int, zoned, ok bool) {
	switch {
	case len(b) == 0:
		return 0, false, true
	case len(b) == 1 && b[0] == 'Z':
		return 0, true, true
	case len(b) == 6 && (b[0] == '+' || b[0] == '-') && b[3] == ':':
		h, ok1 := digits(b[1:3])
		m, ok2 := digits(b[4:6])
		// NB: as time.Parse, which reads the ISO layout's zones.
		if !ok1 || !ok2 || h > 24 || m > 60 {
			return 0, false, false
		}
		off = h*3600 + m*60
		if b[0] == '-' {
			off = -off
		}
		return off, true, true
	}
	return 0, false, false
}

// upTo2 reads one or two digits at the start of b; n is 0 when there are
// none.
func upTo2(b []byte) (v, n int) {
	for n < len(b) && n < 2 && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + int(b[n]-'0')
		n++
	}
	return v, n
}

// maxEpochDigits bounds Unix seconds to 11 digits (about the year 5138),
// far inside what time.Time holds.
const maxEpochDigits = 11

// parseEpoch reads [-]seconds[.fraction] as a Unix time.
func parseEpoch(b []byte) (DateTime, bool) {
	i := 0
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		i = 1
	}
	var sec, nsec int64
	nd := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if nd == maxEpochDigits {
			return DateTime{}, false
		}
		sec = sec*10 + int64(b[i]-'0')
		nd++
	}
	if nd == 0 {
		return DateTime{}, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		nf := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if nf == 9 {
				return DateTime{}, false
			}
			nsec = nsec*10 + int64(b[i]-'0')
			nf++
		}
		if nf == 0 {
			return DateTime{}, false
		}
		for ; nf < 9; nf++ {
			nsec *= 10
		}
	}
	if i != len(b) {
		return DateTime{}, false
	}
	if neg {
		sec, nsec = -sec, -nsec
	}
	return DateTime{Time: time.Unix(sec, nsec).UTC(), Zoned: true}, true
}

// HasZone reports whether a date or time in ISO form, as [ParseTime] reads
// it and mce's reader leaves or rewrites every date ("2023-01-31T14:05:00",
// "2023-01-31 14:05:00-06:00"), ends with its zone, "Z" or "±hh:mm". A
// date alone ("2023-01-31") has none.
func HasZone(b []byte) bool {
	n := len(b)
	switch {
	case n == 0:
		return false
	case b[n-1] == 'Z':
		return true
	}
	return n >= 16 && b[n-3] == ':' && (b[n-6] == '+' || b[n-6] == '-')
}
