package csvread

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mce-engine/mce/engine/feature"
)

// Amounts and dates as people write them. Open reads a sample of the
// file's amount and date columns (the rows in its first block), decides
// their convention (feature.SniffAmounts, feature.SniffDates; --decimal,
// --date-format and --tz override), and the parsers then check every
// value of those columns and, when the file's convention is not the plain
// one ("1234.56", ISO times), rewrite it into the plain form, so that
// everything downstream (the in-RAM jobs, the store, the feature code's
// typed accessors) reads one convention: "1.234,56" becomes "1234.56",
// "31/01/2023 14:05" becomes "2023-01-31T14:05:00". A value that does not
// read in the file's convention is a bad value (OnBadValue says what
// happens to its row).

// What OnBadValue does with a row holding a value that does not parse.
const (
	BadValueSkipRow = "skip-row" // the row is dropped and counted (the default)
	BadValueEmpty   = "empty"    // the value is emptied and the row kept
	BadValueFail    = "fail"     // the file fails, naming file, line and column
)

// ErrBadValue is a value that does not read as its column's type in the
// file's convention; ErrValueEmptied marks the samples of those emptied in
// a kept row; ErrAmbiguousFormat is a file whose values read two ways.
var (
	ErrBadValue        = errors.New("bad value")
	ErrValueEmptied    = errors.New("emptied, the row kept")
	ErrAmbiguousFormat = errors.New("ambiguous values")
)

// ValueError is a bad value: which column, which value.
type ValueError struct {
	Column string
	Value  string
	Want   string // "an amount", "a date"
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("%v: column %s: %q is not %s", ErrBadValue, e.Column, e.Value, e.Want)
}

func (e *ValueError) Unwrap() error { return ErrBadValue }

// sampleValues is how many values of each column Open sniffs at most.
const sampleValues = 4096

// normalizer checks one field and appends it, rewritten into the plain
// form when it has to be, to dst; ok false for a bad value.
type normalizer func(dst, fld []byte) ([]byte, bool)

// valueColumns returns the schema positions of the amount and date
// columns to check (the invoice schema's amount and issued_at, or what
// Options.AmountColumns and DateColumns name).
func (f *File) valueColumns() (amounts, dates []int) {
	if !f.opts.CheckValues {
		return nil, nil
	}
	names := func(given []string, def string) []string {
		if given != nil {
			return given
		}
		return []string{def}
	}
	for _, n := range names(f.opts.AmountColumns, feature.ColAmount) {
		if i := f.Schema.Index(n); i >= 0 {
			amounts = append(amounts, i)
		}
	}
	for _, n := range names(f.opts.DateColumns, feature.ColIssuedAt) {
		if i := f.Schema.Index(n); i >= 0 {
			dates = append(dates, i)
		}
	}
	return amounts, dates
}

// sniffValues decides the file's number and date conventions from the rows
// in head (the data after the header in the first block) and sets the
// parsers' normalizers.
func (f *File) sniffValues(head []byte, eof bool) error {
	amounts, dates := f.valueColumns()
	if len(amounts)+len(dates) == 0 {
		return nil
	}
	sample := f.sampleRows(head, eof, slices.Concat(amounts, dates))
	f.norms = make([]normalizer, f.Schema.Len())
	f.wants = make([]string, f.Schema.Len())
	var err error
	if f.Numbers, err = f.numberFormat(sample, amounts); err != nil {
		return err
	}
	if f.Dates, err = f.dateFormat(sample, dates); err != nil {
		return err
	}
	reuse.putBatch(sample) // the formats keep nothing of it
	for _, j := range amounts {
		f.norms[j], f.wants[j] = amountNormalizer(f.Numbers), "an amount"
	}
	f.dateCols = make([]bool, f.Schema.Len())
	for _, j := range dates {
		f.norms[j], f.wants[j] = dateNormalizer(f.Dates), "a date"
		f.dateCols[j] = true
	}
	return nil
}

// sampleRows parses the whole lines of head, without normalizing, for the
// sniffers of the columns cols. The sniffers read the first sampleValues
// non-empty values of each column (columnSamples), so it parses the first
// sampleValues lines alone first, and all of head only when one of cols
// has fewer non-empty values than that among them: the sniffers get the
// same values either way. A file's start on one CPU, while the cluster's
// others wait, then parses some four thousand rows instead of its whole
// first MiB (seven thousand of the bench's rows, tens of thousands of
// short ones).
func (f *File) sampleRows(head []byte, eof bool, cols []int) *Batch {
	head = wholeLines(head, eof)
	if cut := lineEnd(head, sampleValues); cut < len(head) {
		// A record that goes on past the cut (a quoted line break) is
		// left for the whole head's parse, as at head's own end.
		b := f.parseRows(head[:cut], false)
		if fullColumns(b, cols) {
			return b
		}
		reuse.putBatch(b)
	}
	return f.parseRows(head, eof)
}

