package gen

import (
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"strconv"
	"strings"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/bytesize"
)

// Defaults for a zero Options.
const (
	DefaultFiles       = 6
	DefaultHeavyShare  = 0.13
	DefaultBadRowShare = 0.001 // with Messy only
	// DefaultSizeBytes is the total uncompressed size when Options.Size is
	// zero.
	DefaultSizeBytes = 100_000_000
)

// Compression kinds for Options.Compression.
const (
	CompressNone  = ""
	CompressGzip  = "gzip"
	CompressZstd  = "zstd"
	CompressMixed = "mixed" // one gzip file, one zstd file, the rest plain
)

// Options says what to generate. The zero value (with Dir set) writes 6
// plain cp1252 files of 100 MB in all.
type Options struct {
	// Dir is where the files go; it is created if missing. Files of an
	// earlier run with other names (invoices_YYYY_MM.csv[.gz|.zst]) are
	// removed so that the directory holds exactly what truth.csv describes.
	Dir string
	// Seed picks the data; the same Options give the same bytes.
	Seed uint64
	// Files is the number of monthly files (default 6).
	Files int
	// Size is the total size, in uncompressed bytes or in rows (bad rows
	// included); zero means DefaultSizeBytes. A byte size is met to within
	// a fraction of a percent.
	Size Size
	// Users is the number of distinct issuers, the bank included; 0 scales
	// it with the number of rows (one issuer per 25 rows, from 20 to one
	// million).
	Users int
	// HeavyShare is the share of all rows issued by the bank (default
	// 0.13); negative means no heavy issuer.
	HeavyShare float64
	// Encoding of the text: EncodingCP1252 (EncodingAuto means it too) or
	// EncodingUTF8. With Messy, every other file uses the other one.
	Encoding feature.Encoding
	// Messy varies the files as real deliveries vary (see the package doc).
	Messy bool
	// ValueStyles writes each file's amounts and issue times in a style
	// of its own (1.234,56, $ 1,234.56, 31/01/2024 14:05, Unix seconds,
	// ...; see the package doc) and adds _truth_styles.csv. The rows stay
	// the same: only their text changes. Messy does not imply it, so that
	// Messy files stay what they have always been; `mce gen --messy` turns
	// it on unless --value-styles=false.
	ValueStyles bool
	// BadRowShare is the share of malformed rows: 0 means none, or
	// DefaultBadRowShare with Messy; negative means none even with Messy.
	BadRowShare float64
	// Compression is CompressNone, CompressGzip, CompressZstd or
	// CompressMixed; with Messy, CompressNone means CompressMixed and
	// "none" means no compression.
	Compression string
	// Delimiter separates fields (default ','): one of , ; | and tab. With
	// Messy it is the first file's and the others rotate through the rest.
	Delimiter byte
	// Workers generate chunks of rows in parallel (default GOMAXPROCS). It
	// does not change the output.
	Workers int
	// NoSync skips fsync of the written files (faster; for benchmarks on
	// scratch space).
	NoSync bool
	// Logger gets a line per file written; nil means slog.Default().
	Logger *slog.Logger
}

// Size is a total size: Bytes of uncompressed data or Rows of data. At most
// one is non-zero.
type Size struct {
	Bytes int64
	Rows  int64
}

// IsZero reports whether no size is set.
func (s Size) IsZero() bool { return s.Bytes == 0 && s.Rows == 0 }

func (s Size) String() string {
	if s.Rows > 0 {
		return strconv.FormatInt(s.Rows, 10) + "rows"
	}
	return strconv.FormatInt(s.Bytes, 10) + "B"
}

// ParseSize reads a size: bytes with an optional unit (200MB, 1.5GB, 2GiB,
// 512KiB, 1000000; KB, MB, GB, TB are powers of 1000, KiB, MiB, GiB, TiB of
// 1024, K M G T alone mean the binary ones) or rows (1e6rows, 500000rows,
// 2.5e5 rows).
func ParseSize(s string) (Size, error) {
	in := s
	num, unit := bytesize.Split(s)
	if num == "" {
		return Size{}, fmt.Errorf("size %q: want a number with a unit, e.g. 200MB, 2GiB or 1e6rows", in)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return Size{}, fmt.Errorf("size %q: want a positive number with a unit, e.g. 200MB, 2GiB or 1e6rows", in)
	}
	if unit == "rows" || unit == "row" {
		if v >= 1<<62 {
			return Size{}, fmt.Errorf("size %q: too many rows", in)
		}
		return Size{Rows: int64(math.Round(v))}, nil
	}
	m, ok := bytesize.Multiplier(unit)
	if !ok {
		return Size{}, fmt.Errorf("size %q: unknown unit %q (want B, KB, MB, GB, KiB, MiB, GiB or rows)", in, unit)
	}
	if v*m >= 1<<62 {
		return Size{}, fmt.Errorf("size %q: too large", in)
	}
	b := int64(math.Round(v * m))
	if b < 1 {
		return Size{}, fmt.Errorf("size %q: less than one byte", in)
	}
	return Size{Bytes: b}, nil
}

