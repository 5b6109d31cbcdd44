package gen

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mce-engine/mce/engine/feature"
)

// TruthStylesFile names the file Run writes beside the truth files when
// Options.ValueStyles is set: how each file writes its amounts and dates.
const TruthStylesFile = "_truth_styles.csv"

// saltStyles seeds the choice of value styles, apart from the plan's
// stream so that turning the styles on changes nothing else.
const saltStyles = 0x5354594c // "STYL"

// amountStyle is how a file writes its amounts. The zero style is the
// plain one the generator has always written.
type amountStyle uint8

const (
	amountPlain      amountStyle = iota // 1234.56
	amountPoint                         // 1,234.56
	amountComma                         // 1.234,56
	amountSymbol                        // $ 1,234.56 (€ for EUR rows)
	amountSpace                         // 1 234,56, the space a no-break one
	amountCode                          // 1.234,56 MXN
	amountShort                         // 1234.5: no trailing fraction zeros
	amountCommaPlain                    // 1234,56
	numAmountStyles
)

var amountStyleNames = [numAmountStyles]string{"plain", "point", "comma", "symbol", "space", "code", "short", "comma-plain"}

// decimal is the decimal separator of the style.
func (s amountStyle) decimal() byte {
	switch s {
	case amountComma, amountSpace, amountCode, amountCommaPlain:
		return ','
	}
	return '.'
}

// dateStyle is how a file writes its issue times. The zero style is the
// one the generator has always written.
type dateStyle uint8

const (
	dateSpace  dateStyle = iota // 2024-12-05 10:11:12
	dateT                       // 2024-12-05T10:11:12
	dateZ                       // 2024-12-05T10:11:12Z
	dateOffset                  // 2024-12-05T04:11:12-06:00, the same instant as dateZ
	dateDMY                     // 05/12/2024 10:11:12
	dateDMYHM                   // 05/12/2024 10:11 (seconds dropped)
	dateMDY                     // 12/05/2024 10:11:12
	dateEpoch                   // 1733393472
	dateOnly                    // 2024-12-05 (time dropped)
	numDateStyles
)

var dateStyleNames = [numDateStyles]string{"iso-space", "iso-t", "iso-z", "iso-offset", "dmy", "dmy-hm", "mdy", "epoch", "date"}

// layout is the layout a reader reads the style with.
func (s dateStyle) layout() feature.DateLayout {
	switch s {
	case dateDMY, dateDMYHM:
		return feature.DateDMY
	case dateMDY:
		return feature.DateMDY
	case dateEpoch:
		return feature.DateEpoch
	}
	return feature.DateISO
}

// precision is the unit the style keeps of the drawn time.
func (s dateStyle) precision() time.Duration {
	switch s {
	case dateDMYHM:
		return time.Minute
	case dateOnly:
		return 24 * time.Hour
	}
	return time.Second
}

// zoned reports whether the style writes a zone.
func (s dateStyle) zoned() bool { return s == dateZ || s == dateOffset || s == dateEpoch }

// offsetSecs is dateOffset's zone, Mexico City's standard time.
const offsetSecs = -6 * 3600

// planStyles gives every file an amount style and a date style, from a
// random stream of its own. File 0, the largest, keeps the plain styles
// when there are other files, as planMessy keeps it simple: the demo's
// biggest file stays the fast case. The others take the other styles in
// a seeded order, so that a few files cover them all.
func planStyles(o *Options, files []*fileSpec) {
	r := rand.New(rand.NewPCG(o.Seed, saltStyles))
	amounts := r.Perm(int(numAmountStyles) - 1)
	dates := r.Perm(int(numDateStyles) - 1)
	k := 0
	for i, f := range files {
		if i == 0 && len(files) > 1 {
			continue
		}
		f.amount = amountStyle(1 + amounts[k%len(amounts)])
		f.date = dateStyle(1 + dates[k%len(dates)])
		k++
	}
}

// appendAmount appends cents (positive) in style s, in encoding e, for a
// row in currency.
func appendAmount(dst []byte, s amountStyle, cents int64, currency string, e int) []byte {
	units, frac := uint64(cents/100), int(cents%100)
	switch s {
	case amountPoint:
		dst = appendGrouped(dst, units, ",")
		return append2(append(dst, '.'), frac)
	case amountComma:
		dst = appendGrouped(dst, units, ".")
		return append2(append(dst, ','), frac)
	case amountSymbol:
		if currency == "EUR" {
			dst = append(dst, euro[e]...)
		} else {
			dst = append(dst, '$')
		}
		dst = appendGrouped(append(dst, ' '), units, ",")
		return append2(append(dst, '.'), frac)
	case amountSpace:
		dst = appendGrouped(dst, units, nbsp[e])
		return append2(append(dst, ','), frac)
	case amountCode:
		dst = appendGrouped(dst, units, ".")
		dst = append2(append(dst, ','), frac)
		return append(append(dst, ' '), currency...)
	case amountShort:
		dst = appendUint(dst, units)
		switch {
		case frac == 0:
		case frac%10 == 0:
			dst = append(dst, '.', byte('0'+frac/10))
		default:
			dst = append2(append(dst, '.'), frac)
		}
		return dst
	case amountCommaPlain:
		dst = appendUint(dst, units)
		return append2(append(dst, ','), frac)
	}
	return appendCents(dst, cents)
}

