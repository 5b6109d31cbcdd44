package feature

import (
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// Rows iterates over one user's rows, in file order. It may stream them
// from disk: each row is valid only until the next call to Next.
//
//	for rows.Next() {
//		row := rows.Row()
//		...
//	}
//	if err := rows.Err(); err != nil { ... }
type Rows interface {
	// Next advances to the next row and reports whether there is one.
	Next() bool
	// Row returns the current row. It is overwritten by the next Next.
	Row() *Row
	// Err returns the error that stopped the iteration early, if any.
	Err() error
	// Schema returns the schema of the rows.
	Schema() *Schema
}

// User identifies the group being reduced.
type User struct {
	// Key is the grouping key: the user column, or what Map returned.
	// It is valid only during the call; copy it to keep it.
	Key []byte
	// File is the base name of the input file the rows come from, or ""
	// when a job reduces a user across all files.
	File string
	// Params holds the job's --param values.
	Params Params
}

// Aggregator is the mergeable form of a feature set: the engine may feed
// parts of one user's rows to several Aggregators (on several workers) and
// Merge them before Finish, so that huge users can be spread over idle
// workers; in `mce run --mode stream` it adds rows as they are read, in
// whatever order the reading workers reach them. The result must therefore
// not depend on how the rows are split nor on their order (sums, counts,
// min/max, sets, ties broken by value): a feature that needs file order
// belongs in a ReduceFunc, whose Rows come in file order.
type Aggregator interface {
	// Add adds one row. The row is only valid during the call.
	Add(row *Row) error
	// Merge folds another Aggregator of the same Spec into this one.
	Merge(other Aggregator) error
	// Finish writes the features into out.
	Finish(out *Record) error
}

// Resetter is an Aggregator that can be used again: Reset(u) makes it what
// NewAggregator(u) would. A Reducer then makes one Aggregator for all the
// users it reduces one after another, not one per user. The built-in
// features' Aggregator is one.
type Resetter interface {
	Reset(u *User)
}

// MapFunc sees every row before grouping. It returns keep=false to drop the
// row, and a non-nil key to group the row under that key instead of the
// user column. The key may alias the row; mce copies it.
type MapFunc func(row *Row, p Params) (key []byte, keep bool)

// ReduceFunc computes one user's features from its rows into out.
type ReduceFunc func(u *User, rows Rows, out *Record) error

// Spec is a feature job.
type Spec struct {
	// Name names the feature set in logs and outputs.
	Name string
	// Schema is the input columns; nil means InvoiceSchema.
	Schema *Schema
	// Columns are the output features, in output order.
	Columns []Column
	// Map, if set, filters and re-keys rows before grouping.
	Map MapFunc
	// KeyName, if set, names the output's key column (the first, before
	// Columns), e.g. "receiver" for a Map that groups rows by receiver.
	// Empty: "user", or the input's name for its user column when the run
	// asks for it (--key-name input); --key-name NAME overrides it.
	KeyName string
	// Reduce computes one user's features. Set Reduce or NewAggregator.
	Reduce ReduceFunc
	// NewAggregator, if set, makes the feature set mergeable.
	NewAggregator func(u *User) Aggregator
	// columns: the aggregators take a store block's rows as Columns
	// (AddRows). Only Invoice sets it.
	columns bool
	// Reads, if set, names the input columns that Map and the features
	// read. mce run then copies only those (and the user column) out of
	// the file into the rows it groups or adds, and mce reduce decodes
	// only those from the store; the other fields of a Row are empty
	// (nil from the store). Every column is still checked: a bad amount
	// makes a bad row whether or not amount is read. nil reads every
	// column.
	Reads []string
	// TimesRead says that Map and the features read every time through
	// Row.Time, never as text. mce reduce then hands the times its store
	// keeps packed to Row.Time as they are, without writing their text
	// first (about a tenth of decoding a block): such a field is nil. A
	// time the store keeps as text, and every time with --tz, is still
	// text. The built-in features set it.
	TimesRead bool
	// DecimalsRead names the columns that Map and the features read
	// through Row.Decimal only, never as text. mce reduce then hands the
	// amounts its store keeps as numbers in those columns to Row.Decimal
	// as they are, without writing their text first: such a field is nil.
	// An amount the store keeps as text is still text. The built-in
	// features name amount.
	DecimalsRead []string
}

// Validate checks the Spec and fills defaults.
func (s *Spec) Validate() error {
	if s.Name == "" {
		return errors.New("feature spec has no Name")
	}
	if s.Schema == nil {
		s.Schema = InvoiceSchema
	}
	if len(s.Columns) == 0 {
		return fmt.Errorf("feature spec %s has no Columns", s.Name)
	}
	if s.KeyName != "" {
		if strings.ContainsAny(s.KeyName, ",\"\n\r") {
			return fmt.Errorf("feature spec %s: bad KeyName %q", s.Name, s.KeyName)
		}
		for _, c := range s.Columns {
			if strings.EqualFold(c.Name, s.KeyName) {
				return fmt.Errorf("feature spec %s: KeyName %q is also a column", s.Name, s.KeyName)
			}
		}
	}
	seen := map[string]bool{}
	for _, c := range s.Columns {
		if c.Name == "" || strings.ContainsAny(c.Name, ",\"\n\r") {
			return fmt.Errorf("feature spec %s: bad column name %q", s.Name, c.Name)
		}
		if seen[c.Name] {
			return fmt.Errorf("feature spec %s: column %q appears twice", s.Name, c.Name)
		}
		seen[c.Name] = true
		if c.Type < TypeInt || c.Type > TypeTime {
			return fmt.Errorf("feature spec %s: column %q has no type", s.Name, c.Name)
		}
		if c.Scale != 0 && (c.Type != TypeFloat || c.Scale < 0 || c.Scale > MaxScale) {
			return fmt.Errorf("feature spec %s: column %q: Scale %d needs a float column and 1..%d", s.Name, c.Name, c.Scale, MaxScale)
		}
	}
	if (s.Reduce == nil) == (s.NewAggregator == nil) {
		return fmt.Errorf("feature spec %s: set exactly one of Reduce and NewAggregator", s.Name)
	}
	for _, c := range s.Reads {
		if s.Schema.Index(c) < 0 {
			return fmt.Errorf("feature spec %s: Reads names column %q, which the schema %v does not hold", s.Name, c, s.Schema.Columns())
		}
	}
	for _, c := range s.DecimalsRead {
		if s.Schema.Index(c) < 0 {
			return fmt.Errorf("feature spec %s: DecimalsRead names column %q, which the schema %v does not hold", s.Name, c, s.Schema.Columns())
		}
	}
	return nil
}

// Mergeable reports whether the engine may split a user across workers.
func (s *Spec) Mergeable() bool { return s.NewAggregator != nil }

// TakesColumns reports whether the Spec's aggregators take a store
// block's rows as Columns in AddRows: the built-in features' do. Their
// garbage is mce's own, and little: an aggregate per user, no work of a
// user's code per row. A copy of Invoice keeps it: a feature file that
// builds on Invoice with aggregators of its own should start from a new
// Spec.
func (s *Spec) TakesColumns() bool { return s.columns }

// NewRecord returns an empty output record for this Spec.
func (s *Spec) NewRecord() *Record { return NewRecord(s.Columns) }

// PanicError is a panic in user feature code, recovered by mce.
type PanicError struct {
	Value any
	Stack string
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("panic: %v", e.Value)
}

// ReduceUser runs the Spec on one user: Reduce, or for a mergeable Spec
// one Aggregator fed with all rows. A panic in user code is returned as a
// *PanicError; out is reset first.
func (s *Spec) ReduceUser(u *User, rows Rows, out *Record) error {
	var r Reducer
	r.spec = s
	return r.ReduceUser(u, rows, out)
}

// A Reducer runs a Spec on users one after another, on one goroutine: it
// keeps a mergeable Spec's Aggregator for the next user when it is a
// Resetter.
type Reducer struct {
	spec *Spec
	agg  Aggregator // a Resetter that finished its user, or nil
	cols Columns
}

// NewReducer returns a Reducer of s.
func (s *Spec) NewReducer() *Reducer { return &Reducer{spec: s} }

// ReduceUser is Spec.ReduceUser.
func (r *Reducer) ReduceUser(u *User, rows Rows, out *Record) (err error) {
	s := r.spec
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: string(debug.Stack())}
		}
	}()
	out.Reset()
	if s.Reduce != nil {
		if err := s.Reduce(u, rows, out); err != nil {
			return err
		}
		return rows.Err()
	}
	agg := r.agg
	r.agg = nil // until it finished this user: an error or a panic drops it
	if agg != nil {
		agg.(Resetter).Reset(u)
	} else {
		agg = s.NewAggregator(u)
	}
	if err := AddRows(agg, rows, &r.cols); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := agg.Finish(out); err != nil {
		return err
	}
	if _, ok := agg.(Resetter); ok {
		r.agg = agg
	}
	return nil
}

