package output

import (
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/mce-engine/mce/engine/feature"
)

// DefaultRowGroupRows is the rows of a Parquet row group: 128 Ki users,
// the size readers split work by (DuckDB, Spark and Polars read row
// groups in parallel and skip them by their statistics).
const DefaultRowGroupRows = 128 << 10

// DecimalPrecision is the precision of the DECIMAL columns (features with
// a feature.Column Scale): 18 digits, the most an INT64 holds, so with
// the built-in Scale of 4 amounts up to 10^14 - 1.
const DecimalPrecision = 18

// batchRows is how many lines are parsed before they are handed to the
// column writers, column by column.
const batchRows = 4096

// parquetEncoder writes the features lines as a Parquet file, typed:
//
//	key column              string (UTF-8), required
//	feature.TypeInt         int64
//	feature.TypeFloat       double, or DECIMAL(18, Scale) in an INT64 when the column has a Scale
//	feature.TypeTime        TIMESTAMP(MICROS, isAdjustedToUTC=true)
//	feature.TypeString      string (UTF-8)
//
// Every feature column is optional: an unset feature (an empty CSV field)
// is null. Times are instants (mce reads a time without a zone as UTC and
// CSV writes it with a Z), so they are UTC-adjusted, in microseconds: the
// unit Spark reads and DuckDB keeps for a TIMESTAMP WITH TIME ZONE (which
// holds no finer unit), where nanoseconds would make Spark refuse the
// file; a fraction finer than a microsecond, which only an input with 7 to
// 9 digits of seconds gives, is cut. Columns are PLAIN-encoded and zstd-
// compressed at its fastest level; row groups hold DefaultRowGroupRows
// rows; the columns keep the CSV's order.
//
// NB: the library is github.com/parquet-go/parquet-go (v0.32), chosen over
// github.com/apache/arrow-go/v18's pqarrow by measurement: writing 1M rows
// of the built-in features (13 columns, typed as above, row groups of 128
// Ki, one CPU, median of 5 runs of CPU time, 2-core machine under load)
// took parquet-go 1.26 s with zstd level 1 (67 MB; 1.73 s and 57 MB at
// level 3; snappy 1.25 s, 74 MB) and pqarrow 1.17 s with zstd and
// dictionaries off (53 MB; 3.0 s and 71 MB with its default
// dictionaries): the same speed, within the noise. parquet-go allocated 49
// to 68 MB per million rows where pqarrow allocated 940 MB (1.8 GB with
// dictionaries), which matters inside a cluster held to a RAM limit; it
// adds 14 MB to a binary where pqarrow adds 48 MB (and twice the
// packages, Arrow's compute and flatbuffers among them); and its
// column-writer API takes our values directly, where Arrow wants builders
// and record batches first. Its one gap: parquet.Group orders fields by
// name, so the schema is an orderedGroup of our own.
type parquetEncoder struct {
	pw   *parquet.GenericWriter[any]
	cols []pqColumn
	vals [][]parquet.Value // this batch's values, per column
	// arena holds this batch's string bytes, which the values point into
	// until the batch is written (the column writers copy them). It is
	// never grown while it holds some: a line that would not fit writes
	// the batch first.
	arena     []byte
	n         int // lines in the batch
	inGroup   int // lines in the row group, before the batch
	groupRows int
}

// pqKind is how a column's CSV text becomes a Parquet value.
type pqKind uint8

const (
	pqKey pqKind = iota
	pqInt
	pqFloat
	pqDecimal
	pqTime
	pqString
)

type pqColumn struct {
	name  string
	kind  pqKind
	scale int
}

func newParquetEncoder(w io.Writer, spec *feature.Spec, key string, groupRows int) (*parquetEncoder, error) {
	e := &parquetEncoder{groupRows: groupRows, arena: make([]byte, 0, 256<<10)}
	e.cols = append(e.cols, pqColumn{name: key, kind: pqKey})
	group := orderedGroup{&pqField{Node: parquet.String(), name: key}}
	for _, c := range spec.Columns {
		col := pqColumn{name: c.Name}
		var n parquet.Node
		switch {
		case c.Type == feature.TypeInt:
			col.kind, n = pqInt, parquet.Leaf(parquet.Int64Type)
		case c.Type == feature.TypeFloat && c.Scale > 0:
			col.kind, col.scale = pqDecimal, c.Scale
			n = parquet.Decimal(c.Scale, DecimalPrecision, parquet.Int64Type)
		case c.Type == feature.TypeFloat:
			col.kind, n = pqFloat, parquet.Leaf(parquet.DoubleType)
		case c.Type == feature.TypeTime:
			// TODO(#14): a time read without a zone is to stay without
			// one; such a column then gets isAdjustedToUTC=false here.
			col.kind, n = pqTime, parquet.TimestampAdjusted(parquet.Microsecond, true)
		case c.Type == feature.TypeString:
			col.kind, n = pqString, parquet.String()
		default:
			return nil, fmt.Errorf("BUG: output: column %q has type %v", c.Name, c.Type)
		}
		e.cols = append(e.cols, col)
		group = append(group, &pqField{Node: parquet.Optional(n), name: c.Name})
	}
	cfg, err := parquet.NewWriterConfig(
		parquet.NewSchema(spec.Name, group),
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedFastest}),
		parquet.MaxRowsPerRowGroup(int64(groupRows)),
	)
	if err != nil {
		return nil, fmt.Errorf("parquet writer: %w", err)
	}
	e.pw = parquet.NewGenericWriter[any](w, cfg)
	e.vals = make([][]parquet.Value, len(e.cols))
	for i := range e.vals {
		e.vals[i] = make([]parquet.Value, 0, min(batchRows, groupRows))
	}
	return e, nil
}