// The no-break space and the euro sign, by encIndex.
var (
	nbsp = [2]string{"\xa0", "\u00a0"}
	euro = [2]string{"\x80", "€"}
)

// appendGrouped appends v with sep between groups of three digits.
func appendGrouped(dst []byte, v uint64, sep string) []byte {
	var tmp [20]byte
	digits := strconv.AppendUint(tmp[:0], v, 10)
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			dst = append(dst, sep...)
		}
		dst = append(dst, c)
	}
	return dst
}

// appendDate appends the time secs seconds into file f's month in f's
// date style.
func appendDate(dst []byte, f *fileSpec, secs uint64) []byte {
	s := f.date
	if s == dateSpace {
		return appendTime(dst, f.month, secs)
	}
	if s == dateEpoch {
		return strconv.AppendInt(dst, f.monthStart+int64(secs), 10)
	}
	y, mo, d := f.year, f.mon, int(secs/86400)+1
	sec := int(secs % 86400)
	if s == dateOffset {
		sec += offsetSecs
		if sec < 0 {
			// The local time is on the day before, maybe in the month
			// before.
			t := time.Unix(f.monthStart+int64(secs)+offsetSecs, 0).UTC()
			var m time.Month
			y, m, d = t.Date()
			mo, sec = int(m), sec+86400
		}
	}
	switch s {
	case dateDMY, dateDMYHM:
		dst = append2(dst, d)
		dst = append2(append(dst, '/'), mo)
		dst = strconv.AppendInt(append(dst, '/'), int64(y), 10)
	case dateMDY:
		dst = append2(dst, mo)
		dst = append2(append(dst, '/'), d)
		dst = strconv.AppendInt(append(dst, '/'), int64(y), 10)
	default:
		dst = strconv.AppendInt(dst, int64(y), 10)
		dst = append2(append(dst, '-'), mo)
		dst = append2(append(dst, '-'), d)
	}
	switch s {
	case dateOnly:
		return dst
	case dateT, dateZ, dateOffset:
		dst = append(dst, 'T')
	default:
		dst = append(dst, ' ')
	}
	dst = append2(dst, sec/3600)
	dst = append2(append(dst, ':'), sec/60%60)
	if s == dateDMYHM {
		return dst
	}
	dst = append2(append(dst, ':'), sec%60)
	switch s {
	case dateZ:
		dst = append(dst, 'Z')
	case dateOffset:
		dst = append(dst, "-06:00"...)
	}
	return dst
}

// StyleTruth is one line of _truth_styles.csv: how one file writes its
// amounts and dates, and what a reader should find for it.
type StyleTruth struct {
	File        string
	AmountStyle string // plain, point, comma, symbol, space, code, short or comma-plain
	DateStyle   string // iso-space, iso-t, iso-z, iso-offset, dmy, dmy-hm, mdy, epoch or date
	// Decimal is the amounts' decimal separator, '.' or ','.
	Decimal byte
	// DateLayout is what --date-format would say.
	DateLayout feature.DateLayout
	// DatePrecision is what the dates keep of the drawn time: a second, a
	// minute (dmy-hm) or a day (date). Compare times truncated to it.
	DatePrecision time.Duration
	// Zoned reports dates written with a zone (iso-z, iso-offset, epoch).
	Zoned bool
}

var stylesHeader = []string{"file", "amount_style", "date_style", "decimal", "date_format", "date_precision", "zoned"}

// writeStyles writes _truth_styles.csv, sorted by file.
func (g *generator) writeStyles(byName []FileSummary) error {
	return g.writeAtomic(TruthStylesFile, func(w *bufio.Writer) error {
		for i, h := range stylesHeader {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(h)
		}
		w.WriteByte('\n')
		for _, f := range byName {
			st := f.styles
			dec := "point"
			if st.amount.decimal() == ',' {
				dec = "comma"
			}
			fmt.Fprintf(w, "%s,%s,%s,%s,%s,%s,%t\n", f.Name, amountStyleNames[st.amount], dateStyleNames[st.date],
				dec, st.date.layout(), st.date.precision(), st.date.zoned())
		}
		return nil
	})
}

// ReadTruthStyles reads dir/_truth_styles.csv, which Run writes when
// Options.ValueStyles is set.
func ReadTruthStyles(dir string) ([]StyleTruth, error) {
	var out []StyleTruth
	err := readCSV(filepath.Join(dir, TruthStylesFile), stylesHeader, func(rec []string) error {
		nf, err := feature.ParseNumberFormat(rec[3])
		if err != nil {
			return err
		}
		layout, err := feature.ParseDateLayout(rec[4])
		if err != nil {
			return err
		}
		prec, err := time.ParseDuration(rec[5])
		if err != nil {
			return fmt.Errorf("date_precision: %w", err)
		}
		zoned, err := strconv.ParseBool(rec[6])
		if err != nil {
			return fmt.Errorf("zoned: %w", err)
		}
		out = append(out, StyleTruth{File: rec[0], AmountStyle: rec[1], DateStyle: rec[2], Decimal: nf.Decimal,
			DateLayout: layout, DatePrecision: prec, Zoned: zoned})
		return nil
	})
	return out, err
}
