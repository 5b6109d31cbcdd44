package store

import (
	"fmt"
	"strings"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Codec is how a block's payload is compressed. Every value records its
// codec, so a store may hold blocks of several codecs (a later partition
// run may choose another one).
type Codec uint8

// Codecs. The numbers are written into every value: never renumber them.
const (
	CodecNone Codec = 0
	CodecS2   Codec = 1
	CodecZstd Codec = 2
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecS2:
		return "s2"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("Codec(%d)", uint8(c))
}

// ParseCodec reads a value codec name: zstd, s2 or none.
func ParseCodec(s string) (Codec, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "zstd":
		return CodecZstd, nil
	case "s2":
		return CodecS2, nil
	case "none":
		return CodecNone, nil
	}
	return 0, fmt.Errorf("unknown codec %q (want zstd, s2 or none)", s)
}

// Compression is how a writer compresses blocks: each block's own codec,
// and whether pebble compresses the sstables that hold the blocks.
//
// Compressing the sstables ("table-zstd", "table-minlz") compresses
// neighbouring blocks together, 64 KiB at a time: most (user, file)
// groups are small (a few rows of a user in one month), and on their own
// they compress poorly. On the generated invoices (200 MB, 6 months) a
// format 2 store took 37% of the raw CSV with table-zstd (measured at zstd
// level 3 and 32 KiB table blocks), 48% with zstd per block and 64% with
// s2 per block, and table-zstd wrote the fastest of the three: see the
// README's figures and BenchmarkPartition.
type Compression struct {
	Value Codec // each block's codec
	// Table is how pebble compresses the sstables: "" (not at all),
	// "zstd" (pebble's balanced profile: zstd level 1 where it saves 20%
	// more than MinLZ, MinLZ elsewhere), or "minlz" (its fastest codec).
	// In a format 2 store minlz took 58% of the raw CSV against zstd's
	// 37.5%. Format 3 packs UUIDs and times before any codec sees them,
	// and the two came close: with 32 KiB table blocks 37.6% against
	// 37.0% at 300 MB (37.2% and 36.5% at 2 GB), partition 4–5% faster
	// with minlz and reduce 1–6%; with 64 KiB blocks (tableBlockBytes)
	// both 34.8%, zstd seldom saving enough, and partition still 5–8%
	// faster with minlz, which tries no zstd (DefaultCompression).
	Table string
}

// DefaultCompression is the compression of a new store: table-minlz, for
// the speed of partition and reduce; with 64 KiB table blocks its store is
// the size of table-zstd's. A store keeps the compression it was made with
// (Config.Codec) unless a partition names another.
const DefaultCompression = "table-minlz"

// ParseCompression reads a compression name: table-zstd (blocks stored
// as they are in zstd-compressed sstables), table-minlz (the same with
// pebble's fastest codec: bigger, faster to read), zstd or s2 (each block
// compressed on its own, sstables not compressed), or none.
func ParseCompression(s string) (Compression, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "table-zstd":
		return Compression{Value: CodecNone, Table: "zstd"}, nil
	case "table-minlz":
		return Compression{Value: CodecNone, Table: "minlz"}, nil
	case "zstd":
		return Compression{Value: CodecZstd}, nil
	case "s2":
		return Compression{Value: CodecS2}, nil
	case "none":
		return Compression{Value: CodecNone}, nil
	}
	return Compression{}, fmt.Errorf("unknown compression %q (want table-zstd, table-minlz, zstd, s2 or none)", s)
}

func (c Compression) String() string {
	if c.Table == "" {
		return c.Value.String()
	}
	if c.Value == CodecNone {
		return "table-" + c.Table
	}
	return "table-" + c.Table + "+" + c.Value.String()
}

// Compressor compresses and decompresses block payloads with every codec.
// It is safe for concurrent use; make one per process (or per DB) and share
// it, since each holds reusable zstd state.
type Compressor struct {
	zenc *zstd.Encoder
	zdec *zstd.Decoder
}

