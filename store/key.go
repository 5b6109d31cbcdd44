package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Key kinds: the first byte of every key. See doc.go for the layout.
const (
	kindMeta   byte = 0x00
	kindNormal byte = 0x01
	kindHeavy  byte = 0x02
)

// Meta key sub-kinds (the byte after kindMeta).
const (
	metaConfig byte = 'c' // the store's Config, JSON
	metaFile   byte = 'f' // metaFile | file id (4 bytes): a FileEntry, JSON
	metaHeavy  byte = 'h' // metaHeavy | esc(user): a heavy user's record, JSON
)

// MaxShards bounds Config.Shards: the shard is two bytes of the key.
const MaxShards = 1 << 16

// FileID names an ingested file inside the store. IDs are given in ingest
// order starting at 1 and are never reused while any row of the old file
// may remain.
type FileID uint32

// Key is a decoded data key.
type Key struct {
	Heavy bool   // in the heavy users' range
	Shard int    // userhash.Sum(user) % shards
	User  []byte // the user key; aliases the encoded key when decoded
	File  FileID
	Seq   uint32 // block sequence number within (user, file), from 0
}

// Chunk returns which chunk of its (user, file) the block belongs to, for
// chunkBlocks blocks per chunk.
func (k *Key) Chunk(chunkBlocks int) int { return int(k.Seq) / chunkBlocks }

// appendEscaped appends the order-preserving escape of user: every 0x00
// becomes 0x00 0xFF, and the result ends with 0x00 0x01. The escaped forms
// of two users compare as the users do, and no escaped user is a prefix of
// another, so a user's keys form one contiguous range.
func appendEscaped(dst, user []byte) []byte {
	for {
		i := bytes.IndexByte(user, 0)
		if i < 0 {
			break
		}
		dst = append(dst, user[:i+1]...)
		dst = append(dst, 0xFF)
		user = user[i+1:]
	}
	dst = append(dst, user...)
	return append(dst, 0x00, 0x01)
}

// splitEscaped decodes an escaped user at the start of b. It returns the
// user (a copy only when the user holds 0x00 bytes, else a sub-slice of b)
// and the rest of b.
func splitEscaped(b []byte) (user, rest []byte, err error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 || i+1 >= len(b) {
		return nil, nil, fmt.Errorf("%w: unterminated user in key %x", ErrCorrupt, b)
	}
	if b[i+1] == 0x01 {
		return b[:i], b[i+2:], nil
	}
	// Slow path: the user holds 0x00 bytes.
	var out []byte
	for {
		i := bytes.IndexByte(b, 0)
		if i < 0 || i+1 >= len(b) {
			return nil, nil, fmt.Errorf("%w: unterminated user in key", ErrCorrupt)
		}
		out = append(out, b[:i]...)
		switch b[i+1] {
		case 0x01:
			return out, b[i+2:], nil
		case 0xFF:
			out = append(out, 0)
			b = b[i+2:]
		default:
			return nil, nil, fmt.Errorf("%w: bad escape 0x00 0x%02x in key", ErrCorrupt, b[i+1])
		}
	}
}

// appendUserPrefix appends kind | shard | esc(user): the prefix every key
// of the user's blocks in that range starts with.
func appendUserPrefix(dst []byte, heavy bool, shard int, user []byte) []byte {
	k := kindNormal
	if heavy {
		k = kindHeavy
	}
	dst = append(dst, k, byte(shard>>8), byte(shard))
	return appendEscaped(dst, user)
}

// AppendKey appends the encoded data key k to dst.
func AppendKey(dst []byte, k Key) []byte {
	dst = appendUserPrefix(dst, k.Heavy, k.Shard, k.User)
	dst = binary.BigEndian.AppendUint32(dst, uint32(k.File))
	return binary.BigEndian.AppendUint32(dst, k.Seq)
}