// parseRows parses the lines of data (whole lines, or the file's end
// when eof) into a batch of the scans' free list, without normalizing.
func (f *File) parseRows(data []byte, eof bool) *Batch {
	// From the scans' free list, and back to it once sniffed: a fresh
	// batch for a 1 MiB head is some 4 MB the runtime zeroes, in every
	// file's start.
	b := reuse.batch()
	b.file, b.ncols, b.user = f, f.Schema.Len(), f.Schema.User()
	b.reset(0, len(data), bytes.Count(data, []byte{'\n'})+1)
	p := newParser(f)
	p.norms = nil
	p.skip = nil // the sniffers read the amounts and dates, read or not
	p.parse(&chunk{data: data, line: f.dataLine, eof: eof}, b)
	return b
}

// wholeLines is head up to its last '\n', or all of it at the file's end
// (eof).
func wholeLines(head []byte, eof bool) []byte {
	if eof {
		return head
	}
	return head[:bytes.LastIndexByte(head, '\n')+1]
}

// lineEnd returns the index just after the n-th '\n' of b, or len(b) when
// b has fewer.
func lineEnd(b []byte, n int) int {
	end := 0
	for range n {
		i := bytes.IndexByte(b[end:], '\n')
		if i < 0 {
			return len(b)
		}
		end += i + 1
	}
	return end
}

// fullColumns reports whether every column of cols has at least
// sampleValues non-empty values in b.
func fullColumns(b *Batch, cols []int) bool {
	for _, j := range cols {
		n := 0
		for i := 0; i < b.Len() && n < sampleValues; i++ {
			if len(b.Field(i, j)) > 0 {
				n++
			}
		}
		if n < sampleValues {
			return false
		}
	}
	return true
}

// columnSamples returns up to sampleValues non-empty values of each of
// the columns cols, column after column, in one slice made at its size:
// grown by append, the slice of slices was a tenth of a small file's
// time (every growth copies its pointers through the write barrier).
func columnSamples(b *Batch, cols []int) [][]byte {
	out := make([][]byte, 0, len(cols)*min(sampleValues, b.Len()))
	for _, j := range cols {
		n := 0
		for i := 0; i < b.Len() && n < sampleValues; i++ {
			if v := b.Field(i, j); len(v) > 0 {
				out = append(out, v)
				n++
			}
		}
	}
	return out
}

// numberFormat is --decimal, or the amount columns' sniffed convention.
func (f *File) numberFormat(b *Batch, cols []int) (feature.NumberFormat, error) {
	if f.opts.Decimal != "" {
		return feature.ParseNumberFormat(f.opts.Decimal)
	}
	var s feature.NumberSniffer
	any := columnSamples(b, cols)
	for _, v := range any {
		s.Add(v)
	}
	nf, err := s.Format()
	if err != nil {
		return nf, f.fail(0, fmt.Errorf("%w: column %s: %v: give --decimal with \",\" or \".\"", ErrAmbiguousFormat, f.Schema.Name(cols[0]), err))
	}
	if err := noneRead(any, func(v []byte) bool { _, ok := feature.ParseAmount(v, nf); return ok }); err != nil {
		return nf, f.fail(0, fmt.Errorf("column %s: %w", f.Schema.Name(cols[0]), err))
	}
	return nf, nil
}

// dateFormat is --date-format and --tz, or the date columns' sniffed
// convention.
func (f *File) dateFormat(b *Batch, cols []int) (feature.DateFormat, error) {
	var df feature.DateFormat
	any := columnSamples(b, cols)
	if f.opts.DateFormat != "" {
		l, err := feature.ParseDateLayout(f.opts.DateFormat)
		if err != nil {
			return df, err
		}
		df.Layout = l
	} else if len(cols) > 0 {
		var err error
		if df, err = feature.SniffDates(any); err != nil {
			return df, f.fail(0, fmt.Errorf("%w: column %s: %v: give --date-format DD/MM/YYYY or MM/DD/YYYY", ErrAmbiguousFormat, f.Schema.Name(cols[0]), err))
		}
	}
	if f.opts.TZ != "" {
		loc, err := time.LoadLocation(f.opts.TZ)
		if err != nil {
			return df, fmt.Errorf("--tz %q: %w", f.opts.TZ, err)
		}
		df.Location = loc
	}
	if err := noneRead(any, func(v []byte) bool { _, err := feature.ParseDate(v, df); return err == nil }); err != nil {
		return df, f.fail(0, fmt.Errorf("column %s: %w", f.Schema.Name(cols[0]), err))
	}
	return df, nil
}

