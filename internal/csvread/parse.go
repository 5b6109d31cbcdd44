package csvread

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf8"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/ascii"
	"github.com/mce-engine/mce/internal/cp1252"
)

// span is a field's [a, b) in a line.
type span struct{ a, b int }

// parser turns chunks into batches; one per parser goroutine.
type parser struct {
	f     *File
	delim byte
	enc   feature.Encoding
	nh    int   // fields per record
	colOf []int // header column of each schema column
	userH int   // header column of the user

	bounds  []span   // the fields of a fast-path line
	qbounds []span   // the fields of a quoted record in scratch
	scratch []byte   // the unescaped fields of a quoted record
	sends   []uint32 // their ends in scratch

	bad        int64
	badValues  int64
	emptied    int64        // bad values emptied in a kept row
	zonedTimes int64        // dates of kept rows with a zone, "Z" or "±hh:mm"
	localTimes int64        // and without
	failErr    error        // the first bad value with OnBadValue fail
	norms      []normalizer // nil: no column checked
	skip       []bool       // per schema column: left empty (File.skip; nil: none)
	samples    []*RowError  // bad rows of the current chunk, at most maxSamples
	maxSamples int

	masks [maskBlocks]blockMasks // the window's structural bytes (window)
	pad   [64]byte               // its last, short block
}

func newParser(f *File) *parser {
	return &parser{
		f:          f,
		delim:      f.Delimiter,
		enc:        f.Encoding,
		nh:         f.nHeader,
		colOf:      f.colOf,
		userH:      f.colOf[f.Schema.User()],
		bounds:     make([]span, f.nHeader),
		qbounds:    make([]span, f.nHeader),
		maxSamples: f.opts.SampleBadRows,
		norms:      f.norms,
		skip:       f.skip,
	}
}

// parse appends the good rows of c to b and counts the bad ones. It reads
// the chunk a window of maskBlocks*64 bytes at a time: fillMasks marks
// the window's delimiters, line ends and quotes, and a line without a
// quote is cut into fields from those bits (the fast path); a line with a
// quote goes to quotedLine, and a line longer than the window to oneLine.
func (p *parser) parse(c *chunk, b *Batch) {
	data, line, pos := c.data, c.line, 0
	for pos < len(data) {
		var stop bool
		if p.delim == 0 || byLine {
			pos, line, stop = p.oneLine(data, pos, line, b)
		} else {
			pos, line, stop = p.window(data, pos, line, b)
		}
		if stop {
			return
		}
	}
}

// byLine makes parse read every line with oneLine: tests hold the windows
// to it.
var byLine = false

