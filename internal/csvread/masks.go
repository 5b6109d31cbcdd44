package csvread

import "encoding/binary"

// The structural bytes of a block of 64 (see fillMasks): bit i of each
// mask is byte i of the block.
type blockMasks struct {
	seps   uint64 // the delimiter or '\n'
	lines  uint64 // '\n'
	quotes uint64 // '"'
}

// maskBlocks is how many blocks of 64 bytes a parser classifies at once
// (4 KiB: some 30 lines of an invoice file).
const maskBlocks = 64

// fillMasks classifies data (at most maskBlocks*64 bytes) 64 bytes at a
// time into out and returns the number of blocks it filled; a last block
// shorter than 64 bytes is read through pad, zero beyond data (delim is
// never 0 here, so no bit is set there).
func fillMasks(data []byte, delim byte, out *[maskBlocks]blockMasks, pad *[64]byte) int {
	nb := len(data) / 64
	if nb > 0 {
		blockMasksOf(data[:nb*64], delim, out[:nb])
	}
	if r := len(data) - nb*64; r > 0 {
		*pad = [64]byte{}
		copy(pad[:], data[nb*64:])
		blockMasksOf(pad[:], delim, out[nb:nb+1])
		nb++
	}
	return nb
}

// masksGeneric is blockMasksOf 8 bytes at a time, for CPUs without AVX2.
func masksGeneric(data []byte, delim byte, out []blockMasks) {
	rep := uint64(delim) * oneBytes
	for k := range out {
		var m blockMasks
		blk := data[k*64 : k*64+64]
		for w := 0; w < 8; w++ {
			x := binary.LittleEndian.Uint64(blk[w*8:])
			d := byteBits(zeroBytes(x ^ rep))
			n := byteBits(zeroBytes(x ^ ('\n' * oneBytes)))
			q := byteBits(zeroBytes(x ^ ('"' * oneBytes)))
			m.seps |= (d | n) << (w * 8)
			m.lines |= n << (w * 8)
			m.quotes |= q << (w * 8)
		}
		out[k] = m
	}
}

// zeroBytes sets the high bit of exactly the bytes of x that are 0 (the
// sum cannot carry from one byte into the next).
func zeroBytes(x uint64) uint64 { return ^((x&lo7Bytes + lo7Bytes) | x | lo7Bytes) }

// byteBits gathers the high bits of x's bytes into its low 8 bits, byte
// i's into bit i: each shifted bit lands on a position of its own, so the
// product has no carries.
func byteBits(x uint64) uint64 { return (x >> 7) * 0x0102040810204080 >> 56 }