// noneRead fails a sample of which no value reads.
func noneRead(vals [][]byte, reads func([]byte) bool) error {
	if len(vals) == 0 {
		return nil
	}
	for _, v := range vals {
		if reads(v) {
			return nil
		}
	}
	return fmt.Errorf("%w: none of the first %d values reads (e.g. %q)", ErrBadValue, len(vals), vals[0])
}

// amountNormalizer checks amounts in nf; in the plain and the point
// formats a value already written plainly ("1234.56", what ParseDecimal
// reads) is kept as it is, and every other rewritten into the plain form
// ("$1,234.56" becomes "1234.56").
func amountNormalizer(nf feature.NumberFormat) normalizer {
	point := nf == feature.NumberFormat{} || nf == feature.NumberFormat{Decimal: '.'}
	return func(dst, fld []byte) ([]byte, bool) {
		if point {
			if _, ok := feature.ParseAmount(fld, feature.NumberFormat{}); ok {
				return append(dst, fld...), true
			}
		}
		a, ok := feature.ParseAmount(fld, nf)
		if !ok {
			return dst, false
		}
		return a.AppendPlain(dst), true
	}
}

// dateNormalizer checks dates in df; ISO ones without --tz are kept as
// they are, others rewritten into ISO. A date to rewrite whose instant
// falls outside the years 0000 to 9999 in UTC ("1/1/0000 0:00+10:00") has
// no ISO form ParseTime reads: it is a bad value.
func dateNormalizer(df feature.DateFormat) normalizer {
	plain := df == feature.DateFormat{}
	return func(dst, fld []byte) ([]byte, bool) {
		if plain {
			// The common forms, read as ParseDate reads them first,
			// without the time.Time it makes.
			if _, ok := feature.LocalSeconds(fld); ok {
				return append(dst, fld...), true
			}
		}
		t, err := feature.ParseDate(fld, df)
		if err != nil {
			return dst, false
		}
		if plain {
			return append(dst, fld...), true
		}
		if y := t.Time.UTC().Year(); y < 0 || y > 9999 {
			return dst, false
		}
		return t.AppendFormat(dst), true
	}
}

// appendFields appends a row's schema fields (src[bd[h].a:bd[h].b] for
// header column h) to b, normalizing amounts and dates, and leaving the
// fields of skipped columns (Options.Reads) empty; on a bad value it takes
// the row back out and reports false, after counting it as OnBadValue says.
func (p *parser) appendFields(b *Batch, line int64, src []byte, bd []span, text []byte) bool {
	// The batch's slices and the parser's fields in locals: the loop runs
	// for every field of every row, and through pointers the compiler
	// would load them again after every append.
	buf, ends := b.buf, b.ends
	rowBuf, rowEnds := len(buf), len(ends)
	norms, skip := p.norms, p.skip
	var zoned, local int64
	for j, h := range p.colOf {
		sp := bd[h]
		fld := src[sp.a:sp.b]
		if norms == nil || norms[j] == nil || len(fld) == 0 {
			if skip == nil || !skip[j] {
				buf = append(buf, fld...)
			}
			ends = append(ends, uint32(len(buf)))
			continue
		}
		at := len(buf)
		var ok bool
		if buf, ok = norms[j](buf, fld); ok {
			if p.f.dateCols[j] {
				if feature.HasZone(buf[at:]) {
					zoned++
				} else {
					local++
				}
			}
			if skip != nil && skip[j] {
				buf = buf[:at] // checked and counted, not carried
			}
			ends = append(ends, uint32(len(buf)))
			continue
		}
		p.badValues++
		verr := &ValueError{Column: p.f.Schema.Name(j), Value: feature.DecodeText(fld, p.enc), Want: p.f.wants[j]}
		switch p.f.opts.OnBadValue {
		case BadValueEmpty:
			p.emptied++
			p.sample(line, fmt.Errorf("%w (%w)", verr, ErrValueEmptied), text)
			ends = append(ends, uint32(len(buf)))
			continue
		case BadValueFail:
			if p.failErr == nil {
				p.failErr = &FileError{File: p.f.Path, Line: line, Err: verr}
			}
		}
		b.buf, b.ends = buf[:rowBuf], ends[:rowEnds]
		p.badRow(line, verr, text)
		return false
	}
	b.buf, b.ends = buf, ends
	p.zonedTimes += zoned
	p.localTimes += local
	return true
}