// window parses the lines of data that start in the window at pos (pos
// is a line's start) and returns where the next line starts, its number,
// and whether the chunk is done (a quote left open).
func (p *parser) window(data []byte, pos int, line int64, b *Batch) (int, int64, bool) {
	wend := min(len(data), pos+maskBlocks*64)
	masks := &p.masks
	nb := fillMasks(data[pos:wend], p.delim, masks, &p.pad)
	bd, delim := p.bounds, p.delim
	ls, s, nf := pos, pos, 0 // the line's start, its field's start, its fields so far
	k := 0
	live := masks[0].seps | masks[0].quotes // the bits of block k still to read
	for {
		for live == 0 {
			if k++; k == nb {
				if ls >= wend || (ls > pos && wend < len(data)) {
					return ls, line, false
				}
				// No line ended in the window, or the chunk's last line
				// has no '\n'.
				return p.oneLine(data, ls, line, b)
			}
			live = masks[k].seps | masks[k].quotes
		}
		m := &masks[k]
		t := bits.TrailingZeros64(live)
		bit := uint64(1) << t
		live &= live - 1
		j := pos + k*64 + t
		if m.seps&bit != 0 {
			if m.lines&bit == 0 { // the delimiter
				if nf < len(bd) {
					bd[nf] = span{s - ls, j - ls}
				}
				nf++
				s = j + 1
				continue
			}
			ln := data[ls:j]
			if n := len(ln); n > 0 && ln[n-1] == '\r' {
				ln = ln[:n-1]
			}
			if len(ln) > 0 {
				if nf < len(bd) {
					bd[nf] = span{s - ls, len(ln)}
				}
				p.row(ln, bd, nf+1, ln, line, b)
			}
			line++
			ls, s, nf = j+1, j+1, 0
			continue
		}
		// A quote. One that opens a field and closes it on this line,
		// right before the delimiter or the line's end, is read here (a
		// simple quote, as quotedFields has it); any other goes to
		// quotedLine, with the line.
		next := -1
		c, ok := 0, false
		if j == s {
			c, ok = p.quoteEnd(nb, j-pos)
		}
		if ok {
			c += pos
			e := c + 1 // what follows the closing quote
			switch {
			case e < len(data) && data[e] == delim:
				if nf < len(bd) {
					bd[nf] = span{j + 1 - ls, c - ls}
				}
				nf++
				s = e + 1
				next = s
			case e == len(data) || data[e] == '\n' || data[e] == '\r' && (e+1 == len(data) || data[e+1] == '\n'):
				if nf < len(bd) {
					bd[nf] = span{j + 1 - ls, c - ls}
				}
				ln := data[ls:e]
				p.row(ln, bd, nf+1, ln, line, b)
				if e < len(data) && data[e] == '\r' {
					e++
				}
				line++
				next = min(e+1, len(data))
				ls, s, nf = next, next, 0
			}
		}
		if next < 0 {
			var stop bool
			if next, line, stop = p.quotedLine(data, ls, line, b); stop {
				return next, line, true
			}
			ls, s, nf = next, next, 0
		}
		// Read on from next, in its block.
		r := next - pos
		if r >= nb*64 {
			k, live = nb-1, 0
			continue
		}
		k = r / 64
		live = (masks[k].seps | masks[k].quotes) & (^uint64(0) << (r % 64))
	}
}

// quoteEnd returns the window offset of the first '"' after offset r,
// when it is in the window and no '\n' comes before it.
func (p *parser) quoteEnd(nb, r int) (int, bool) {
	above := ^uint64(0) << (r % 64) << 1
	for k := r / 64; k < nb; k++ {
		m := &p.masks[k]
		q, l := m.quotes&above, m.lines&above
		if q != 0 {
			if l&(q&-q-1) != 0 {
				return 0, false
			}
			return k*64 + bits.TrailingZeros64(q), true
		}
		if l != 0 {
			return 0, false
		}
		above = ^uint64(0)
	}
	return 0, false
}

// oneLine parses the line at pos without the masks.
func (p *parser) oneLine(data []byte, pos int, line int64, b *Batch) (int, int64, bool) {
	end, next := len(data), len(data)
	if nl := bytes.IndexByte(data[pos:], '\n'); nl >= 0 {
		end = pos + nl
		next = end + 1
	}
	if bytes.IndexByte(data[pos:end], '"') >= 0 {
		return p.quotedLine(data, pos, line, b)
	}
	ln := data[pos:end]
	if n := len(ln); n > 0 && ln[n-1] == '\r' {
		ln = ln[:n-1]
	}
	if len(ln) > 0 {
		p.fastRow(ln, line, b)
	}
	return next, line + 1, false
}

// quotedLine parses the record that starts at pos, a line with a quote in
// it: in place when its quotes are simple (simpleQuotedRow), else through
// parseRecord, which may read on over quoted line ends. It returns where
// the next record starts, its line number, and whether the chunk is done
// (a quote left open swallowed the rest).
func (p *parser) quotedLine(data []byte, pos int, line int64, b *Batch) (int, int64, bool) {
	end, next := len(data), len(data)
	if nl := bytes.IndexByte(data[pos:], '\n'); nl >= 0 {
		end = pos + nl
		next = end + 1
	}
	if p.simpleQuotedRow(data[pos:end], line, b) {
		return next, line + 1, false
	}
	start := pos
	p.scratch, p.sends = p.scratch[:0], p.sends[:0]
	next, closed := parseRecord(data, pos, p.delim, &p.scratch, &p.sends)
	if !closed {
		// A quote left open at the end of the file swallowed the
		// rest: one bad row per non-empty line, reported at its start.
		p.badRow(line, ErrUnterminatedQuote, data[start:])
		p.bad += nonEmptyLines(data[start:]) - 1
		return len(data), line, true
	}
	rec := data[start:next]
	if n := len(rec); n > 0 && rec[n-1] == '\n' {
		rec = rec[:n-1]
	}
	p.quotedRow(rec, line, b)
	return next, line + 1 + int64(bytes.Count(rec, []byte{'\n'})), false
}

