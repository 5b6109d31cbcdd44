package csvread

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/mce-engine/mce/engine/feature"
)

// Options says how to read files. The zero value reads the invoice schema
// with sniffed delimiter and automatic encoding.
type Options struct {
	// Schema is the job's columns; nil means feature.InvoiceSchema.
	Schema *feature.Schema
	// Reads names the schema columns whose values the rows carry (a
	// feature set's Spec.Reads); the user column is always carried. The
	// other columns are still found, counted and checked (a bad amount
	// still makes a bad row, whether or not it is read), but their fields
	// are empty in every row, and cost no copy. nil carries every column.
	Reads []string `json:"-"`
	// Aliases maps a canonical column name to other header names it may
	// have in a file. They are tried before DefaultAliases; a key that is
	// not a schema column is an error. Names are compared folded: case,
	// surrounding spaces and Spanish accents ignored, and ' ', '-' and '.'
	// taken as '_' ("Fecha Emisión" matches fecha_emision).
	Aliases map[string][]string
	// Delimiter is the field separator; 0 sniffs it per file among
	// ',', ';', '|' and '\t'.
	Delimiter byte
	// Encoding of text fields; EncodingUTF8 counts rows with invalid UTF-8
	// as bad. EncodingAuto sniffs the first MiB of each file: cp1252 when
	// it is not valid UTF-8, else automatic per field.
	Encoding feature.Encoding
	// MaxBadRowShare fails a file whose share of bad rows exceeds it.
	// 0 means the default (0.01); a negative value never fails a file.
	MaxBadRowShare float64
	// SampleBadRows is how many bad rows are kept as samples (default 5).
	SampleBadRows int
	// MaxRowBytes bounds one row (default 64 MiB); a longer row (often an
	// unterminated quote) fails the file.
	MaxRowBytes int
	// ChunkBytes is the size of the blocks handed to parsers (default 1 MiB:
	// as fast as bigger ones, and less memory to touch).
	ChunkBytes int

	// CheckValues checks every amount and date (AmountColumns,
	// DateColumns) in the file's convention, sniffed or given, and
	// rewrites them into the plain form ("1234.56", ISO times) when the
	// file writes them otherwise; mce's commands set it.
	CheckValues bool `json:",omitempty"`
	// Decimal is the amounts' decimal separator ("," or "."; see
	// feature.ParseNumberFormat), "" to sniff it per file.
	Decimal string `json:",omitempty"`
	// DateFormat is the dates' layout ("DD/MM/YYYY", "MM/DD/YYYY", "ISO",
	// "epoch"; see feature.ParseDateLayout), "" to sniff it per file.
	DateFormat string `json:",omitempty"`
	// TZ is the zone of times written without one ("" leaves them so).
	TZ string `json:",omitempty"`
	// OnBadValue says what a value that does not read does to its row:
	// BadValueSkipRow (default), BadValueEmpty or BadValueFail.
	OnBadValue string `json:",omitempty"`
	// AmountColumns and DateColumns are the schema columns checked (and
	// rewritten into the plain form) as amounts and dates; nil means the
	// invoice schema's amount and issued_at.
	AmountColumns []string `json:",omitempty"`
	DateColumns   []string `json:",omitempty"`
}

// DefaultAliases are the header names mce knows for the invoice columns.
// Read it, do not modify it: add names through Options.Aliases.
var DefaultAliases = map[string][]string{
	feature.ColInvoiceID:   {"id", "invoice", "folio", "uuid", "invoice_uuid"},
	feature.ColIssuer:      {"issuer_id", "user_id", "user", "rfc", "rfc_emisor", "emisor", "issuer_rfc"},
	feature.ColReceiver:    {"receiver_id", "rfc_receptor", "receptor", "receiver_rfc", "customer"},
	feature.ColIssuedAt:    {"issue_time", "issued", "fecha", "fecha_emision", "date", "timestamp", "issue_ts"},
	feature.ColAmount:      {"total", "monto", "importe", "amount_total"},
	feature.ColCurrency:    {"moneda", "ccy"},
	feature.ColDescription: {"descripcion", "concepto", "desc", "text"},
}

