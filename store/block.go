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

// Block layouts. A value's first byte names its layout and its codec
// (see doc.go); a store's format decides which layout its writers use.
const (
	// Layout1 is the layout of format 1 stores: the columns one after the
	// other, so that a reader parses every column to find the next.
	Layout1 = 1
	// Layout2 (format 2 stores) heads the columns with a directory of
	// their lengths and the block's field bytes, so that a reader decodes
	// only the columns it asks for and skips the others unread.
	Layout2 = 2
	// Layout3 (format 3 stores) is Layout2 with packed columns (pack.go):
	// a column whose every field is a UUID in its canonical text is kept
	// as 16 bytes a field, one whose every field is a time
	// "YYYY-MM-DD hh:mm:ss" as the seconds from the field before, and a
	// reader writes their text back byte for byte.
	Layout3 = 3
	// Layout4 (format 4 stores) is Layout3 that also keeps a column of
	// amounts packed: one whose every field is a decimal number in its
	// plain spelling, with the same fraction digits, as the numbers.
	Layout4 = 4
	// Layout5 (format 5 stores) is Layout4 with a packed time column kept
	// as each time's seconds after the block's earliest, all in one width
	// (the bytes the latest needs), in place of the seconds from the
	// field before as a varint each: smaller, and read with one load a
	// row.
	Layout5 = 5
)

// layoutOf returns the block layout a store of format writes.
// A store of format n writes layout n, format 1 and below Layout1, any
// newer format the newest layout.
func layoutOf(format int) int { return min(max(format, Layout1), Layout5) }

// BlockWriter accumulates rows and encodes them as one block value. Rows
// have a fixed number of fields (one per schema column) and a source line.
// The encoding is columnar: the lengths and bytes of each column are
// stored together, and a column whose value is the same in every row (the
// user column, often the currency) is stored once.
//
// A BlockWriter is not safe for concurrent use; Reset reuses its buffers.
type BlockWriter struct {
	ncols  int
	layout int
	lines  []int64
	lens   [][]uint32 // per column, per row
	data   [][]byte   // per column, concatenated values
	raw    int        // estimated encoded raw size
	buf    []byte     // encode scratch
	secs   []byte     // Layout2: the sections, before their directory
	secLen []int
}

// NewBlockWriter returns a writer for rows of ncols fields, in the
// layout of a new store (Layout5); SetFormat picks an older store's.
func NewBlockWriter(ncols int) *BlockWriter {
	if ncols < 1 || ncols > math.MaxUint16 {
		panic(fmt.Sprintf("BUG: NewBlockWriter(%d)", ncols))
	}
	return &BlockWriter{ncols: ncols, layout: Layout5, lens: make([][]uint32, ncols), data: make([][]byte, ncols)}
}

// SetFormat makes the writer write blocks in the layout of a store of
// that format (Config.Format), so that what it adds to an older store
// stays readable by the mce that made it. It returns w.
func (w *BlockWriter) SetFormat(format int) *BlockWriter {
	w.layout = layoutOf(format)
	return w
}

