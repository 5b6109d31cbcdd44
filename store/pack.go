package store

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"

	"github.com/mce-engine/mce/internal/civil"
)

// Packed columns (Layout3). Two kinds of field fill most of an invoice
// file's bytes and compress poorly as text: UUIDs (36 hex characters and
// dashes for 16 bytes) and times (19 characters, of which the seconds
// from the previous row need one or two bytes). A column of a block whose
// every field is one of them, in the one spelling the reader writes
// back, is kept packed; any other column, or a block with one field
// spelled otherwise, keeps its text. Packing is exact: the reader's text
// is the writer's, byte for byte (FuzzPack).
//
// On the benchmark's data the packed values take 64% of the raw CSV
// instead of 91%, and pebble's fastest codec (MinLZ) then compresses them
// below zstd's size of the text.

const (
	uuidLen = 36 // 8-4-4-4-12 hex digits
	timeLen = 19 // YYYY-MM-DD hh:mm:ss, the separator ' ' or 'T'
)

// packedLen returns the text length of a field of a packed column mode.
func packedLen(mode byte) int {
	if mode == colUUID {
		return uuidLen
	}
	return timeLen
}

const (
	lowerHex = "0123456789abcdef"
	upperHex = "0123456789ABCDEF"
)

// uuidDigit gives a hex digit's value and case: 0-15, with bit 4 for a
// lowercase letter and bit 5 for an uppercase one; 0xff for no digit.
var uuidDigit = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := range 16 {
		t[lowerHex[i]] = byte(i)
		t[upperHex[i]] = byte(i)
		if i >= 10 {
			t[lowerHex[i]] |= 0x10
			t[upperHex[i]] |= 0x20
		}
	}
	return t
}()

// uuidPairs are where a UUID's 16 bytes are written, two hex digits each.
var uuidPairs = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// appendUUIDs appends the column of fields (each uuidLen bytes long, by
// lens) packed, and reports whether it could: every field a UUID, its
// letters of one case in the whole column.
func appendUUIDs(dst []byte, lens []uint32, data []byte) ([]byte, bool) {
	for _, n := range lens {
		if n != uuidLen {
			return dst, false
		}
	}
	start := len(dst)
	dst = append(dst, colUUID, 0)
	cases := byte(0)
	for off := 0; off < len(data); off += uuidLen {
		f := (*[uuidLen]byte)(data[off : off+uuidLen])
		if f[8] != '-' || f[13] != '-' || f[18] != '-' || f[23] != '-' {
			return dst[:start], false
		}
		var b [16]byte
		for k, i := range uuidPairs {
			hi, lo := uuidDigit[f[i]], uuidDigit[f[i+1]]
			cases |= hi | lo // 0xff (no digit) sets every bit
			b[k] = hi<<4 | lo&0xf
		}
		if cases&0x80 != 0 {
			return dst[:start], false
		}
		dst = append(dst, b[:]...)
	}
	switch cases & 0x30 {
	case 0x30:
		return dst[:start], false // both cases
	case 0x20:
		dst[start+1] = 1
	}
	return dst, true
}

// appendTimes appends the column of fields (each timeLen bytes long, by
// lens) packed, and reports whether it could: every field a valid time
// of years 0000 to 9999, with one separator in the whole column. base
// picks the form: each time's seconds after the column's earliest, in
// one width (Layout5), else the seconds from the field before as a
// varint each (Layout3 and Layout4).
func appendTimes(dst []byte, lens []uint32, data []byte, base bool) ([]byte, bool) {
	for _, n := range lens {
		if n != timeLen {
			return dst, false
		}
	}
	if len(data) == 0 {
		return dst, false
	}
	start := len(dst)
	sep := data[10]
	if sep != ' ' && sep != 'T' {
		return dst, false
	}
	if base {
		return appendTimesBase(dst, len(lens), data, sep)
	}
	dst = append(dst, colTime, sep)
	prev := int64(0)
	for off := 0; off < len(data); off += timeLen {
		secs, ok := parseTime(data[off:off+timeLen], sep)
		if !ok {
			return dst[:start], false
		}
		dst = binary.AppendVarint(dst, secs-prev)
		prev = secs
	}
	return dst, true
}