// DecodeKey decodes a data key. k.User aliases key unless the user holds
// 0x00 bytes.
func DecodeKey(key []byte) (Key, error) {
	var k Key
	if len(key) < 3 || (key[0] != kindNormal && key[0] != kindHeavy) {
		return k, fmt.Errorf("%w: not a data key: %x", ErrCorrupt, key)
	}
	k.Heavy = key[0] == kindHeavy
	k.Shard = int(key[1])<<8 | int(key[2])
	user, rest, err := splitEscaped(key[3:])
	if err != nil {
		return k, err
	}
	if len(rest) != 8 {
		return k, fmt.Errorf("%w: data key has %d trailing bytes, want 8: %x", ErrCorrupt, len(rest), key)
	}
	k.User = user
	k.File = FileID(binary.BigEndian.Uint32(rest))
	k.Seq = binary.BigEndian.Uint32(rest[4:])
	return k, nil
}

// prefixSuccessor returns the smallest key greater than every key that
// starts with p (p must not be all 0xFF; ours never are: they end with the
// user terminator 0x01 or a shard/kind byte below 0xFF).
func prefixSuccessor(p []byte) []byte {
	out := bytes.Clone(p)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] != 0xFF {
			out[i]++
			return out[:i+1]
		}
	}
	panic("BUG: prefixSuccessor of an all-0xFF prefix")
}

func metaFileKey(id FileID) []byte {
	return binary.BigEndian.AppendUint32([]byte{kindMeta, metaFile}, uint32(id))
}

func metaHeavyKey(user []byte) []byte {
	return appendEscaped([]byte{kindMeta, metaHeavy}, user)
}

// Span is a half-open key range [Lower, Upper) of the store: a shard, a
// user, a heavy user's chunk. Make one with the DB's Span methods.
type Span struct {
	Lower, Upper []byte
}

// String returns the span's bounds in hex.
func (s Span) String() string { return fmt.Sprintf("[%x, %x)", s.Lower, s.Upper) }

// shardSpan is the normal users of a shard.
func shardSpan(shard int) Span {
	lo := []byte{kindNormal, byte(shard >> 8), byte(shard)}
	return Span{Lower: lo, Upper: prefixSuccessor(lo)}
}

// heavyShardSpan is the heavy users of a shard.
func heavyShardSpan(shard int) Span {
	lo := []byte{kindHeavy, byte(shard >> 8), byte(shard)}
	return Span{Lower: lo, Upper: prefixSuccessor(lo)}
}

// userSpan is all blocks of one user in one range.
func userSpan(heavy bool, shard int, user []byte) Span {
	p := appendUserPrefix(nil, heavy, shard, user)
	return Span{Lower: p, Upper: prefixSuccessor(p)}
}

// blockSpan is the blocks [firstSeq, endSeq) of (user, file); an endSeq
// past the largest sequence number means "to the last block".
func blockSpan(heavy bool, shard int, user []byte, file FileID, firstSeq uint32, endSeq uint64) Span {
	p := appendUserPrefix(nil, heavy, shard, user)
	p = binary.BigEndian.AppendUint32(p, uint32(file))
	lo := binary.BigEndian.AppendUint32(bytes.Clone(p), firstSeq)
	var hi []byte
	if endSeq > 0xFFFFFFFF {
		hi = prefixSuccessor(p)
	} else {
		hi = binary.BigEndian.AppendUint32(p, uint32(endSeq))
	}
	return Span{Lower: lo, Upper: hi}
}

// fileSpanOfUser is (user, file)'s blocks.
func fileSpanOfUser(heavy bool, shard int, user []byte, file FileID) Span {
	p := appendUserPrefix(nil, heavy, shard, user)
	p = binary.BigEndian.AppendUint32(p, uint32(file))
	return Span{Lower: p, Upper: prefixSuccessor(p)}
}

// allHeavySpan is every heavy user's blocks.
func allHeavySpan() Span { return Span{Lower: []byte{kindHeavy}, Upper: []byte{kindHeavy + 1}} }

// allDataSpan is every data key, normal and heavy.
func allDataSpan() Span { return Span{Lower: []byte{kindNormal}, Upper: []byte{kindHeavy + 1}} }