// File is an opened input file whose header has been read.
type File struct {
	Path        string
	Size        int64            // bytes on disk
	Compression string           // "", "gzip" or "zstd"
	Delimiter   byte             // given or sniffed
	Encoding    feature.Encoding // given, or CP1252 or Auto as sniffed
	Header      []string         // the header's fields, unquoted and decoded to UTF-8
	Schema      *feature.Schema

	opts        Options // with defaults filled in
	osFile      *os.File
	disk        io.Reader    // osFile, or a test build's faulty reader (see wrapInput)
	src         io.Reader    // the uncompressed stream after the bytes in head
	closeDecomp func()       // releases the decompressor, nil for plain files
	head        []byte       // bytes read by Open after the header line
	headBuf     []byte       // the whole buffer head is the end of, emptied (for reuse)
	headEOF     bool         // head is the rest of the stream
	colOf       []int        // header column of each schema column
	nHeader     int          // fields in the header
	dataLine    int64        // physical line of the first byte of head
	norms       []normalizer // per schema column: checks (and rewrites) amounts and dates
	dateCols    []bool       // per schema column: a date column (nil: none)
	skip        []bool       // per schema column: left empty in the rows (Options.Reads; nil: none)
	readCols    []int        // with skip: the columns not skipped, for Batch.Row
	skipCols    []int        // with skip: the columns skipped
	wants       []string     // per schema column: what a value must be, for errors

	// Numbers and Dates are the file's conventions (sniffed or given).
	Numbers     feature.NumberFormat
	Dates       feature.DateFormat
	headerLines int64 // physical lines up to the end of the header
	scanned     bool

	bytesRead     atomic.Int64 // uncompressed bytes consumed
	diskBytesRead atomic.Int64 // on-disk bytes consumed
	// diskErr is the first error reading the file from disk, with the
	// byte it was reading (see diskReader; a zstd decoder reads the disk
	// from a goroutine of its own).
	diskErr atomic.Pointer[diskFault]
}

// diskFault is a failed read of the disk and the byte it was reading.
type diskFault struct {
	err error
	off int64
}

// Stats counts what Scan read.
type Stats struct {
	Rows    int64 // good rows handed to fn
	BadRows int64 // bad rows, those with bad values included
	// BadValues counts values that did not read as their column's type
	// (see Options.OnBadValue); EmptiedValues those of them emptied in a
	// kept row (OnBadValue "empty").
	BadValues, EmptiedValues int64
	// ZonedTimes and LocalTimes count the dates and times of the good
	// rows (the date columns checked: Options.DateColumns) that name
	// their zone ("Z", "+01:00", Unix seconds, or given one by --tz) and
	// those that do not (see LocalTimes).
	ZonedTimes, LocalTimes int64
	Bytes                  int64 // uncompressed bytes read, header included
	Lines                  int64 // physical lines, header and empty lines included
	// Samples are the first SampleBadRows bad rows, and values emptied
	// in kept rows (their Err is ErrValueEmptied too).
	Samples []*RowError
}

// Zoneless reports whether the file's times are wall-clock times without
// a zone: some were read and none named one. Its features' times are then
// written without a zone (see output.Writer.SetLocalTimes); a file whose
// times mix both, or that names them all (or --tz), keeps them as
// instants in UTC, its times without a zone read as UTC.
func (s Stats) Zoneless() bool { return s.LocalTimes > 0 && s.ZonedTimes == 0 }

// RowError is a bad row: where it is and why.
type RowError struct {
	File string
	Line int64
	Err  error
	Text string // the start of the row, at most 120 bytes, for the log
}

func (e *RowError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *RowError) Unwrap() error { return e.Err }

// FileError fails a whole file; Line is 0 when no line is to blame.
type FileError struct {
	File string
	Line int64
	Err  error
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}
func (e *FileError) Unwrap() error { return e.Err }

// Batch is the good rows of one chunk of a file. Each row has one field per
// schema column, in schema order, as raw bytes; User gives the user field
// normalised to UTF-8. A Batch is valid only during the call to Scan's fn.
type Batch struct {
	file  *File
	seq   int64
	ncols int
	user  int

	// buf holds the rows one after another: each row's fields in schema
	// order, then the user field converted to UTF-8 when it had to be.
	// ends holds the end offset in buf of each of these ncols+1 slots per
	// row (the last slot is empty when the user needed no conversion).
	buf   []byte
	ends  []uint32
	lines []int64 // 1-based physical line of each row
}