// appendTimesBase appends a column of rows times (data, timeLen bytes
// each, sep between date and time) in Layout5's form: the earliest's
// seconds from minPackedSecs as a uvarint, the width, then each time's
// seconds after the earliest in width bytes, little-endian. Like
// appendAmounts it writes 8 bytes a row, then keeps width of each.
func appendTimesBase(dst []byte, rows int, data []byte, sep byte) ([]byte, bool) {
	start := len(dst)
	dst = slices.Grow(dst, 2*binary.MaxVarintLen64+rows*8)
	at := start + 2 + binary.MaxVarintLen64 + 1 // where the 8-byte words go
	words := dst[at : at+rows*8]
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range rows {
		secs, ok := parseTime(data[i*timeLen:(i+1)*timeLen], sep)
		if !ok {
			return dst[:start], false
		}
		lo, hi = min(lo, secs), max(hi, secs)
		binary.LittleEndian.PutUint64(words[i*8:], uint64(secs))
	}
	for i := range rows {
		w := words[i*8:]
		binary.LittleEndian.PutUint64(w, uint64(int64(binary.LittleEndian.Uint64(w))-lo))
	}
	width := (bits.Len64(uint64(hi-lo)) + 7) / 8
	dst = append(dst, colTimeBase, sep)
	dst = binary.AppendUvarint(dst, uint64(lo-minPackedSecs))
	dst = append(dst, byte(width))
	// The words lie after the head, at or beyond its end.
	return keepWidth(dst[:at+rows*8], at, len(dst), rows, width), true
}

// keepWidth moves the low width bytes of each of rows little-endian
// 8-byte words at dst[from:] to dst[to:] (to <= from), one after the
// other, and returns dst cut after them: each word is read before the
// rows moved before it can reach it.
func keepWidth(dst []byte, from, to, rows, width int) []byte {
	for i := range rows {
		copy(dst[to+i*width:], dst[from+i*8:from+i*8+width])
	}
	return dst[:to+rows*width]
}

// fixedUint returns the width-byte little-endian number at p[off:] (mask
// holds width bytes of ones), with one 8-byte load where p has room.
func fixedUint(p []byte, off, width int, mask uint64) uint64 {
	if off+8 <= len(p) {
		return binary.LittleEndian.Uint64(p[off:]) & mask
	}
	var v uint64
	for k := width - 1; k >= 0; k-- {
		v = v<<8 | uint64(p[off+k])
	}
	return v
}