// Layout returns the layout the writer writes.
func (w *BlockWriter) Layout() int { return w.layout }

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
//	value   = tag:1 | uvarint(rows) | uvarint(rawLen) | payload
//	tag     = codec (Layout1) | 0x10 + codec (Layout2) | 0x20 + codec (Layout3)
//	        | 0x30 + codec (Layout4) | 0x40 + codec (Layout5)
//	payload = compress(raw)
//	raw1    = uvarint(ncols) | uvarint(rows) | lines | column*ncols
//	raw2    = uvarint(ncols) | uvarint(rows) | uvarint(fieldBytes)
//	        | uvarint(len(lines)) | uvarint(len(column))*ncols
//	        | lines | column*ncols
//	lines   = rows × varint(line - previous line), the first from 0
//	column  = 0x00 | rows × uvarint(len) | bytes   (values differ)
//	        | 0x01 | uvarint(len) | bytes          (every row the same)
//	        | 0x02 | case:1 | rows × 16 bytes      (UUIDs; Layout3)
//	        | 0x03 | sep:1 | rows × varint(secs - previous secs, the
//	          first from 0)                      (times; Layout3)
//	        | 0x04 | scale:1 | width:1 | rows × width bytes (amounts;
//	          Layout4: the units zigzagged, little-endian)
//	        | 0x05 | sep:1 | uvarint(base) | width:1 | rows × width bytes
//	          (times; Layout5: secs - base, little-endian, base the
//	          block's earliest secs less minPackedSecs)
const (
	colVarying  byte = 0
	colConstant byte = 1
	colUUID     byte = 2
	colTime     byte = 3
	colAmount   byte = 4
	colTimeBase byte = 5
	// tagLayouts are the bits of a value's tag byte that mark its layout:
	// 0x10 × (layout − 1) (layoutTag).
	tagLayouts byte = 0xf0
)

// layoutTag returns the tag bits of layout: none for Layout1, 0x10 for
// Layout2, up to 0x40 for Layout5.
func layoutTag(layout int) byte { return byte(layout-1) << 4 }

// AppendRaw appends the uncompressed block encoding to dst.
func (w *BlockWriter) AppendRaw(dst []byte) []byte {
	if w.layout == Layout1 {
		return w.appendRaw1(dst)
	}
	rows := len(w.lines)
	w.secs = w.appendLines(w.secs[:0])
	w.secLen = append(w.secLen[:0], len(w.secs))
	fieldBytes := 0
	for j := 0; j < w.ncols; j++ {
		n := len(w.secs)
		w.secs = w.appendColumn(w.secs, j)
		w.secLen = append(w.secLen, len(w.secs)-n)
		fieldBytes += len(w.data[j])
	}
	dst = binary.AppendUvarint(dst, uint64(w.ncols))
	dst = binary.AppendUvarint(dst, uint64(rows))
	dst = binary.AppendUvarint(dst, uint64(fieldBytes))
	for _, n := range w.secLen {
		dst = binary.AppendUvarint(dst, uint64(n))
	}
	return append(dst, w.secs...)
}

// appendRaw1 appends the block in Layout1.
func (w *BlockWriter) appendRaw1(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(w.ncols))
	dst = binary.AppendUvarint(dst, uint64(len(w.lines)))
	dst = w.appendLines(dst)
	for j := 0; j < w.ncols; j++ {
		dst = w.appendColumn(dst, j)
	}
	return dst
}

func (w *BlockWriter) appendLines(dst []byte) []byte {
	prev := int64(0)
	for _, l := range w.lines {
		dst = binary.AppendVarint(dst, l-prev)
		prev = l
	}
	return dst
}

func (w *BlockWriter) appendColumn(dst []byte, j int) []byte {
	lens, data := w.lens[j], w.data[j]
	if len(lens) > 1 && constantColumn(lens, data) {
		dst = append(dst, colConstant)
		dst = binary.AppendUvarint(dst, uint64(lens[0]))
		return append(dst, data[:lens[0]]...)
	}
	if w.layout >= Layout3 && len(lens) > 0 {
		var ok bool
		if lens[0] == uuidLen {
			if dst, ok = appendUUIDs(dst, lens, data); ok {
				return dst
			}
		} else if lens[0] == timeLen {
			if dst, ok = appendTimes(dst, lens, data, w.layout >= Layout5); ok {
				return dst
			}
		}
		if w.layout >= Layout4 {
			if dst, ok = appendAmounts(dst, lens, data); ok {
				return dst
			}
		}
	}
	dst = append(dst, colVarying)
	for _, n := range lens {
		dst = binary.AppendUvarint(dst, uint64(n))
	}
	return append(dst, data...)
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
	dst = append(dst, byte(codec)|layoutTag(w.layout))
	dst = binary.AppendUvarint(dst, uint64(len(w.lines)))
	dst = binary.AppendUvarint(dst, uint64(len(w.buf)))
	return c.Compress(codec, dst, w.buf)
}

