// Package userhash is the one stable hash of a user key that every part of
// mce uses: the worker that owns a user in `mce run` and the shard of a
// user in the store both derive from it.
//
// The hash is xxHash64 (seed 0) of the key's UTF-8 bytes. Unlike Python's
// hash() of a string, which the original engine used and which changes per
// process, it is the same in every process, run and machine; the golden
// values in userhash_test.go pin it.
//
// Table is a second, faster hash of the same keys for the hash tables of
// one process (`mce run`'s one pass and grouping index): it never reaches
// a file and may change between versions.
package userhash

import (
	"encoding/binary"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// Sum returns the stable 64-bit hash of a user key.
func Sum(key []byte) uint64 { return xxhash.Sum64(key) }

// Partition returns which of n partitions owns the key: Sum(key) mod n.
func Partition(key []byte, n int) int {
	if n <= 1 {
		return 0
	}
	return int(Sum(key) % uint64(n))
}

// Table hashes a user key for an in-memory table: keys of up to 16 bytes
// (RFCs have 12 or 13) are read as two words that cover every byte,
// overlapping, and mixed with one 128-bit multiply, as wyhash does for
// short inputs; longer ones go to Sum. xxhash on every short key was 2.7%
// of a one pass's CPU. The seeds are fixed, so that a key lands in the
// same place in every run.
func Table(key []byte) uint64 {
	n := len(key)
	if n > 16 {
		return Sum(key)
	}
	var a, b uint64
	switch {
	case n >= 8:
		a = binary.LittleEndian.Uint64(key)
		b = binary.LittleEndian.Uint64(key[n-8:])
	case n >= 4:
		a = uint64(binary.LittleEndian.Uint32(key))
		b = uint64(binary.LittleEndian.Uint32(key[n-4:]))
	case n > 0:
		a = uint64(key[0])<<16 | uint64(key[n>>1])<<8 | uint64(key[n-1])
	}
	hi, lo := bits.Mul64(a^tableSeed0, b^tableSeed1^uint64(n))
	return hi ^ lo
}

// tableSeed0 and tableSeed1 are wyhash's default secret's first two words.
const (
	tableSeed0 = 0xa0761d6478bd642f
	tableSeed1 = 0xe7037ed1a0b428db
)