// parseTime reads "YYYY-MM-DD hh:mm:ss" (sep between date and time) as
// seconds from 1970-01-01 00:00:00; false unless the text is exactly how
// putTime writes that second.
func parseTime(f []byte, sep byte) (int64, bool) {
	if f[4] != '-' || f[7] != '-' || f[10] != sep || f[13] != ':' || f[16] != ':' {
		return 0, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range f[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 2)
	d, ok3 := num(8, 2)
	h, ok4 := num(11, 2)
	mi, ok5 := num(14, 2)
	s, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		mo < 1 || mo > 12 || d < 1 || d > civil.DaysIn(y, mo) || h > 23 || mi > 59 || s > 59 {
		return 0, false
	}
	return civil.Days(y, mo, d)*86400 + int64(h*3600+mi*60+s), true
}

// The seconds of 0000-01-01 and of 10000-01-01: the years packed.
var (
	minPackedSecs = civil.Days(0, 1, 1) * 86400
	endPackedSecs = civil.Days(10000, 1, 1) * 86400
)

// putTime writes secs (in the years 0000 to 9999) into o as
// "YYYY-MM-DD hh:mm:ss", with sep between date and time, its date from
// dates.
func putTime(o *[timeLen]byte, secs int64, sep byte, dates *dateCache) {
	days := secs / 86400
	rem := int(secs - days*86400)
	if rem < 0 {
		days--
		rem += 86400
	}
	copy(o[:10], dates.text(days))
	h, m, s := rem/3600, rem/60%60, rem%60
	o[10] = sep
	o[11], o[12] = digits2[2*h], digits2[2*h+1]
	o[13] = ':'
	o[14], o[15] = digits2[2*m], digits2[2*m+1]
	o[16] = ':'
	o[17], o[18] = digits2[2*s], digits2[2*s+1]
}

// digits2 holds "00" to "99".
var digits2 = func() (t [200]byte) {
	for i := range 100 {
		t[2*i], t[2*i+1] = byte('0'+i/10), byte('0'+i%10)
	}
	return t
}()

// appendDate appends the day as "YYYY-MM-DD".
func appendDate(dst []byte, days int64) []byte {
	y, mo, d := civil.Date(days)
	return append(dst, digits2[2*(y/100)], digits2[2*(y/100)+1], digits2[2*(y%100)], digits2[2*(y%100)+1], '-',
		digits2[2*mo], digits2[2*mo+1], '-', digits2[2*d], digits2[2*d+1])
}

// dateCache keeps the text of the dates of 512 days, one per day modulo
// 512: the blocks of a user's months, read one after the other, find
// their dates after each day's first.
type dateCache struct {
	day  [512]int64
	has  [512]bool
	date [512][10]byte
}

func (c *dateCache) text(days int64) []byte {
	k := days & 511
	if !c.has[k] || c.day[k] != days {
		appendDate(c.date[k][:0], days)
		c.day[k], c.has[k] = days, true
	}
	return c.date[k][:]
}

// decodePacked decodes packed column j from p, its section (Layout3),
// writing the fields' text into b.text; placeText moves them into raw.
func (b *Block) decodePacked(j int, mode byte, p []byte) ([]byte, error) {
	if len(p) < 1 {
		return nil, blockErr("packed column")
	}
	flag := p[0]
	p = p[1:]
	size := packedLen(mode)
	if int64(len(b.text))+int64(b.rows)*int64(size) > math.MaxUint32 {
		return nil, blockErr("packed column size")
	}
	b.fieldBytes += int64(b.rows) * int64(size)
	if mode != colUUID && b.secondsOnly {
		b.colAt[j] = colAbsent
		return b.decodeSeconds(j, mode, flag, p)
	}
	at := len(b.starts)
	b.colAt[j] = at
	b.packed = append(b.packed, j)
	switch mode {
	case colUUID:
		if flag > 1 || len(p) < 16*b.rows {
			return nil, blockErr("UUID column")
		}
		hex := lowerHex
		if flag == 1 {
			hex = upperHex
		}
		for i := 0; i < b.rows; i++ {
			s := uint32(len(b.text))
			u := p[16*i : 16*i+16]
			for k, c := range u {
				if k == 4 || k == 6 || k == 8 || k == 10 {
					b.text = append(b.text, '-')
				}
				b.text = append(b.text, hex[c>>4], hex[c&0xf])
			}
			b.starts = append(b.starts, s)
			b.ends = append(b.ends, uint32(len(b.text)))
		}
		return p[16*b.rows:], nil
	default: // colTime, colTimeBase
		// The seconds, then the text of every row at once, written in
		// place.
		at := len(b.timeSecs)
		p, err := b.decodeSeconds(j, mode, flag, p)
		if err != nil {
			return nil, err
		}
		base := len(b.text)
		var out []byte
		b.text, out = extend(b.text, b.rows*timeLen)
		for i, secs := range b.timeSecs[at:] {
			o := (*[timeLen]byte)(out[i*timeLen:])
			putTime(o, secs, flag, &b.dates)
			s := uint32(base + i*timeLen)
			b.starts = append(b.starts, s)
			b.ends = append(b.ends, s+timeLen)
		}
		return p, nil
	}
}

// decodeSeconds decodes the seconds of packed time column j from p (its
// section after the flag) into timeSecs and returns the rest of p.
func (b *Block) decodeSeconds(j int, mode, flag byte, p []byte) ([]byte, error) {
	if flag != ' ' && flag != 'T' {
		return nil, blockErr("time column")
	}
	b.times = append(b.times, j)
	var out []int64
	b.timeSecs, out = extend(b.timeSecs, b.rows)
	if mode == colTimeBase {
		return decodeOffsets(out, p)
	}
	return decodeDeltas(out, p)
}

// decodeDeltas reads Layout3's times (each a varint from the one
// before) from p into out and returns the rest of p.
func decodeDeltas(out []int64, p []byte) ([]byte, error) {
	if len(p) < len(out) {
		return nil, blockErr("time column")
	}
	secs := int64(0)
	for i := range out {
		var d int64
		if len(p) > 0 && p[0] < 0x80 { // most deltas: one byte
			d = int64(p[0]>>1) ^ -int64(p[0]&1)
			p = p[1:]
		} else {
			v, n := binary.Varint(p)
			if n <= 0 {
				return nil, blockErr("time column")
			}
			d, p = v, p[n:]
		}
		secs += d
		if secs < minPackedSecs || secs >= endPackedSecs {
			return nil, blockErr("time")
		}
		out[i] = secs
	}
	return p, nil
}

// maxTimeWidth is the most bytes of a Layout5 time's offset: the years
// 0000 to 9999 span under 2^39 seconds.
const maxTimeWidth = 5

// decodeOffsets reads Layout5's times (the earliest, the width, and each
// row's offset from the earliest) from p into out and returns the rest
// of p.
func decodeOffsets(out []int64, p []byte) ([]byte, error) {
	base, n := binary.Uvarint(p)
	if n <= 0 || base >= uint64(endPackedSecs-minPackedSecs) || len(p) < n+1 {
		return nil, blockErr("time column")
	}
	width := int(p[n])
	p = p[n+1:]
	if width > maxTimeWidth || len(p) < width*len(out) {
		return nil, blockErr("time column")
	}
	lo := minPackedSecs + int64(base)
	mask := uint64(1)<<(8*width) - 1
	for i := range out {
		secs := lo + int64(fixedUint(p, i*width, width, mask))
		if secs >= endPackedSecs {
			return nil, blockErr("time")
		}
		out[i] = secs
	}
	return p[width*len(out):], nil
}

// extend returns s grown by n elements, its capacity reused, and those
// n.
func extend[T any](s []T, n int) (all, added []T) {
	at := len(s)
	s = slices.Grow(s, n)[:at+n]
	return s, s[at:]
}

// placeText appends the packed columns' text to raw, where Field finds
// its fields.
func (b *Block) placeText() error {
	if len(b.text) == 0 {
		return nil
	}
	if int64(len(b.raw))+int64(len(b.text)) > math.MaxUint32 {
		return blockErr("packed columns' size")
	}
	base := uint32(len(b.raw))
	b.raw = append(b.raw, b.text...)
	for _, j := range b.packed {
		at := b.colAt[j]
		for k := at; k < at+b.rows; k++ {
			b.starts[k] += base
			b.ends[k] += base
		}
	}
	return nil
}

// Packed amounts (Layout4). A column whose every field is a decimal
// number in its one plain spelling, with the same number of fraction
// digits in the whole column ("1234.56", "-0.5", "7"), is kept as its
// numbers: the fields' value in units of the last digit, zigzagged, in
// the same number of bytes each, after the digits' count and that width. The plain spelling is the one the
// reader writes amounts in: an optional "-", then "0" or digits that do
// not start with 0, then, for 1 to maxAmountScale fraction digits, "."
// and exactly that many digits. "-0" and "-0.00" (a sign on zero), "+5",
// "05", ".5" and "5." are spelled otherwise, and keep a column as text.

// maxAmountScale is the most fraction digits a packed amount has.
const maxAmountScale = 9

// maxAmountDigits is the most digits a packed amount has in all, so that
// its units fit an int64 with room to spare.
const maxAmountDigits = 17

// parseAmount reads a field in the plain spelling and returns its units
// and fraction digits; false for any other spelling.
func parseAmount(f []byte) (units int64, scale int, ok bool) {
	neg := len(f) > 0 && f[0] == '-'
	if neg {
		f = f[1:]
	}
	if len(f) == 0 || f[0] < '0' || f[0] > '9' {
		return 0, 0, false
	}
	var v int64
	digits, pt := 0, -1
	for i, c := range f {
		if c == '.' && pt < 0 && i > 0 {
			pt = i
			continue
		}
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		if digits++; digits > maxAmountDigits {
			return 0, 0, false
		}
		v = v*10 + int64(c-'0')
	}
	intLen := len(f)
	if pt >= 0 {
		intLen = pt
		scale = len(f) - pt - 1
		if scale == 0 || scale > maxAmountScale {
			return 0, 0, false
		}
	}
	if intLen > 1 && f[0] == '0' {
		return 0, 0, false // a leading zero
	}
	if neg {
		if v == 0 {
			return 0, 0, false // a sign on zero
		}
		v = -v
	}
	return v, scale, true
}

// appendAmountText appends units with scale fraction digits in the
// plain spelling: what parseAmount reads back.
func appendAmountText(dst []byte, units int64, scale int) []byte {
	u := uint64(units)
	if units < 0 {
		dst = append(dst, '-')
		u = uint64(-units)
	}
	var b [24]byte
	i := len(b)
	k := 0
	for ; k+2 <= scale; k += 2 {
		i -= 2
		d := 2 * (u % 100)
		b[i], b[i+1] = digits2[d], digits2[d+1]
		u /= 100
	}
	if k < scale {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
	}
	if scale > 0 {
		i--
		b[i] = '.'
	}
	for u >= 10 {
		i -= 2
		d := 2 * (u % 100)
		b[i], b[i+1] = digits2[d], digits2[d+1]
		u /= 100
	}
	if u > 0 || i == len(b) || b[i] == '.' {
		i--
		b[i] = byte('0' + u)
	}
	return append(dst, b[i:]...)
}

// appendAmounts appends the column of fields (by lens) packed, and
// reports whether it could: every field an amount in the plain spelling,
// all with the same fraction digits. The units are zigzagged and written
// in as few bytes as the largest needs, the same for every row, so that
// a reader takes each with one load and no branch.
func appendAmounts(dst []byte, lens []uint32, data []byte) ([]byte, bool) {
	start := len(dst)
	dst = append(dst, colAmount, 0, 0)
	off, scale := 0, -1
	var all uint64 // the zigzagged units or'ed: their widest
	for _, n := range lens {
		v, s, ok := parseAmount(data[off : off+int(n)])
		off += int(n)
		if !ok || (scale >= 0 && s != scale) {
			return dst[:start], false
		}
		scale = s
		z := uint64(v<<1) ^ uint64(v>>63)
		all |= z
		dst = binary.LittleEndian.AppendUint64(dst, z)
	}
	if scale < 0 {
		return dst[:start], false
	}
	width := max(1, (bits.Len64(all)+7)/8)
	dst = keepWidth(dst, start+3, start+3, len(lens), width)
	dst[start+1], dst[start+2] = byte(scale), byte(width)
	return dst, true
}

// decodeAmounts decodes the units of packed amount column j from p (its
// section after the flag, the fraction digits) into amountUnits and
// returns the rest of p.
func (b *Block) decodeAmounts(j int, scale byte, p []byte) ([]byte, error) {
	if scale > maxAmountScale || len(p) < 1 {
		return nil, blockErr("amount column")
	}
	width := int(p[0])
	p = p[1:]
	if width < 1 || width > maxAmountWidth || len(p) < width*b.rows {
		return nil, blockErr("amount column")
	}
	b.amounts = append(b.amounts, j)
	b.amountScales = append(b.amountScales, scale)
	var out []int64
	b.amountUnits, out = extend(b.amountUnits, b.rows)
	mask := uint64(1)<<(8*width) - 1
	for i := range out {
		z := fixedUint(p, i*width, width, mask)
		v := int64(z>>1) ^ -int64(z&1)
		if v <= -maxAmountUnits || v >= maxAmountUnits {
			return nil, blockErr("amount")
		}
		out[i] = v
	}
	return p[width*b.rows:], nil
}

// maxAmountWidth is the most bytes of a packed amount: its units are
// below 10^17, under 2^57, zigzagged under 2^58.
const maxAmountWidth = 8

// decodeAmountColumn decodes packed amount column j from p, its section
// (Layout4): its units, and unless SetAmountsOnly their text into b.text
// (placeText moves it into raw).
func (b *Block) decodeAmountColumn(j int, p []byte) ([]byte, error) {
	if len(p) < 1 {
		return nil, blockErr("amount column")
	}
	scale := p[0]
	at := len(b.amountUnits)
	p, err := b.decodeAmounts(j, scale, p[1:])
	if err != nil {
		return nil, err
	}
	if j < len(b.amountsOnly) && b.amountsOnly[j] {
		b.colAt[j] = colAbsent
		return p, nil
	}
	if int64(len(b.text))+int64(b.rows)*(maxAmountDigits+2) > math.MaxUint32 {
		return nil, blockErr("amount column size")
	}
	b.colAt[j] = len(b.starts)
	b.packed = append(b.packed, j)
	b.text = slices.Grow(b.text, b.rows*(maxAmountDigits+2))
	for _, v := range b.amountUnits[at:] {
		s := uint32(len(b.text))
		b.text = appendAmountText(b.text, v, int(scale))
		b.starts = append(b.starts, s)
		b.ends = append(b.ends, uint32(len(b.text)))
	}
	return p, nil
}

// maxAmountUnits bounds a packed amount's units: maxAmountDigits digits.
const maxAmountUnits = 1e17
