//go:build !amd64

package csvread

// useAVX2 is false where there is no AVX2 code.
var useAVX2 = false

// blockMasksOf classifies len(out) blocks of 64 bytes of data.
func blockMasksOf(data []byte, delim byte, out []blockMasks) {
	masksGeneric(data, delim, out)
}
