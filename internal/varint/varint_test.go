package varint

import (
	"encoding/binary"
	"testing"
)

func TestLen(t *testing.T) {
	var buf [binary.MaxVarintLen64]byte
	for _, x := range []uint64{0, 1, 127, 128, 16383, 16384, 1<<32 - 1, 1<<63 + 5, ^uint64(0)} {
		if got, want := Len(x), binary.PutUvarint(buf[:], x); got != want {
			t.Errorf("Len(%d) = %d, want %d", x, got, want)
		}
	}
}
