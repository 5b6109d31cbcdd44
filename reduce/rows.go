package reduce

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/store"
)

// ErrRekey is returned when the Spec's Map groups a row under another key
// than its user: the store is sharded by user, so such a grouping cannot
// be streamed from it. `mce run` re-keys; `mce reduce` only filters.
var ErrRekey = errors.New("the feature set's Map re-keys rows, which mce reduce cannot do (the store is grouped by user); use mce run for features that re-key, or make Map return a nil key to filter only")

// RekeyError names the row whose Map re-keyed it.
type RekeyError struct {
	User, Key string
	File      string
	Line      int64
}

func (e *RekeyError) Error() string {
	return fmt.Sprintf("%s:%d: user %q: Map returned key %q: %v", e.File, e.Line, e.User, e.Key, ErrRekey)
}

func (e *RekeyError) Unwrap() error { return ErrRekey }

// mapError is an error or panic of the Spec's Map on one row: the file
// fails, as in `mce run`.
type mapError struct {
	line int64
	err  error
}

func (e *mapError) Error() string { return fmt.Sprintf("line %d: map: %v", e.line, e.err) }
func (e *mapError) Unwrap() error { return e.err }

// storeError is a failure to read the store (I/O, corruption): the task
// fails, not only the file.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// fileInfo is what a worker knows of one input file of the store.
type fileInfo struct {
	id      store.FileID
	name    string // base name: feature.User.File
	enc     feature.Encoding
	section int // output section, or -1 when the file is not read
}

// userRows is the feature.Rows a feature function gets for one group (a
// user, or a user in one file): the store's rows streamed one decoded
// block at a time, through the Spec's Map used as a filter. It is reused
// for every group of a worker; memory holds one block, whatever the size
// of the user.
type userRows struct {
	spec   *feature.Spec
	params feature.Params
	cols   []int // store column of each schema column; nil when the same
	files  []fileInfo
	// schemaCol is the schema column of each store column read (-1:
	// none); nil when the same.
	schemaCol []int

	// tz, when set (--tz), is the zone of the times of column timeCol
	// that the store holds without one; they are rewritten, into tzBuf,
	// as instants in UTC, as mce run's reader rewrites them.
	tz      *time.Location
	timeCol int
	tzBuf   []byte

	src    *store.Rows
	user   []byte
	file   store.FileID
	fields [][]byte
	row    feature.Row
	primed bool
	done   bool
	err    error

	// Counters since the last groupWorker.count; bytes is set there, from
	// the blocks the group read (columns not decoded included).
	rows, dropped, bytes int64

	// inv holds the store columns of the built-in features' amount,
	// receiver and time (-1: none), for Columns.
	inv [3]int
}

func newUserRows(spec *feature.Spec, params feature.Params, cols []int, files []fileInfo) *userRows {
	r := &userRows{spec: spec, params: params, cols: cols, files: files}
	r.row.Schema = spec.Schema
	if cols != nil {
		r.fields = make([][]byte, len(cols))
		n := 0
		for _, sc := range cols {
			n = max(n, sc+1)
		}
		r.schemaCol = slices.Repeat([]int{-1}, n)
		for c, sc := range cols {
			r.schemaCol[sc] = c
		}
	}
	for k, name := range []string{feature.ColAmount, feature.ColReceiver, feature.ColIssuedAt} {
		r.inv[k] = -1
		if c := spec.Schema.Index(name); c >= 0 {
			r.inv[k] = c
			if cols != nil {
				r.inv[k] = cols[c]
			}
		}
	}
	r.row.Parsed.Values = make([]int64, spec.Schema.Len())
	r.row.Parsed.Scales = make([]uint8, spec.Schema.Len())
	return r
}

// reset starts a group.
func (r *userRows) reset(src *store.Rows, user []byte) {
	r.src, r.user = src, user
	r.file = ^store.FileID(0)
	r.primed, r.done, r.err = false, false, nil
}

