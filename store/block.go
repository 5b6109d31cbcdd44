package store

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DefaultBlockBytes is the raw (uncompressed) size at which a block is
// cut: big enough for the codec to find repeats across rows, small enough
// that a reducer holds only a few of them per worker.
const DefaultBlockBytes = 64 << 10

// maxBlockRaw bounds a block's raw size on decode (a block holds
// BlockBytes plus at most one row, and a row is at most 64 MiB).
const maxBlockRaw = 256 << 20

// maxBlockRows bounds the rows of one block on decode, so that a corrupt
// header cannot ask for a huge allocation.
const maxBlockRows = 1 << 24

// BlockWriter accumulates rows and encodes them as one block value. Rows
// have a fixed number of fields (one per schema column) and a source line.
// The encoding is columnar: the lengths and bytes of each column are
// stored together, and a column whose value is the same in every row (the
// user column, often the currency) is stored once.
//
// A BlockWriter is not safe for concurrent use; Reset reuses its buffers.
type BlockWriter struct {
	ncols int
	lines []int64
	lens  [][]uint32 // per column, per row
	data  [][]byte   // per column, concatenated values
	raw   int        // estimated encoded raw size
	buf   []byte     // encode scratch
}

// NewBlockWriter returns a writer for rows of ncols fields.
func NewBlockWriter(ncols int) *BlockWriter {
	if ncols < 1 || ncols > math.MaxUint16 {
		panic(fmt.Sprintf("BUG: NewBlockWriter(%d)", ncols))
	}
	return &BlockWriter{ncols: ncols, lens: make([][]uint32, ncols), data: make([][]byte, ncols)}
}

// Columns returns the number of fields per row.
func (w *BlockWriter) Columns() int { return w.ncols }

// Rows returns the number of rows added since the last Reset.
func (w *BlockWriter) Rows() int { return len(w.lines) }

// RawBytes returns about how many bytes the block takes before
// compression: what BlockBytes is compared with.
func (w *BlockWriter) RawBytes() int { return w.raw }

// Add adds a row: its source line and one field per column. The fields are
// copied.
func (w *BlockWriter) Add(line int64, fields [][]byte) {
	if len(fields) != w.ncols {
		panic(fmt.Sprintf("BUG: BlockWriter.Add with %d fields, want %d", len(fields), w.ncols))
	}
	w.lines = append(w.lines, line)
	w.raw += 2
	for j, f := range fields {
		w.lens[j] = append(w.lens[j], uint32(len(f)))
		w.data[j] = append(w.data[j], f...)
		w.raw += len(f) + 1
	}
}

// Reset forgets the rows and keeps the buffers.
func (w *BlockWriter) Reset() {
	w.lines = w.lines[:0]
	for j := range w.lens {
		w.lens[j] = w.lens[j][:0]
		w.data[j] = w.data[j][:0]
	}
	w.raw = 0
}

// Block value layout (see doc.go):
//
//	value   = codec:1 | uvarint(rows) | uvarint(rawLen) | payload
//	payload = compress(raw)
//	raw     = uvarint(ncols) | uvarint(rows) | lines | column*ncols
//	lines   = rows × varint(line - previous line), the first from 0
//	column  = 0x00 | rows × uvarint(len) | bytes   (values differ)
//	        | 0x01 | uvarint(len) | bytes          (every row the same)
const (
	colVarying  byte = 0
	colConstant byte = 1
)

// AppendRaw appends the uncompressed block encoding to dst.
func (w *BlockWriter) AppendRaw(dst []byte) []byte {
	rows := len(w.lines)
	dst = binary.AppendUvarint(dst, uint64(w.ncols))
	dst = binary.AppendUvarint(dst, uint64(rows))
	prev := int64(0)
	for _, l := range w.lines {
		dst = binary.AppendVarint(dst, l-prev)
		prev = l
	}
	for j := 0; j < w.ncols; j++ {
		lens, data := w.lens[j], w.data[j]
		if rows > 1 && constantColumn(lens, data) {
			dst = append(dst, colConstant)
			dst = binary.AppendUvarint(dst, uint64(lens[0]))
			dst = append(dst, data[:lens[0]]...)
			continue
		}
		dst = append(dst, colVarying)
		for _, n := range lens {
			dst = binary.AppendUvarint(dst, uint64(n))
		}
		dst = append(dst, data...)
	}
	return dst
}

