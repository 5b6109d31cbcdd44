package csvread

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mce-engine/mce/engine/feature"
)

// Defaults of Options.
const (
	DefaultMaxBadRowShare = 0.01
	DefaultSampleBadRows  = 5
	DefaultMaxRowBytes    = 64 << 20
	DefaultChunkBytes     = 1 << 20

	// sniffBytes is how much of a file Open reads to sniff its encoding and
	// delimiter.
	sniffBytes = 1 << 20
	// maxSizeLimit bounds ChunkBytes and MaxRowBytes so that offsets in a
	// batch fit in uint32 even when every user field triples in size.
	maxSizeLimit = 1 << 30
	// sniffRecords is how many records after the header the delimiter
	// sniffer checks for a consistent field count.
	sniffRecords = 100
	// sampleTextBytes bounds RowError.Text.
	sampleTextBytes = 120
)

// Errors a caller may branch on with errors.Is. Bad rows wrap the first
// three; failed files wrap the others (or an I/O error).
var (
	ErrFieldCount        = errors.New("wrong number of fields")
	ErrUnterminatedQuote = errors.New("quote not closed at end of file")
	ErrInvalidUTF8       = errors.New("invalid UTF-8")

	ErrEmpty          = errors.New("empty file, no header")
	ErrNotText        = errors.New("not a text file")
	ErrMissingColumn  = errors.New("missing column")
	ErrRowTooLong     = errors.New("unterminated quote or row too long")
	ErrTooManyBadRows = errors.New("too many bad rows")
	ErrTruncated      = errors.New("truncated")
	ErrCorrupt        = errors.New("corrupt")
	ErrRead           = errors.New("read error")
)

// withDefaults returns o with its zero fields set to the defaults, or an
// error naming the option that cannot be used.
func (o Options) withDefaults() (Options, error) {
	if o.Schema == nil {
		o.Schema = feature.InvoiceSchema
	}
	switch o.Delimiter {
	case 0:
	case '"', '\n', '\r':
		return o, fmt.Errorf("delimiter %q cannot be used", o.Delimiter)
	}
	switch o.Encoding {
	case feature.EncodingAuto, feature.EncodingUTF8, feature.EncodingCP1252:
	default:
		return o, fmt.Errorf("unknown encoding %v", o.Encoding)
	}
	if o.MaxBadRowShare == 0 {
		o.MaxBadRowShare = DefaultMaxBadRowShare
	}
	if o.SampleBadRows == 0 {
		o.SampleBadRows = DefaultSampleBadRows
	} else if o.SampleBadRows < 0 {
		o.SampleBadRows = 0
	}
	if o.MaxRowBytes == 0 {
		o.MaxRowBytes = DefaultMaxRowBytes
	}
	if o.MaxRowBytes < 0 || o.MaxRowBytes > maxSizeLimit {
		return o, fmt.Errorf("max row bytes %d out of range 1..%d", o.MaxRowBytes, maxSizeLimit)
	}
	if o.ChunkBytes == 0 {
		o.ChunkBytes = DefaultChunkBytes
	}
	if o.ChunkBytes < 0 || o.ChunkBytes > maxSizeLimit {
		return o, fmt.Errorf("chunk bytes %d out of range 1..%d", o.ChunkBytes, maxSizeLimit)
	}
	switch o.OnBadValue {
	case "":
		o.OnBadValue = BadValueSkipRow
	case BadValueSkipRow, BadValueEmpty, BadValueFail:
	default:
		return o, fmt.Errorf("on bad value %q: want skip-row, empty or fail", o.OnBadValue)
	}
	if o.Decimal != "" {
		if _, err := feature.ParseNumberFormat(o.Decimal); err != nil {
			return o, fmt.Errorf("decimal %q: %w", o.Decimal, err)
		}
	}
	if o.DateFormat != "" {
		if _, err := feature.ParseDateLayout(o.DateFormat); err != nil {
			return o, fmt.Errorf("date format %q: %w", o.DateFormat, err)
		}
	}
	for _, c := range o.Reads {
		if o.Schema.Index(c) < 0 {
			return o, fmt.Errorf("reads %q: not a column of the schema (%s)", c, strings.Join(o.Schema.Columns(), ", "))
		}
	}
	aliases := make(map[string][]string, len(o.Aliases))
	for k, v := range o.Aliases {
		k = strings.ToLower(strings.TrimSpace(k))
		if o.Schema.Index(k) < 0 {
			return o, fmt.Errorf("aliases for %q: not a column of the schema (%s)", k, strings.Join(o.Schema.Columns(), ", "))
		}
		aliases[k] = append(aliases[k], v...)
	}
	o.Aliases = aliases
	return o, nil
}

// sizeString writes a byte count the way people say it: "64 MiB".
func sizeString(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ParseAliases reads --alias values (column=header, repeatable) and a
// --user-col header name into Options.Aliases for schema; errors name the
// flag and its value.
func ParseAliases(schema *feature.Schema, kvs []string, userCol string) (map[string][]string, error) {
	aliases := map[string][]string{}
	for _, kv := range kvs {
		col, header, ok := strings.Cut(kv, "=")
		col = strings.ToLower(strings.TrimSpace(col))
		if !ok || col == "" || strings.TrimSpace(header) == "" {
			return nil, fmt.Errorf("--alias %q: want column=header", kv)
		}
		if schema.Index(col) < 0 {
			return nil, fmt.Errorf("--alias %q: no column %q in the schema (%s)", kv, col, schema)
		}
		aliases[col] = append(aliases[col], header)
	}
	if userCol != "" {
		aliases[schema.UserName()] = append(aliases[schema.UserName()], userCol)
	}
	return aliases, nil
}
