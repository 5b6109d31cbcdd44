package csvread

import (
	"bytes"
)

// The quote rules live in two places that must agree: parseRecord (which
// splits a record into fields) and lastRecordEnd (which finds where a block
// may be cut). Both say: a '"' opens a quoted field only at the start of a
// field (first byte of a record, or right after a delimiter); inside, '""'
// is one quote and a lone '"' closes the field; every other '"' is data.

// parseRecord parses the record that starts at data[pos]. It appends the
// unescaped bytes of each field to *out and the end offset of each field in
// *out to *ends. It returns the index just after the '\n' that ends the
// record (len(data) when the record ends with data) and whether every
// quoted field was closed. A '\r' right before the '\n' is dropped.
func parseRecord(data []byte, pos int, delim byte, out *[]byte, ends *[]uint32) (next int, closed bool) {
	o := *out
	e := *ends
	defer func() { *out, *ends = o, e }()
	p := pos
	nlAt := -1 // index of the first '\n' at or after p, or len(data)
	for {
		if p < len(data) && data[p] == '"' {
			p++
			for {
				q := bytes.IndexByte(data[p:], '"')
				if q < 0 {
					o = append(o, data[p:]...)
					e = append(e, uint32(len(o)))
					return len(data), false
				}
				o = append(o, data[p:p+q]...)
				p += q + 1
				if p < len(data) && data[p] == '"' {
					o = append(o, '"')
					p++
					continue
				}
				break
			}
		}
		// An unquoted field, or what follows a closing quote: data up to
		// the next delimiter or newline.
		if nlAt < p {
			nlAt = bytes.IndexByte(data[p:], '\n')
			if nlAt < 0 {
				nlAt = len(data)
			} else {
				nlAt += p
			}
		}
		seg := data[p:nlAt]
		if i := bytes.IndexByte(seg, delim); i >= 0 {
			o = append(o, seg[:i]...)
			e = append(e, uint32(len(o)))
			p += i + 1
			continue
		}
		if n := len(seg); n > 0 && seg[n-1] == '\r' {
			seg = seg[:n-1]
		}
		o = append(o, seg...)
		e = append(e, uint32(len(o)))
		if nlAt == len(data) {
			return len(data), true
		}
		return nlAt + 1, true
	}
}

// lastRecordEnd returns the index just after the last '\n' of buf that is
// outside quotes, given that buf starts a record, or -1 when there is none.
// spans is scratch space, returned for reuse.
func lastRecordEnd(buf []byte, delim byte, spans []int) (int, []int) {
	// spans holds the [start, end) pairs of the stretches outside quotes.
	spans = spans[:0]
	start := 0 // start of the current outside stretch
	p := 0
	for {
		q := bytes.IndexByte(buf[p:], '"')
		if q < 0 {
			break
		}
		q += p
		if q != start && buf[q-1] != delim && buf[q-1] != '\n' {
			// A quote inside an unquoted field is data. (q == start
			// means a record start or right after a closing quote; the
			// latter cannot be, as '""' inside a quoted field is
			// consumed below.)
			p = q + 1
			continue
		}
		spans = append(spans, start, q)
		// Inside a quoted field: find the closing quote.
		p = q + 1
		for {
			c := bytes.IndexByte(buf[p:], '"')
			if c < 0 {
				// Open at the end of buf: no newline after q is outside.
				return lastNewline(buf, spans), spans
			}
			c += p
			if c+1 < len(buf) && buf[c+1] == '"' {
				p = c + 2
				continue
			}
			p = c + 1
			break
		}
		start = p
	}
	spans = append(spans, start, len(buf))
	return lastNewline(buf, spans), spans
}

// lastNewline returns the index after the last '\n' inside the spans.
func lastNewline(buf []byte, spans []int) int {
	for k := len(spans) - 2; k >= 0; k -= 2 {
		if i := bytes.LastIndexByte(buf[spans[k]:spans[k+1]], '\n'); i >= 0 {
			return spans[k] + i + 1
		}
	}
	return -1
}