// fastRow parses a line without quotes; ln has no '\n' and no final '\r'.
func (p *parser) fastRow(ln []byte, line int64, b *Batch) {
	p.row(ln, p.bounds, lineFields(ln, p.delim, p.bounds), ln, line, b)
}

// row ends the parse of one record whose nf fields are src[bd[h]] for
// header column h: it appends the row to b or counts it bad (its bytes
// not UTF-8 in a UTF-8 file, a wrong number of fields, a bad value). text
// is the record as it was in the file, for the bad rows' samples.
func (p *parser) row(src []byte, bd []span, nf int, text []byte, line int64, b *Batch) {
	if p.enc == feature.EncodingUTF8 && !utf8.Valid(text) {
		p.badRow(line, ErrInvalidUTF8, text)
		return
	}
	if nf != p.nh {
		p.badRow(line, fieldCountError(nf, p.nh), text)
		return
	}
	if !p.appendFields(b, line, src, bd, text) {
		return
	}
	b.addUser(src[bd[p.userH].a:bd[p.userH].b], p.enc, line)
}

// Masks for finding a byte in a word of 8 (lineFields).
const (
	lo7Bytes = 0x7f7f7f7f7f7f7f7f
	oneBytes = 0x0101010101010101
)

// lineFields finds the fields of a line without quotes: it puts the first
// len(bd) fields' spans in bd and returns the number of fields (delimiters
// plus one), which may be more or fewer than len(bd); bd is only complete
// when it is equal. It tests 8 bytes at a time for the delimiter: the
// fields are short, and one bytes.IndexByte per field costs more in
// calls than in search.
func lineFields(ln []byte, delim byte, bd []span) int {
	rep := uint64(delim) * oneBytes
	s, nf := 0, 0
	i := 0
	for ; i+8 <= len(ln); i += 8 {
		w := binary.LittleEndian.Uint64(ln[i:]) ^ rep
		// The high bit of each byte that was the delimiter (is 0 now),
		// exactly: the sum cannot carry from one byte into the next.
		t := ^((w&lo7Bytes + lo7Bytes) | w | lo7Bytes)
		for t != 0 {
			j := i + bits.TrailingZeros64(t)>>3
			if nf < len(bd) {
				bd[nf] = span{s, j}
			}
			nf++
			s = j + 1
			t &= t - 1
		}
	}
	for ; i < len(ln); i++ {
		if ln[i] == delim {
			if nf < len(bd) {
				bd[nf] = span{s, i}
			}
			nf++
			s = i + 1
		}
	}
	if nf < len(bd) {
		bd[nf] = span{s, len(ln)}
	}
	return nf + 1
}

// simpleQuotedRow parses a line with quotes when they are simple (see
// quotedFields) and reports whether it did; ln is the line without its
// '\n'. The row, or the bad row, is then what parseRecord and quotedRow
// make of it, without copying the fields to p.scratch first.
func (p *parser) simpleQuotedRow(ln []byte, line int64, b *Batch) bool {
	if n := len(ln); n > 0 && ln[n-1] == '\r' {
		ln = ln[:n-1]
	}
	nf, ok := quotedFields(ln, p.delim, p.bounds)
	if ok {
		p.row(ln, p.bounds, nf, ln, line, b)
	}
	return ok
}