// record adds one line's fields, the key first.
func (e *parquetEncoder) record(fields [][]byte) error {
	need := 0
	for i, c := range e.cols {
		if c.kind == pqKey || c.kind == pqString {
			need += len(fields[i])
		}
	}
	if len(e.arena)+need > cap(e.arena) {
		if err := e.flushBatch(); err != nil {
			return err
		}
		if need > cap(e.arena) {
			e.arena = make([]byte, 0, 2*need)
		}
	}
	for i, c := range e.cols {
		f := fields[i]
		if c.kind == pqKey {
			e.vals[i] = append(e.vals[i], parquet.ByteArrayValue(e.keep(f)).Level(0, 0, i))
			continue
		}
		if len(f) == 0 {
			e.vals[i] = append(e.vals[i], parquet.NullValue().Level(0, 0, i))
			continue
		}
		var v parquet.Value
		switch c.kind {
		case pqInt:
			n, err := strconv.ParseInt(unsafeString(f), 10, 64)
			if err != nil {
				return e.valueErr(fields, c, err)
			}
			v = parquet.Int64Value(n)
		case pqFloat:
			x, err := strconv.ParseFloat(unsafeString(f), 64)
			if err != nil {
				return e.valueErr(fields, c, err)
			}
			v = parquet.DoubleValue(x)
		case pqDecimal:
			n, err := parseDecimalText(f, c.scale)
			if err != nil {
				return e.valueErr(fields, c, err)
			}
			v = parquet.Int64Value(n)
		case pqTime:
			us, err := parseTimeMicros(f)
			if err != nil {
				return e.valueErr(fields, c, err)
			}
			v = parquet.Int64Value(us)
		case pqString:
			v = parquet.ByteArrayValue(e.keep(f))
		}
		e.vals[i] = append(e.vals[i], v.Level(0, 1, i))
	}
	e.n++
	if e.n == batchRows || e.inGroup+e.n == e.groupRows {
		return e.flushBatch()
	}
	return nil
}

func (e *parquetEncoder) valueErr(fields [][]byte, c pqColumn, err error) error {
	return fmt.Errorf("user %q: feature %s: %w", fields[0], c.name, err)
}

// keep copies b into the arena, which has room (see record).
func (e *parquetEncoder) keep(b []byte) []byte {
	start := len(e.arena)
	e.arena = append(e.arena, b...)
	return e.arena[start:len(e.arena):len(e.arena)]
}

// flushBatch hands the batch to the column writers, and ends the row
// group when it is full.
func (e *parquetEncoder) flushBatch() error {
	if e.n == 0 {
		return nil
	}
	cws := e.pw.ColumnWriters()
	for i := range e.vals {
		if _, err := cws[i].WriteRowValues(e.vals[i]); err != nil {
			return fmt.Errorf("parquet column %s: %w", e.cols[i].name, err)
		}
		e.vals[i] = e.vals[i][:0]
	}
	e.arena = e.arena[:0]
	e.inGroup += e.n
	e.n = 0
	if e.inGroup >= e.groupRows {
		e.inGroup = 0
		if err := e.pw.Flush(); err != nil {
			return fmt.Errorf("parquet row group: %w", err)
		}
	}
	return nil
}

// close writes the last row group and the footer.
func (e *parquetEncoder) close() error {
	if err := e.flushBatch(); err != nil {
		return err
	}
	if e.inGroup > 0 {
		if err := e.pw.Flush(); err != nil {
			return fmt.Errorf("parquet row group: %w", err)
		}
	}
	if err := e.pw.Close(); err != nil {
		return fmt.Errorf("parquet footer: %w", err)
	}
	return nil
}

// unsafeString views b as a string for parsing only.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

var (
	errNotFinite = errors.New("not a finite number: a DECIMAL column holds none")
	errDecimal   = errors.New("not a number")
)

// maxDecimal is the largest unscaled value of DECIMAL(DecimalPrecision, s).
const maxDecimal = 999_999_999_999_999_999