// Guard runs f, turning a panic in user code into a *PanicError.
func Guard(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: string(debug.Stack())}
		}
	}()
	return f()
}

// Type is the type of an output feature.
type Type uint8

// Output feature types.
const (
	TypeInt Type = iota + 1
	TypeFloat
	TypeString
	TypeTime
)

func (t Type) String() string {
	switch t {
	case TypeInt:
		return "int"
	case TypeFloat:
		return "float"
	case TypeString:
		return "string"
	case TypeTime:
		return "time"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Column is one output feature.
type Column struct {
	Name string
	Type Type
	Doc  string
	// Scale, on a TypeFloat column whose values are exact decimals (sums
	// of amounts read with Row.Decimal), is their number of fraction
	// digits: Parquet outputs then hold the column as DECIMAL(18, Scale),
	// exact, instead of a double. Every value must then need at most
	// Scale fraction digits as CSV writes it (the shortest form that reads
	// back exactly), or writing Parquet fails. 0: a double.
	Scale int
}

// MaxScale is the largest Column.Scale.
const MaxScale = 9

// Record holds one user's output features. Unset features are written as
// empty fields.
type Record struct {
	cols []Column
	set  []bool
	ints []int64
	flts []float64
	strs []string
	// text holds the bytes of the strings SetBytesAt set since the last
	// Reset; strs alias it. The strings never leave the record, whose
	// readers (AppendField) are done with them before Reset.
	text []byte
}

// NewRecord returns an empty record with the given columns.
func NewRecord(cols []Column) *Record {
	return &Record{
		cols: cols,
		set:  make([]bool, len(cols)),
		ints: make([]int64, len(cols)),
		flts: make([]float64, len(cols)),
		strs: make([]string, len(cols)),
	}
}

// Columns returns the record's columns.
func (r *Record) Columns() []Column { return r.cols }

// Reset clears every feature.
func (r *Record) Reset() {
	for i := range r.set {
		r.set[i] = false
		r.strs[i] = ""
	}
	r.text = r.text[:0]
}

func (r *Record) index(name string, t Type) int {
	for i, c := range r.cols {
		if c.Name == name {
			if c.Type != t {
				panic(fmt.Sprintf("feature %q is %s, set as %s", name, c.Type, t))
			}
			return i
		}
	}
	panic(fmt.Sprintf("feature %q is not one of the Spec's Columns", name))
}

// SetInt sets the named int feature. Setting an unknown name or the wrong
// type panics (a bug in the feature code, reported with its file and user).
func (r *Record) SetInt(name string, v int64) { r.SetIntAt(r.index(name, TypeInt), v) }

// SetFloat sets the named float feature.
func (r *Record) SetFloat(name string, v float64) { r.SetFloatAt(r.index(name, TypeFloat), v) }

// SetString sets the named string feature.
func (r *Record) SetString(name string, v string) { r.SetStringAt(r.index(name, TypeString), v) }

// SetTime sets the named time feature.
func (r *Record) SetTime(name string, v time.Time) { r.SetTimeAt(r.index(name, TypeTime), v) }

// SetIntAt sets feature i (an int).
func (r *Record) SetIntAt(i int, v int64) { r.ints[i], r.set[i] = v, true }

// SetFloatAt sets feature i (a float).
func (r *Record) SetFloatAt(i int, v float64) { r.flts[i], r.set[i] = v, true }

// SetStringAt sets feature i (a string).
func (r *Record) SetStringAt(i int, v string) { r.strs[i], r.set[i] = v, true }

// SetBytesAt sets feature i (a string) to a copy of b: SetStringAt(i,
// string(b)) without a new string for every record.
func (r *Record) SetBytesAt(i int, b []byte) {
	if len(b) == 0 {
		r.SetStringAt(i, "")
		return
	}
	if cap(r.text)-len(r.text) < len(b) {
		// A new buffer: the strings already set keep the old one.
		r.text = make([]byte, 0, max(256, 2*cap(r.text), 2*len(b)))
	}
	at := len(r.text)
	r.text = append(r.text, b...)
	r.SetStringAt(i, unsafe.String(&r.text[at], len(b)))
}

// SetTimeAt sets feature i (a time), kept to the nanosecond in UTC.
func (r *Record) SetTimeAt(i int, v time.Time) { r.ints[i], r.set[i] = v.UnixNano(), true }

// IsSet reports whether feature i was set.
func (r *Record) IsSet(i int) bool { return r.set[i] }

// AppendField appends feature i formatted for a CSV file (without
// quoting): ints in base 10, floats in the shortest form that reads back
// exactly ("NaN", "+Inf" for those), times as RFC 3339 in UTC, and nothing
// for an unset feature.
func (r *Record) AppendField(dst []byte, i int) []byte {
	if !r.set[i] {
		return dst
	}
	switch r.cols[i].Type {
	case TypeInt:
		return strconv.AppendInt(dst, r.ints[i], 10)
	case TypeFloat:
		f := r.flts[i]
		if math.IsNaN(f) {
			return append(dst, "NaN"...)
		}
		return AppendFloat(dst, f)
	case TypeString:
		return append(dst, r.strs[i]...)
	case TypeTime:
		return time.Unix(0, r.ints[i]).UTC().AppendFormat(dst, time.RFC3339Nano)
	}
	panic("BUG: record column without type")
}

// Params are the job's --param key=value pairs.
type Params map[string]string

// ParseParams reads "key=value" strings, as given to --param.
func ParseParams(kvs []string) (Params, error) {
	p := Params{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: want key=value", kv)
		}
		p[k] = v
	}
	return p, nil
}

// Get returns the value of key, or def when it is absent.
func (p Params) Get(key, def string) string {
	if v, ok := p[key]; ok {
		return v
	}
	return def
}

// Int returns key as an int, def when absent, and an error when it is not
// a number.
func (p Params) Int(key string, def int64) (int64, error) {
	v, ok := p[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("param %s=%q: not an integer", key, v)
	}
	return n, nil
}

// Float returns key as a float, def when absent, and an error when it is
// not a number.
func (p Params) Float(key string, def float64) (float64, error) {
	v, ok := p[key]
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return 0, fmt.Errorf("param %s=%q: not a number", key, v)
	}
	return f, nil
}

// SliceRows is a Rows over rows held in memory, for tests and examples.
type SliceRows struct {
	schema *Schema
	rows   []Row
	i      int
}

// NewSliceRows returns a Rows over the given field lists.
func NewSliceRows(schema *Schema, enc Encoding, rows [][][]byte) *SliceRows {
	s := &SliceRows{schema: schema, i: -1}
	for _, f := range rows {
		s.rows = append(s.rows, Row{Fields: f, Encoding: enc, Schema: schema})
	}
	return s
}

// Next implements Rows.
func (s *SliceRows) Next() bool { s.i++; return s.i < len(s.rows) }

// Row implements Rows.
func (s *SliceRows) Row() *Row { return &s.rows[s.i] }

// Err implements Rows.
func (s *SliceRows) Err() error { return nil }

// Schema implements Rows.
func (s *SliceRows) Schema() *Schema { return s.schema }