// quotedFields is lineFields for a line with quotes in it (ln has no
// '\n' and no final '\r'), when every quote opens a field ("…" at the
// field's start) that closes on this line, with no '""' inside and the
// delimiter or the line's end right after the closing quote. A field's
// span is then the bytes between its quotes: what parseRecord unescapes
// it to. ok is false for any other use of quotes (a record that goes on
// to the next line, an escaped quote, data after a closing quote, a quote
// inside an unquoted field): parseRecord reads those.
func quotedFields(ln []byte, delim byte, bd []span) (nf int, ok bool) {
	q := nextQuote(ln, 0) // the first quote at or after s
	s := 0
	for {
		var a, e, next int // the field is ln[a:e]; the next starts at next
		if s < len(ln) && ln[s] == '"' {
			c := nextQuote(ln, s+1)
			switch {
			case c == len(ln):
				return 0, false // open at the line's end
			case c+1 == len(ln):
				next = len(ln) + 1
			case ln[c+1] == delim:
				next = c + 2
			default:
				return 0, false // '""', or data after the closing quote
			}
			a, e = s+1, c
			q = nextQuote(ln, c+1)
		} else {
			a, e = s, len(ln)
			if d := bytes.IndexByte(ln[s:], delim); d >= 0 {
				e = s + d
			}
			next = e + 1
			if q < e {
				return 0, false // a quote inside an unquoted field
			}
		}
		if nf < len(bd) {
			bd[nf] = span{a, e}
		}
		nf++
		if next > len(ln) {
			return nf, true
		}
		s = next
	}
}

// nextQuote returns the index of the first '"' of ln at or after i, or
// len(ln).
func nextQuote(ln []byte, i int) int {
	if q := bytes.IndexByte(ln[i:], '"'); q >= 0 {
		return i + q
	}
	return len(ln)
}

// quotedRow takes the fields parseRecord left in p.scratch; rec is the raw
// record without its final '\n'.
func (p *parser) quotedRow(rec []byte, line int64, b *Batch) {
	if len(p.sends) == p.nh {
		var s uint32
		for h, e := range p.sends {
			p.qbounds[h] = span{int(s), int(e)}
			s = e
		}
	}
	p.row(p.scratch, p.qbounds, len(p.sends), rec, line, b)
}

func fieldCountError(got, want int) error {
	return fmt.Errorf("%w: %d, the header has %d", ErrFieldCount, got, want)
}

// badRow counts a bad row and keeps it as a sample while there is room.
func (p *parser) badRow(line int64, reason error, text []byte) {
	p.bad++
	p.sample(line, reason, text)
}

// sample keeps a row as a sample while there is room.
func (p *parser) sample(line int64, reason error, text []byte) {
	if len(p.samples) >= p.maxSamples {
		return
	}
	p.samples = append(p.samples, &RowError{File: p.f.Path, Line: line, Err: reason, Text: sampleText(text, p.enc)})
}

// sampleText is the start of a bad row as UTF-8, for a log line.
func sampleText(b []byte, enc feature.Encoding) string {
	if nl := bytes.IndexByte(b, '\n'); nl >= 0 && nl < sampleTextBytes {
		b = b[:nl]
	}
	if len(b) > sampleTextBytes {
		b = b[:sampleTextBytes]
		if enc != feature.EncodingCP1252 {
			b = trimPartialRune(b)
		}
	}
	return feature.DecodeText(bytes.TrimRight(b, "\r"), enc)
}

// nonEmptyLines counts the lines of b that are not empty once a final '\r'
// is dropped.
func nonEmptyLines(b []byte) int64 {
	var n int64
	for len(b) > 0 {
		ln := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			ln, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if !isEmptyLine(ln) {
			n++
		}
	}
	return n
}

// isEmptyLine reports whether a line without its '\n' is empty once a
// final '\r' is dropped; such lines are skipped.
func isEmptyLine(ln []byte) bool {
	return len(ln) == 0 || len(ln) == 1 && ln[0] == '\r'
}

// addUser ends the row the fields of which were just appended: it appends
// the user field converted to UTF-8 when that is needed (the file is cp1252,
// or the encoding is automatic and the field is not valid UTF-8), or an
// empty slot when the field is fine as it is, and the row's line.
func (b *Batch) addUser(fld []byte, enc feature.Encoding, line int64) {
	if enc != feature.EncodingUTF8 && !ascii.Valid(fld) &&
		(enc == feature.EncodingCP1252 || !utf8.Valid(fld)) {
		b.buf = cp1252.AppendUTF8(b.buf, fld)
	}
	b.ends = append(b.ends, uint32(len(b.buf)))
	b.lines = append(b.lines, line)
}
