// Package ascii tells ASCII text from other text fast: mce's readers and
// the built-in features ask it of most fields (a receiver's name, a
// cp1252 file's fields) before they decode or check any UTF-8.
package ascii

import "encoding/binary"

// Valid reports whether every byte of b is below 0x80. It reads eight
// bytes at a time: a receiver's name (12 or 13 bytes) takes one word and
// a few bytes instead of a byte and a branch each.
func Valid(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
