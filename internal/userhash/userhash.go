// Package userhash is the one stable hash of a user key that every part of
// mce uses: the worker that owns a user in `mce run` and the shard of a
// user in the store both derive from it.
//
// The hash is xxHash64 (seed 0) of the key's UTF-8 bytes. Unlike Python's
// hash() of a string, which the original engine used and which changes per
// process, it is the same in every process, run and machine; the golden
// values in userhash_test.go pin it.
package userhash

import "github.com/cespare/xxhash/v2"

// Sum returns the stable 64-bit hash of a user key.
func Sum(key []byte) uint64 { return xxhash.Sum64(key) }

// Partition returns which of n partitions owns the key: Sum(key) mod n.
func Partition(key []byte, n int) int {
	if n <= 1 {
		return 0
	}
	return int(Sum(key) % uint64(n))
}