// prime reads ahead to the group's first kept row. It returns false when
// there is none (Map dropped every row: the group makes no output line,
// as in `mce run`) or on an error (see err).
func (r *userRows) prime() bool {
	ok := r.advance()
	r.primed = ok
	return ok
}

// Next implements feature.Rows.
func (r *userRows) Next() bool {
	if r.primed {
		r.primed = false
		return true
	}
	return r.advance()
}

func (r *userRows) advance() bool {
	if r.err != nil || r.done {
		return false
	}
	for r.src.Next() {
		f := r.src.Fields()
		if r.cols != nil {
			for i, c := range r.cols {
				r.fields[i] = f[c]
			}
			f = r.fields
		}
		if r.tz != nil {
			f = r.zoned(f)
		}
		r.row.Fields = f
		r.parsedValues()
		if id := r.src.File(); id != r.file {
			r.file = id
			if int(id) < len(r.files) {
				r.row.Encoding = r.files[id].enc
			}
		}
		r.rows++
		if r.spec.Map == nil {
			return true
		}
		key, keep, err := r.mapRow()
		if err != nil {
			r.err = err
			return false
		}
		if !keep {
			r.dropped++
			continue
		}
		if key != nil && !bytes.Equal(key, r.user) {
			r.err = &RekeyError{User: string(r.user), Key: string(key), File: r.fileName(), Line: r.src.Line()}
			return false
		}
		return true
	}
	r.done = true
	if err := r.src.Err(); err != nil {
		r.err = &storeError{err}
	}
	return false
}

// setZone sets --tz: the zone of the times (the schema's issued_at)
// that the store holds without one. Nil: none.
func (r *userRows) setZone(tz *time.Location) {
	r.timeCol = r.spec.Schema.Index(feature.ColIssuedAt)
	if tz == nil || r.timeCol < 0 {
		return
	}
	r.tz = tz
	if r.fields == nil {
		r.fields = make([][]byte, r.spec.Schema.Len())
	}
}

// zoned returns the row's fields with its time, when it has no zone,
// read in r.tz and written as the instant in UTC ("2024-01-31T14:05:00"
// in America/Mexico_City becomes "2024-01-31T20:05:00Z"). A value that
// does not read is left for the feature code to find bad.
func (r *userRows) zoned(f [][]byte) [][]byte {
	v := f[r.timeCol]
	if len(v) == 0 || feature.HasZone(v) {
		return f
	}
	t, err := feature.ParseDate(v, feature.DateFormat{Location: r.tz})
	if err != nil {
		return f
	}
	if &f[0] != &r.fields[0] {
		copy(r.fields, f)
	}
	r.tzBuf = t.AppendFormat(r.tzBuf[:0])
	r.fields[r.timeCol] = r.tzBuf
	return r.fields
}

// parsedValues hands the current row's packed times (without --tz: the
// times are then read as they are written) and packed amounts to the
// row's Parsed, so that the features do not parse the text the block was
// just decoded into.
func (r *userRows) parsedValues() {
	p := &r.row.Parsed
	p.Times, p.Decimals = 0, 0
	if r.tz == nil {
		for k, sc := range r.src.TimeColumns() {
			if c := r.parsedColumn(sc); c >= 0 {
				p.Values[c] = r.src.Seconds(k)
				p.Times |= 1 << uint(c)
			}
		}
	}
	for k, sc := range r.src.AmountColumns() {
		if c := r.parsedColumn(sc); c >= 0 {
			units, scale := r.src.Amount(k)
			p.Values[c], p.Scales[c] = units, uint8(scale)
			p.Decimals |= 1 << uint(c)
		}
	}
}

// parsedColumn returns the schema column of store column sc when Parsed
// can hold its value (one of the first 64), else -1.
func (r *userRows) parsedColumn(sc int) int {
	if c := r.schemaColumn(sc); c >= 0 && c < 64 && c < len(r.row.Parsed.Values) {
		return c
	}
	return -1
}