// parseDecimalText reads a number as AppendRecord writes a float
// ("-1234.5", "1e+21", "1.5e-05") exactly, as an integer scaled by
// 10^scale. It fails when the number needs more than scale fraction
// digits or more than DecimalPrecision digits in all, rather than round.
func parseDecimalText(b []byte, scale int) (int64, error) {
	s := b
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) > 0 && (s[0] == 'N' || s[0] == 'I' || s[0] == 'n' || s[0] == 'i') {
		return 0, errNotFinite
	}
	var mant uint64
	digits, frac, exp := 0, 0, 0
	dot := false
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c == '.' && !dot {
			dot = true
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		digits++
		if dot {
			frac++
		}
		if mant > (math.MaxUint64-9)/10 {
			return 0, fmt.Errorf("%q: more than %d digits: %w", b, DecimalPrecision, errDecimalRange)
		}
		mant = mant*10 + uint64(c-'0')
	}
	if digits == 0 {
		return 0, fmt.Errorf("%q: %w", b, errDecimal)
	}
	if i < len(s) {
		if s[i] != 'e' && s[i] != 'E' {
			return 0, fmt.Errorf("%q: %w", b, errDecimal)
		}
		e, err := strconv.Atoi(string(s[i+1:]))
		if err != nil || e > 100 || e < -100 {
			return 0, fmt.Errorf("%q: %w", b, errDecimal)
		}
		exp = e
	}
	// The value is mant * 10^(exp-frac); scaled, mant * 10^(exp-frac+scale).
	for p := exp - frac + scale; p != 0; {
		if p > 0 {
			if mant != 0 && mant > maxDecimal/10 {
				return 0, fmt.Errorf("%q: more than %d digits with %d after the point: %w", b, DecimalPrecision, scale, errDecimalRange)
			}
			mant *= 10
			p--
			continue
		}
		if mant%10 != 0 {
			return 0, fmt.Errorf("%q needs more than %d fraction digits (the column's Scale): %w", b, scale, errDecimalRange)
		}
		mant /= 10
		p++
	}
	if mant > maxDecimal {
		return 0, fmt.Errorf("%q: more than %d digits with %d after the point: %w", b, DecimalPrecision, scale, errDecimalRange)
	}
	if neg {
		return -int64(mant), nil
	}
	return int64(mant), nil
}

// errDecimalRange: a value that a DECIMAL(DecimalPrecision, Scale) column
// cannot hold exactly.
var errDecimalRange = errors.New("out of the DECIMAL column's range")

// parseTimeMicros reads a time as AppendRecord writes it (RFC 3339 in UTC,
// "2024-03-01T10:11:12.5Z") as microseconds since the Unix epoch, the
// finer digits cut (towards the past).
func parseTimeMicros(b []byte) (int64, error) {
	if us, ok := fastTimeMicros(b); ok {
		return us, nil
	}
	t, err := time.Parse(time.RFC3339Nano, unsafeString(b))
	if err != nil {
		return 0, fmt.Errorf("time %q: %w", b, err)
	}
	return t.UnixMicro(), nil
}

// fastTimeMicros reads "YYYY-MM-DDThh:mm:ss[.f…]Z", the form of every
// time of years 0 to 9999, without time.Parse.
func fastTimeMicros(b []byte) (int64, bool) {
	if len(b) < 20 || b[len(b)-1] != 'Z' || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	num := func(s []byte) int {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	y, mo, d := num(b[0:4]), num(b[5:7]), num(b[8:10])
	h, mi, s := num(b[11:13]), num(b[14:16]), num(b[17:19])
	if y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59 {
		return 0, false
	}
	us := 0
	if f := b[19 : len(b)-1]; len(f) > 0 {
		if f[0] != '.' || len(f) < 2 || len(f) > 10 {
			return 0, false
		}
		f = f[1:]
		if len(f) > 6 {
			f = f[:6]
		}
		if us = num(f); us < 0 {
			return 0, false
		}
		for k := len(f); k < 6; k++ {
			us *= 10
		}
	}
	t := time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC)
	if t.Day() != d { // no such day: let time.Parse say so
		return 0, false
	}
	return t.Unix()*1e6 + int64(us), true
}

// orderedGroup is a Parquet group whose fields keep their order (the
// library's Group sorts them by name), so that a Parquet table has the
// columns of the CSV one, in its order.
type orderedGroup []parquet.Field

// pqField is one named field of an orderedGroup.
type pqField struct {
	parquet.Node
	name string
}

func (f *pqField) Name() string { return f.name }

// Value is for writers of Go values, which the encoder is not: it writes
// parquet.Values to the column writers.
func (f *pqField) Value(reflect.Value) reflect.Value { return reflect.Value{} }

// group returns the fields as the library's Group, for what does not
// depend on order.
func (g orderedGroup) group() parquet.Group {
	m := make(parquet.Group, len(g))
	for _, f := range g {
		m[f.Name()] = f
	}
	return m
}

func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) String() string              { return g.group().String() }
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) GoType() reflect.Type        { return g.group().GoType() }