// constantColumn reports whether every value of the column is the same.
func constantColumn(lens []uint32, data []byte) bool {
	n := int(lens[0])
	if n*len(lens) != len(data) {
		return false
	}
	first := data[:n]
	for i := 1; i < len(lens); i++ {
		if lens[i] != uint32(n) || string(data[i*n:(i+1)*n]) != string(first) {
			return false
		}
	}
	return true
}

// AppendValue appends the block's value (header and compressed payload)
// to dst.
func (w *BlockWriter) AppendValue(dst []byte, codec Codec, c *Compressor) []byte {
	w.buf = w.AppendRaw(w.buf[:0])
	dst = append(dst, byte(codec))
	dst = binary.AppendUvarint(dst, uint64(len(w.lines)))
	dst = binary.AppendUvarint(dst, uint64(len(w.buf)))
	return c.Compress(codec, dst, w.buf)
}

// ValueHeader is the uncompressed head of a block value: enough to count
// rows without decompressing.
type ValueHeader struct {
	Codec   Codec
	Rows    int
	RawLen  int
	Payload []byte // the compressed raw block; aliases the value
}

// ParseValueHeader reads a block value's header.
func ParseValueHeader(v []byte) (ValueHeader, error) {
	var h ValueHeader
	if len(v) < 3 {
		return h, fmt.Errorf("%w: block value of %d bytes", ErrCorrupt, len(v))
	}
	h.Codec = Codec(v[0])
	if h.Codec > CodecZstd {
		return h, fmt.Errorf("%w: block codec %d", ErrCorrupt, v[0])
	}
	rows, n := binary.Uvarint(v[1:])
	if n <= 0 || rows > maxBlockRows {
		return h, fmt.Errorf("%w: block row count", ErrCorrupt)
	}
	raw, m := binary.Uvarint(v[1+n:])
	if m <= 0 || raw > maxBlockRaw {
		return h, fmt.Errorf("%w: block raw length", ErrCorrupt)
	}
	h.Rows, h.RawLen, h.Payload = int(rows), int(raw), v[1+n+m:]
	return h, nil
}

// Block is a decoded block: rows of fields that alias its own buffer.
// Decode into the same Block again to reuse its memory.
type Block struct {
	raw   []byte
	ncols int
	rows  int
	lines []int64
	// Per column: where its rows' offsets start in starts/ends, or -1 for
	// a constant column, whose one value is at [cs, ce).
	colAt  []int
	cs, ce []uint32
	starts []uint32 // rows × varying columns
	ends   []uint32
}

// Len returns the number of rows.
func (b *Block) Len() int { return b.rows }

// Columns returns the number of fields per row.
func (b *Block) Columns() int { return b.ncols }

// Line returns row i's source line.
func (b *Block) Line(i int) int64 { return b.lines[i] }

// Field returns field j of row i. It aliases the block: valid until the
// block is decoded into again.
func (b *Block) Field(i, j int) []byte {
	at := b.colAt[j]
	if at < 0 {
		return b.raw[b.cs[j]:b.ce[j]:b.ce[j]]
	}
	k := at + i
	return b.raw[b.starts[k]:b.ends[k]:b.ends[k]]
}

// Row fills dst with row i's fields (reusing its capacity) and returns it.
func (b *Block) Row(i int, dst [][]byte) [][]byte {
	dst = dst[:0]
	for j := 0; j < b.ncols; j++ {
		dst = append(dst, b.Field(i, j))
	}
	return dst
}

