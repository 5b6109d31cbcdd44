// Package varint holds what encoding/binary lacks for the row encodings of
// engine/inram and partition: the length of a uvarint without writing it.
package varint

// Len returns how many bytes binary.PutUvarint writes for x.
func Len(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