// ValueHeader is the uncompressed head of a block value: enough to count
// rows without decompressing.
type ValueHeader struct {
	Codec   Codec
	Layout  int
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
	h.Codec, h.Layout = Codec(v[0]&^tagLayouts), int(v[0]>>4)+1
	if h.Layout > Layout5 {
		return h, fmt.Errorf("%w: block tag %#x", ErrCorrupt, v[0])
	}
	if h.Codec > CodecZstd {
		return h, fmt.Errorf("%w: block tag %#x", ErrCorrupt, v[0])
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
//
// A Block told which columns to decode (SetColumns) decodes only those:
// the others' fields are nil. A Layout2 block skips them unread; a
// Layout1 block must still parse their lengths to find the next column.
type Block struct {
	raw         []byte
	ncols       int
	rows        int
	fieldBytes  int64
	lines       []int64
	want        []bool // by column; nil: every column
	secondsOnly bool   // SetSecondsOnly
	noLines     bool   // SetNoLines
	// Per column: where its rows' offsets start in starts/ends, colConst
	// for a constant column, whose one value is at [cs, ce), or colAbsent
	// for a column not decoded.
	colAt  []int
	cs, ce []uint32
	starts []uint32 // rows × varying columns
	ends   []uint32
	secs   []uint32 // Layout2: the directory's section lengths
	// Layout3: the text of the packed columns decoded, appended to raw
	// once every column is decoded (their offsets then moved by rawLen).
	layout int
	text   []byte
	packed []int // the packed columns decoded, by column
	rawLen int   // raw's length before the text
	dates  dateCache
	// The packed time columns decoded, and their rows' Unix seconds
	// (rows × len(times), column after column): the values their text
	// was written from.
	times    []int
	timeSecs []int64
	// Layout4: the packed amount columns decoded, their fraction digits,
	// and their rows' units (rows × len(amounts), column after column).
	amounts      []int
	amountScales []byte
	amountUnits  []int64
	amountsOnly  []bool // SetAmountsOnly, by column; nil: none
}

const (
	colConst  = -1
	colAbsent = -2
)

// SetColumns makes the next decodes decode only columns cols (nil: every
// column). cols is not kept.
func (b *Block) SetColumns(cols []int) {
	if cols == nil {
		b.want = nil
		return
	}
	b.want = columnSet(nil, cols)
}

// columnSet returns dst (its capacity reused) holding, by column, whether
// it is among cols; negative columns are left out. It is never nil.
func columnSet(dst []bool, cols []int) []bool {
	n := 0
	for _, c := range cols {
		n = max(n, c+1)
	}
	if dst == nil || cap(dst) < n {
		dst = make([]bool, n)
	} else {
		dst = dst[:n]
		clear(dst)
	}
	for _, c := range cols {
		if c >= 0 {
			dst[c] = true
		}
	}
	return dst
}

// SetSecondsOnly makes the next decodes decode every time column a
// block holds packed to its seconds only (Seconds), not to its text: its
// fields are then nil, as a column's that is not decoded, and
// TimeColumns still lists it. A time column the block holds as text (a
// time that did not pack) decodes as any column. It is for a reader that
// takes the times from Seconds, never from the text (writing the text is
// a tenth of a block's decode).
func (b *Block) SetSecondsOnly(on bool) { b.secondsOnly = on }

// SetAmountsOnly makes the next decodes decode columns cols, when a
// block holds them as packed amounts, to their units only (Amount), not
// to their text: their fields are then nil, as a column's that is not
// decoded, and AmountColumns still lists them. Such a column the block
// holds as text decodes as any column. It is for a reader that takes
// those columns' amounts from Amount, never from the text. cols is not
// kept.
func (b *Block) SetAmountsOnly(cols []int) { b.amountsOnly = columnSet(b.amountsOnly, cols) }

// SetNoLines makes the next decodes of a Layout2 or Layout3 block leave
// the rows' source lines out, as a column not decoded: Line then returns
// 0. It is for a reader that never asks for them (mce reduce without a
// Map, whose lines only name a row that Map failed on). A Layout1 block
// decodes them anyway.
func (b *Block) SetNoLines(no bool) { b.noLines = no }

// wants reports whether column j is decoded.
func (b *Block) wants(j int) bool { return b.want == nil || (j < len(b.want) && b.want[j]) }

// Len returns the number of rows.
func (b *Block) Len() int { return b.rows }

// Columns returns the number of fields per row.
func (b *Block) Columns() int { return b.ncols }

// TimeColumns returns the block's columns decoded from packed times
// ("YYYY-MM-DD hh:mm:ss", or with T), whose seconds Seconds gives. It
// aliases the block: valid until the next decode.
func (b *Block) TimeColumns() []int { return b.times }

// Seconds returns the Unix seconds of row i's time in the k-th column of
// TimeColumns: what its text reads as, in UTC.
func (b *Block) Seconds(i, k int) int64 { return b.timeSecs[k*b.rows+i] }

// AmountColumns returns the block's columns decoded from packed amounts,
// whose values Amount gives. It aliases the block: valid until the next
// decode.
func (b *Block) AmountColumns() []int { return b.amounts }

// Amount returns row i's amount in the k-th column of AmountColumns, as
// its units and fraction digits: the text "-12.50" is -1250 and 2.
func (b *Block) Amount(i, k int) (units int64, scale int) {
	return b.amountUnits[k*b.rows+i], int(b.amountScales[k])
}

// Line returns row i's source line, or 0 when the block was decoded
// without its lines (SetNoLines).
func (b *Block) Line(i int) int64 {
	if b.noLines && len(b.lines) == 0 {
		return 0
	}
	return b.lines[i]
}

// FieldBytes returns the bytes of every field of every row of the block,
// the columns not decoded included.
func (b *Block) FieldBytes() int64 { return b.fieldBytes }

// Field returns field j of row i: nil when column j is not decoded. It
// aliases the block: valid until the block is decoded into again.
func (b *Block) Field(i, j int) []byte {
	switch at := b.colAt[j]; at {
	case colConst:
		return b.raw[b.cs[j]:b.ce[j]:b.ce[j]]
	case colAbsent:
		return nil
	default:
		k := at + i
		return b.raw[b.starts[k]:b.ends[k]:b.ends[k]]
	}
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
func (b *Block) RawBytes() int { return b.rawLen }

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
	if err := b.decodeRaw(h.Layout); err != nil {
		return err
	}
	if b.rows != h.Rows {
		return fmt.Errorf("%w: block has %d rows, header says %d", ErrCorrupt, b.rows, h.Rows)
	}
	return nil
}

// DecodeRaw decodes an uncompressed block of a layout (what AppendRaw
// wrote) into b. b keeps a copy of raw.
func (b *Block) DecodeRaw(raw []byte, layout int) error {
	b.raw = append(b.raw[:0], raw...)
	return b.decodeRaw(layout)
}

func blockErr(what string) error { return fmt.Errorf("%w: block: bad %s", ErrCorrupt, what) }

// decodeRaw decodes b.raw, of a layout.
func (b *Block) decodeRaw(layout int) error {
	b.layout, b.rawLen = layout, len(b.raw)
	b.text, b.packed, b.times, b.timeSecs = b.text[:0], b.packed[:0], b.times[:0], b.timeSecs[:0]
	b.amounts, b.amountScales, b.amountUnits = b.amounts[:0], b.amountScales[:0], b.amountUnits[:0]
	p := b.raw
	ncols, n := binary.Uvarint(p)
	if n <= 0 || ncols == 0 || ncols > math.MaxUint16 {
		return blockErr("column count")
	}
	p = p[n:]
	rows, n := binary.Uvarint(p)
	// Every row takes at least one byte (its line delta), so rows can't
	// exceed the block's size.
	if n <= 0 || rows > uint64(len(b.raw)) || rows > maxBlockRows {
		return blockErr("row count")
	}
	p = p[n:]
	b.ncols, b.rows = int(ncols), int(rows)
	// Every column takes at least one byte and every varying cell one
	// more, so the allocations below are bounded by the block's size.
	if b.ncols > len(p) {
		return blockErr("column count")
	}
	b.colAt = resize(b.colAt, b.ncols)
	b.cs = resize(b.cs, b.ncols)
	b.ce = resize(b.ce, b.ncols)
	b.starts, b.ends = b.starts[:0], b.ends[:0]
	if layout == Layout1 {
		return b.decodeLayout1(p)
	}
	if err := b.decodeLayout2(p); err != nil {
		return err
	}
	return b.placeText()
}

// decodeLines decodes the rows' lines from the front of p and returns the
// rest.
func (b *Block) decodeLines(p []byte) ([]byte, error) {
	if cap(b.lines) < b.rows {
		b.lines = make([]int64, b.rows)
	}
	b.lines = b.lines[:b.rows]
	prev := int64(0)
	for i := range b.lines {
		d, n := binary.Varint(p)
		if n <= 0 {
			return nil, blockErr("line")
		}
		p = p[n:]
		prev += d
		b.lines[i] = prev
	}
	return p, nil
}

// decodeLayout1 decodes the lines and columns of a Layout1 block; p
// follows the row count. A column not wanted is parsed only as far as
// needed to find the next one, and to count its bytes.
func (b *Block) decodeLayout1(p []byte) error {
	p, err := b.decodeLines(p)
	if err != nil {
		return err
	}
	b.fieldBytes = 0
	for j := 0; j < b.ncols; j++ {
		if p, err = b.decodeColumn(j, p, b.wants(j)); err != nil {
			return err
		}
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: block: %d trailing bytes", ErrCorrupt, len(p))
	}
	return nil
}

// decodeLayout2 decodes a Layout2 block; p follows the row count. The
// directory says where each column is: columns not wanted are not read.
func (b *Block) decodeLayout2(p []byte) error {
	// NB: a constant column's value counts once per row, so the field
	// bytes may well exceed the block's size.
	fb, n := binary.Uvarint(p)
	if n <= 0 || fb > math.MaxInt64 {
		return blockErr("field bytes")
	}
	p = p[n:]
	b.fieldBytes = int64(fb)
	// The directory: lines, then each column. Every section takes at
	// least one byte (below), so the loop is bounded by the block's size.
	nsec := b.ncols + 1
	b.secs = resize(b.secs, nsec)
	secs := b.secs
	total := uint64(0)
	for k := 0; k < nsec; k++ {
		l, n := binary.Uvarint(p)
		if n <= 0 || l > uint64(len(b.raw)) {
			return blockErr("column directory")
		}
		p = p[n:]
		secs[k] = uint32(l)
		total += l
	}
	if total != uint64(len(p)) {
		return fmt.Errorf("%w: block: directory says %d bytes, %d follow", ErrCorrupt, total, len(p))
	}
	if b.noLines {
		b.lines = b.lines[:0]
	} else {
		rest, err := b.decodeLines(p[:secs[0]])
		if err != nil {
			return err
		}
		if len(rest) != 0 {
			return blockErr("lines section")
		}
	}
	p = p[secs[0]:]
	for j := 0; j < b.ncols; j++ {
		sec := p[:secs[j+1]]
		p = p[secs[j+1]:]
		if !b.wants(j) {
			b.colAt[j] = colAbsent
			continue
		}
		rest, err := b.decodeColumn(j, sec, true)
		if err != nil {
			return err
		}
		if len(rest) != 0 {
			return blockErr("column section")
		}
	}
	b.fieldBytes = int64(fb) // decodeColumn counted the decoded ones again
	return nil
}

// decodeColumn decodes column j from the front of p (a constant or a
// varying column) and returns the rest. A column not wanted is skipped:
// only its lengths are read (Layout1 must, to find the next column), and
// counted into fieldBytes.
func (b *Block) decodeColumn(j int, p []byte, want bool) ([]byte, error) {
	if len(p) == 0 {
		return nil, blockErr("column header")
	}
	mode := p[0]
	p = p[1:]
	// NB: p is a slice of b.raw, ending at a column's end (Layout2) or at
	// the block's: its offset in b.raw is told by its capacity.
	off := func() uint32 { return uint32(cap(b.raw) - cap(p)) }
	switch mode {
	case colConstant:
		l, n := binary.Uvarint(p)
		if n <= 0 || l > uint64(len(p)-n) {
			return nil, blockErr("constant column")
		}
		p = p[n:]
		b.colAt[j] = colConst
		if !want {
			b.colAt[j] = colAbsent
		}
		b.cs[j] = off()
		b.ce[j] = b.cs[j] + uint32(l)
		b.fieldBytes += int64(l) * int64(b.rows)
		return p[l:], nil
	case colUUID, colTime, colTimeBase:
		// Only Layout3 and later pack (times as offsets from Layout5),
		// and their directory skips the columns not wanted: a packed
		// column here is always wanted.
		if b.layout < Layout3 || (mode == colTimeBase && b.layout < Layout5) || !want {
			return nil, blockErr("column mode")
		}
		return b.decodePacked(j, mode, p)
	case colAmount:
		if b.layout < Layout4 || !want {
			return nil, blockErr("column mode")
		}
		return b.decodeAmountColumn(j, p)
	case colVarying:
		if b.rows > len(p) {
			return nil, blockErr("column lengths")
		}
		at := len(b.starts)
		// Lengths first; then turn them into offsets.
		total := uint64(0)
		for i := 0; i < b.rows; i++ {
			l, n := binary.Uvarint(p)
			if n <= 0 || l > uint64(len(b.raw)) {
				return nil, blockErr("field length")
			}
			p = p[n:]
			if want {
				b.ends = append(b.ends, uint32(l))
			}
			total += l
		}
		if total > uint64(len(p)) {
			return nil, blockErr("column data")
		}
		b.fieldBytes += int64(total)
		if !want {
			b.colAt[j] = colAbsent
			return p[total:], nil
		}
		b.colAt[j] = at
		s := off()
		for i := 0; i < b.rows; i++ {
			l := b.ends[at+i]
			b.starts = append(b.starts, s)
			b.ends[at+i] = s + l
			s += l
		}
		return p[total:], nil
	}
	return nil, blockErr("column mode")
}

// resize returns s with length n, reusing its capacity.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// Units returns the rows' amounts in the k-th column of AmountColumns,
// in units of its fraction digits (Amount), and those digits. It aliases
// the block: valid until the next decode.
func (b *Block) Units(k int) ([]int64, int) {
	return b.amountUnits[k*b.rows : (k+1)*b.rows], int(b.amountScales[k])
}

// SecondsColumn returns the rows' Unix seconds in the k-th column of
// TimeColumns (Seconds). It aliases the block.
func (b *Block) SecondsColumn(k int) []int64 { return b.timeSecs[k*b.rows : (k+1)*b.rows] }

// Text returns column j's fields as row i's field is
// raw[starts[i]:ends[i]], or, for a column with the same field in every
// row, that field (starts and ends nil); ok is false when column j is not
// decoded. They alias the block.
func (b *Block) Text(j int) (raw []byte, starts, ends []uint32, same []byte, ok bool) {
	switch at := b.colAt[j]; at {
	case colConst:
		return nil, nil, nil, b.raw[b.cs[j]:b.ce[j]:b.ce[j]], true
	case colAbsent:
		return nil, nil, nil, nil, false
	default:
		return b.raw, b.starts[at : at+b.rows], b.ends[at : at+b.rows], nil, true
	}
}
