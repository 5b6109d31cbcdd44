package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mce-engine/mce/engine/feature"
)

// A row crosses the pipeline as one []byte, so that Beam encodes it with
// its plain bytes coder and a row costs no object per field:
//
//	uvarint file      index of the input file in the job's list
//	uvarint line      1-based line where the row starts: a file's rows in order
//	byte    encoding  the file's feature.Encoding
//	uvarint len, key  the grouping key: the user field as UTF-8, or what Map returned
//	nf × uvarint len  the fields' lengths, in schema order
//	the fields        back to back
//
// The key travels with the row because an Aggregator is made from the
// user (feature.User.Key) and Beam's CombineFn sees values, not keys.

// rowHead is a decoded row's place and key.
type rowHead struct {
	file int
	line int64
	key  []byte // aliases the encoded row
}

// appendRow appends one encoded row. span holds the fields back to back
// and lens their lengths.
func appendRow(dst []byte, file int, line int64, enc feature.Encoding, key []byte, lens []uint32, span []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(file))
	dst = binary.AppendUvarint(dst, uint64(line))
	dst = append(dst, byte(enc))
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	for _, l := range lens {
		dst = binary.AppendUvarint(dst, uint64(l))
	}
	return append(dst, span...)
}

var errRow = errors.New("BUG: corrupt encoded row")

// decodeHead decodes a row's place, encoding and key, and returns the rest
// (the lengths and the fields).
func decodeHead(b []byte) (h rowHead, enc feature.Encoding, rest []byte, err error) {
	file, k := binary.Uvarint(b)
	if k <= 0 {
		return h, 0, nil, errRow
	}
	b = b[k:]
	line, k := binary.Uvarint(b)
	if k <= 0 || len(b) < k+1 {
		return h, 0, nil, errRow
	}
	enc = feature.Encoding(b[k])
	b = b[k+1:]
	kl, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < kl {
		return h, 0, nil, errRow
	}
	h.file, h.line, h.key = int(file), int64(line), b[k:k+int(kl):k+int(kl)]
	return h, enc, b[k+int(kl):], nil
}

// decodeRow decodes an encoded row into row (whose Fields must have
// room for the schema's columns); the fields alias b.
func decodeRow(b []byte, row *feature.Row) (rowHead, error) {
	h, enc, b, err := decodeHead(b)
	if err != nil {
		return h, err
	}
	row.Encoding = enc
	// The lengths, then the fields: skip the lengths to find the first
	// field, then read them again while slicing.
	fields := row.Fields
	pos := 0
	for range fields {
		_, k := binary.Uvarint(b[pos:])
		if k <= 0 {
			return h, errRow
		}
		pos += k
	}
	lens, b := b[:pos], b[pos:]
	for c := range fields {
		l, k := binary.Uvarint(lens)
		lens = lens[k:]
		if l > uint64(len(b)) {
			return h, errRow
		}
		fields[c] = b[:l:l]
		b = b[l:]
	}
	if len(b) != 0 {
		return h, fmt.Errorf("%w: %d bytes left over", errRow, len(b))
	}
	return h, nil
}

// rekey returns the encoded row b with key in place of its key. fields
// are b's decoded fields.
func rekey(dst []byte, h rowHead, enc feature.Encoding, key []byte, fields [][]byte) []byte {
	dst = binary.AppendUvarint(dst[:0], uint64(h.file))
	dst = binary.AppendUvarint(dst, uint64(h.line))
	dst = append(dst, byte(enc))
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	for _, f := range fields {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
	}
	for _, f := range fields {
		dst = append(dst, f...)
	}
	return dst
}

// A group key is the shuffle key of a row:
//
//	uvarint file+1   0 when the job groups a user across all files
//	uvarint salt     the hot-key sub-key, 0 for most users
//	the key          the user (or Map's key)
func appendGroupKey(dst []byte, file int, salt int, key []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(file+1))
	dst = binary.AppendUvarint(dst, uint64(salt))
	return append(dst, key...)
}

// parseGroupKey splits a group key; file is -1 across files.
func parseGroupKey(b []byte) (file, salt int, key []byte, err error) {
	f, k := binary.Uvarint(b)
	if k <= 0 {
		return 0, 0, nil, errors.New("BUG: corrupt group key")
	}
	s, k2 := binary.Uvarint(b[k:])
	if k2 <= 0 {
		return 0, 0, nil, errors.New("BUG: corrupt group key")
	}
	return int(f) - 1, int(s), b[k+k2:], nil
}

// A keyed line is one user's features line with its key, so that the
// writer sorts by key as `mce run` does (a quoted key would sort by its
// quote):
//
//	uvarint len, key
//	the line, with its '\n'
func appendKeyedLine(dst, key, line []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	return append(dst, line...)
}

func parseKeyedLine(b []byte) (key, line []byte, err error) {
	l, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < l {
		return nil, nil, errors.New("BUG: corrupt features line")
	}
	return b[k : k+int(l)], b[k+int(l):], nil
}