// NewCompressor returns a Compressor that runs up to concurrency zstd
// encodes or decodes at once (more callers wait for a free state).
func NewCompressor(concurrency int) (*Compressor, error) {
	if concurrency < 1 {
		concurrency = 1
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderConcurrency(concurrency),
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		// NB: blocks are small (BlockBytes, 64 KiB by default); a small
		// window keeps each encoder's state small.
		zstd.WithWindowSize(1<<20),
		zstd.WithLowerEncoderMem(true),
		zstd.WithEncoderCRC(false), // pebble checksums every sstable block
	)
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(concurrency),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(maxBlockRaw),
		// NB: DecodeAll then never grows dst past the capacity we give it
		// (the header's raw length), so a corrupt frame cannot balloon.
		zstd.WithDecodeAllCapLimit(true),
	)
	if err != nil {
		enc.Close()
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return &Compressor{zenc: enc, zdec: dec}, nil
}

// Close releases the zstd state.
func (c *Compressor) Close() {
	c.zenc.Close()
	c.zdec.Close()
}

// Compress appends the compression of src with codec to dst.
func (c *Compressor) Compress(codec Codec, dst, src []byte) []byte {
	switch codec {
	case CodecS2:
		n := s2.MaxEncodedLen(len(src))
		dst = growLen(dst, n)
		out := s2.Encode(dst[len(dst)-n:], src)
		return dst[:len(dst)-n+len(out)]
	case CodecZstd:
		return c.zenc.EncodeAll(src, dst)
	default:
		return append(dst, src...)
	}
}

// Decompress appends the decompression of src to dst; rawLen is the
// expected size and is checked.
func (c *Compressor) Decompress(codec Codec, dst, src []byte, rawLen int) ([]byte, error) {
	start := len(dst)
	if rawLen < 0 || rawLen > maxBlockRaw {
		return dst, fmt.Errorf("%w: block raw length %d", ErrCorrupt, rawLen)
	}
	switch codec {
	case CodecNone:
		dst = append(dst, src...)
	case CodecS2:
		n, derr := s2.DecodedLen(src)
		if derr != nil {
			return dst, fmt.Errorf("%w: s2 block: %v", ErrCorrupt, derr)
		}
		if n != rawLen {
			return dst, fmt.Errorf("%w: s2 block of %d bytes, header says %d", ErrCorrupt, n, rawLen)
		}
		dst = growLen(dst, n)
		if _, derr := s2.Decode(dst[start:], src); derr != nil {
			return dst[:start], fmt.Errorf("%w: s2 block: %v", ErrCorrupt, derr)
		}
	case CodecZstd:
		if cap(dst)-len(dst) < rawLen {
			nd := make([]byte, len(dst), len(dst)+rawLen+rawLen/4)
			copy(nd, dst)
			dst = nd
		}
		// NB: with WithDecodeAllCapLimit the decoder writes into the
		// capped slice's array and never reallocates; we keep dst's full
		// capacity for the next block.
		out, derr := c.zdec.DecodeAll(src, dst[:start:start+rawLen])
		if derr != nil {
			return dst[:start], fmt.Errorf("%w: zstd block: %v", ErrCorrupt, derr)
		}
		if len(out) > 0 && &out[:1][0] != &dst[:1][0] {
			dst = append(dst[:start], out[start:]...) // reallocated after all
		} else {
			dst = dst[:len(out)]
		}
	default:
		return dst, fmt.Errorf("%w: unknown codec %d", ErrCorrupt, codec)
	}
	if len(dst)-start != rawLen {
		return dst[:start], fmt.Errorf("%w: block decompressed to %d bytes, header says %d", ErrCorrupt, len(dst)-start, rawLen)
	}
	return dst, nil
}

// growLen extends b by n bytes (contents undefined), reallocating if needed.
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*len(b)+n)
	copy(nb, b)
	return nb
}