// schemaColumn returns the schema column of store column sc, or -1 when
// the feature set does not read it.
func (r *userRows) schemaColumn(sc int) int {
	switch {
	case r.schemaCol == nil:
		return sc
	case sc < len(r.schemaCol):
		return r.schemaCol[sc]
	}
	return -1
}

// mapRow runs the Spec's Map on the current row, recovering a panic.
func (r *userRows) mapRow() (key []byte, keep bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &mapError{line: r.src.Line(), err: &feature.PanicError{Value: v, Stack: string(debug.Stack())}}
		}
	}()
	key, keep = r.spec.Map(&r.row, r.params)
	return key, keep, nil
}

func (r *userRows) fileName() string {
	if int(r.file) < len(r.files) {
		return r.files[r.file].name
	}
	return fmt.Sprintf("file %d", r.file)
}

// Row implements feature.Rows.
func (r *userRows) Row() *feature.Row { return &r.row }

// Columns implements feature.ColumnRows: the current row and the rest of
// its block, when the block holds the built-in features' amounts and
// times as numbers and no Map or --tz is to see the rows one by one.
func (r *userRows) Columns(c *feature.Columns) bool {
	if r.spec.Map != nil || r.tz != nil || r.inv[0] < 0 || r.inv[1] < 0 || r.inv[2] < 0 {
		return false
	}
	blk, i := r.src.Block()
	ka := slices.Index(blk.AmountColumns(), r.inv[0])
	kt := slices.Index(blk.TimeColumns(), r.inv[2])
	if ka < 0 || kt < 0 {
		return false
	}
	raw, starts, ends, same, ok := blk.Text(r.inv[1])
	if !ok {
		return false
	}
	units, scale := blk.Units(ka)
	n := blk.Len() - i
	*c = feature.Columns{N: n, Units: units[i:], Scale: scale, Seconds: blk.SecondsColumn(kt)[i:], Text: raw, Same: same, Encoding: r.row.Encoding}
	if starts != nil {
		c.Starts, c.Ends = starts[i:], ends[i:]
	}
	r.rows += int64(n - 1)
	r.src.SkipBlock()
	return true
}

// Err implements feature.Rows.
func (r *userRows) Err() error { return r.err }

// Schema implements feature.Rows.
func (r *userRows) Schema() *feature.Schema { return r.spec.Schema }

// readColumns returns the store columns a worker decodes: those the
// Spec reads (Spec.Reads) and the user column, or nil (every column) when
// the Spec does not say.
func readColumns(s *feature.Spec, cfg store.Config) []int {
	if len(s.Reads) == 0 {
		return nil
	}
	out := []int{cfg.UserIndex()}
	for _, k := range storeColumns(s.Reads, cfg) {
		if k != out[0] {
			out = append(out, k)
		}
	}
	return out
}

// storeColumns returns the store columns of the names, each once (the
// user column's too).
func storeColumns(names []string, cfg store.Config) []int {
	var out []int
	for _, name := range names {
		for k, c := range cfg.Schema {
			if strings.EqualFold(c, strings.TrimSpace(name)) && !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return out
}

// schemaColumns maps the Spec's schema onto the store's columns: the
// store column of each schema column, or nil when they are the same.
func schemaColumns(s *feature.Schema, cfg store.Config) ([]int, error) {
	if !strings.EqualFold(s.UserName(), cfg.UserColumn) {
		return nil, fmt.Errorf("the feature set groups by column %q but the store is grouped by %q", s.UserName(), cfg.UserColumn)
	}
	cols := make([]int, s.Len())
	same := s.Len() == len(cfg.Schema)
	for i, name := range s.Columns() {
		j := -1
		for k, c := range cfg.Schema {
			if strings.EqualFold(c, name) {
				j = k
				break
			}
		}
		if j < 0 {
			return nil, fmt.Errorf("the feature set reads column %q, which the store does not hold (its columns: %v)", name, cfg.Schema)
		}
		cols[i] = j
		same = same && i == j
	}
	if same {
		return nil, nil
	}
	return cols, nil
}
