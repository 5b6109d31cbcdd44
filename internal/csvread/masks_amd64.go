package csvread

import "golang.org/x/sys/cpu"

// useAVX2 picks masksAVX2; tests turn it off to compare the two.
var useAVX2 = cpu.X86.HasAVX2

// blockMasksOf classifies len(out) blocks of 64 bytes of data.
func blockMasksOf(data []byte, delim byte, out []blockMasks) {
	if useAVX2 {
		masksAVX2(&data[0], len(out), delim, &out[0])
		return
	}
	masksGeneric(data, delim, out)
}

// masksAVX2 is masksGeneric 32 bytes at a time: data holds n blocks of
// 64 bytes, out n masks.
//
//go:noescape
func masksAVX2(data *byte, n int, delim byte, out *blockMasks)