// ParseDelimiter reads a delimiter as given on a command line: one of
// , ; | or a tab, also written \t, tab, comma, semicolon or pipe.
func ParseDelimiter(s string) (byte, error) {
	switch strings.ToLower(s) {
	case ",", "comma":
		return ',', nil
	case ";", "semicolon":
		return ';', nil
	case "|", "pipe":
		return '|', nil
	case "\t", `\t`, "tab":
		return '\t', nil
	}
	return 0, fmt.Errorf("delimiter %q: want one of , ; | or tab", s)
}

// DelimiterName names a delimiter in a way that needs no quoting in a CSV
// file: comma, semicolon, pipe or tab.
func DelimiterName(d byte) string {
	switch d {
	case ',':
		return "comma"
	case ';':
		return "semicolon"
	case '|':
		return "pipe"
	case '\t':
		return "tab"
	}
	return fmt.Sprintf("0x%02x", d)
}

// withDefaults returns o with defaults filled in, or an error naming the
// bad option.
func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, fmt.Errorf("no output directory")
	}
	if o.Files == 0 {
		o.Files = DefaultFiles
	}
	if o.Files < 0 || o.Files > 1200 {
		return o, fmt.Errorf("files %d: want 1 to 1200", o.Files)
	}
	if o.Size.Bytes < 0 || o.Size.Rows < 0 || (o.Size.Bytes > 0 && o.Size.Rows > 0) {
		return o, fmt.Errorf("size %+v: want a positive number of bytes or of rows", o.Size)
	}
	if o.Size.IsZero() {
		o.Size.Bytes = DefaultSizeBytes
	}
	if o.Users < 0 {
		return o, fmt.Errorf("users %d: want a positive number", o.Users)
	}
	if o.Users > maxUsers {
		return o, fmt.Errorf("users %d: at most %d", o.Users, maxUsers)
	}
	switch {
	case o.HeavyShare == 0:
		o.HeavyShare = DefaultHeavyShare
	case o.HeavyShare < 0:
		o.HeavyShare = 0
	case o.HeavyShare >= 1 || math.IsNaN(o.HeavyShare):
		return o, fmt.Errorf("heavy share %v: want less than 1", o.HeavyShare)
	}
	switch o.Encoding {
	case feature.EncodingAuto:
		o.Encoding = feature.EncodingCP1252
	case feature.EncodingCP1252, feature.EncodingUTF8:
	default:
		return o, fmt.Errorf("encoding %v: want cp1252 or utf8", o.Encoding)
	}
	switch {
	case o.BadRowShare == 0 && o.Messy:
		o.BadRowShare = DefaultBadRowShare
	case o.BadRowShare < 0:
		o.BadRowShare = 0
	case o.BadRowShare >= 0.5 || math.IsNaN(o.BadRowShare):
		return o, fmt.Errorf("bad row share %v: want less than 0.5", o.BadRowShare)
	}
	switch strings.ToLower(o.Compression) {
	case CompressNone:
		if o.Messy {
			o.Compression = CompressMixed
		}
	case "none":
		o.Compression = CompressNone
	case CompressGzip, "gz":
		o.Compression = CompressGzip
	case CompressZstd, "zst":
		o.Compression = CompressZstd
	case CompressMixed:
		o.Compression = CompressMixed
	default:
		return o, fmt.Errorf("compression %q: want none, gzip, zstd or mixed", o.Compression)
	}
	switch o.Delimiter {
	case 0:
		o.Delimiter = ','
	case ',', ';', '|', '\t':
	default:
		return o, fmt.Errorf("delimiter %q: want one of , ; | or tab", o.Delimiter)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}