// RawBytes returns the size of the uncompressed block.
func (b *Block) RawBytes() int { return len(b.raw) }

// DecodeValue decompresses and decodes a block value into b.
func (b *Block) DecodeValue(v []byte, c *Compressor) error {
	h, err := ParseValueHeader(v)
	if err != nil {
		return err
	}
	b.raw, err = c.Decompress(h.Codec, b.raw[:0], h.Payload, h.RawLen)
	if err != nil {
		return err
	}
	if err := b.decodeRaw(); err != nil {
		return err
	}
	if b.rows != h.Rows {
		return fmt.Errorf("%w: block has %d rows, header says %d", ErrCorrupt, b.rows, h.Rows)
	}
	return nil
}

// DecodeRaw decodes an uncompressed block (what AppendRaw wrote) into b.
// b keeps a copy of raw.
func (b *Block) DecodeRaw(raw []byte) error {
	b.raw = append(b.raw[:0], raw...)
	return b.decodeRaw()
}

func (b *Block) decodeRaw() error {
	p := b.raw
	bad := func(what string) error { return fmt.Errorf("%w: block: bad %s", ErrCorrupt, what) }
	ncols, n := binary.Uvarint(p)
	if n <= 0 || ncols == 0 || ncols > math.MaxUint16 {
		return bad("column count")
	}
	p = p[n:]
	rows, n := binary.Uvarint(p)
	// Every row takes at least one byte (its line delta), so rows can't
	// exceed the block's size.
	if n <= 0 || rows > uint64(len(b.raw)) || rows > maxBlockRows {
		return bad("row count")
	}
	p = p[n:]
	b.ncols, b.rows = int(ncols), int(rows)
	if cap(b.lines) < b.rows {
		b.lines = make([]int64, b.rows)
	}
	b.lines = b.lines[:b.rows]
	prev := int64(0)
	for i := range b.lines {
		d, n := binary.Varint(p)
		if n <= 0 {
			return bad("line")
		}
		p = p[n:]
		prev += d
		b.lines[i] = prev
	}
	// Every column takes at least one byte and every varying cell one
	// more, so the allocations below are bounded by the block's size.
	if b.ncols > len(p) {
		return bad("column count")
	}
	b.colAt = resize(b.colAt, b.ncols)
	b.cs = resize(b.cs, b.ncols)
	b.ce = resize(b.ce, b.ncols)
	b.starts, b.ends = b.starts[:0], b.ends[:0]
	off := func() uint32 { return uint32(len(b.raw) - len(p)) }
	for j := 0; j < b.ncols; j++ {
		if len(p) == 0 {
			return bad("column header")
		}
		mode := p[0]
		p = p[1:]
		switch mode {
		case colConstant:
			l, n := binary.Uvarint(p)
			if n <= 0 || l > uint64(len(p)-n) {
				return bad("constant column")
			}
			p = p[n:]
			b.colAt[j] = -1
			b.cs[j] = off()
			b.ce[j] = b.cs[j] + uint32(l)
			p = p[l:]
		case colVarying:
			if b.rows > len(p) {
				return bad("column lengths")
			}
			at := len(b.starts)
			b.colAt[j] = at
			// Lengths first; then turn them into offsets.
			total := uint64(0)
			for i := 0; i < b.rows; i++ {
				l, n := binary.Uvarint(p)
				if n <= 0 || l > uint64(len(b.raw)) {
					return bad("field length")
				}
				p = p[n:]
				b.ends = append(b.ends, uint32(l))
				total += l
			}
			if total > uint64(len(p)) {
				return bad("column data")
			}
			s := off()
			for i := 0; i < b.rows; i++ {
				l := b.ends[at+i]
				b.starts = append(b.starts, s)
				b.ends[at+i] = s + l
				s += l
			}
			p = p[total:]
		default:
			return bad("column mode")
		}
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: block: %d trailing bytes", ErrCorrupt, len(p))
	}
	return nil
}

// resize returns s with length n, reusing its capacity.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
