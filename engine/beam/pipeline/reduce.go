package pipeline

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/mce-engine/mce/engine/feature"
)

// ErrOutOfOrder is returned when a runner hands a group's rows to the
// Reduce out of file order. Beam does not promise any order of a
// GroupByKey's values; Prism keeps the order in which a file's reader
// emitted them, which is file order. Options.SortValues (--sort-values)
// sorts each user's rows in memory instead of streaming them.
var ErrOutOfOrder = errors.New("the runner delivered the rows out of file order (run with --sort-values)")

// reduceFn runs a Reduce Spec (or a mergeable one whose Aggregator cannot
// be encoded) on one user's grouped rows: they reach the Spec through a
// feature.Rows that reads Beam's iterator as the Reduce asks, one row at
// a time, without holding the user's rows.
type reduceFn struct {
	Spec       string
	Params     feature.Params
	Files      []string
	SortValues bool

	spec    *feature.Spec
	rec     *feature.Record
	rows    iterRows
	scratch []byte
	user    feature.User
}

func (f *reduceFn) Setup() error {
	var err error
	if f.spec, err = lookup(f.Spec); err != nil {
		return err
	}
	f.rec = f.spec.NewRecord()
	f.rows.row.Schema = f.spec.Schema
	f.rows.row.Fields = make([][]byte, f.spec.Schema.Len())
	return nil
}

func (f *reduceFn) ProcessElement(key []byte, values func(*[]byte) bool, emit func(int, []byte)) error {
	file, _, user, err := parseGroupKey(key)
	if err != nil {
		return err
	}
	next := values
	if f.SortValues {
		next = sortedValues(values)
	}
	f.rows.reset(next)
	f.user = feature.User{Key: user, File: fileName(f.Files, file), Params: f.Params}
	if err := f.spec.ReduceUser(&f.user, &f.rows, f.rec); err != nil {
		if errors.Is(err, ErrOutOfOrder) {
			err = fmt.Errorf("%w: line %d of %s came after line %d of %s",
				ErrOutOfOrder, f.rows.bad.line, fileName(f.Files, f.rows.bad.file), f.rows.last.line, fileName(f.Files, f.rows.last.file))
		}
		return userError(UserError{File: fileName(f.Files, file), User: string(user), Op: "reduce", Err: err})
	}
	// Drain what the Reduce did not read: Beam wants the iterator
	// consumed, and an error in the rows must not pass unseen.
	for f.rows.Next() {
	}
	if err := f.rows.Err(); err != nil {
		return userError(UserError{File: fileName(f.Files, file), User: string(user), Op: "reduce", Err: err})
	}
	var line []byte
	line, f.scratch = appendRecord(nil, f.scratch, user, f.rec)
	emit(file, appendKeyedLine(nil, user, line))
	return nil
}

// place is a row's position: its file, then its line.
type place struct {
	file int
	line int64
}

func (a place) before(b place) bool {
	return a.file < b.file || a.file == b.file && a.line < b.line
}

// iterRows is a feature.Rows over Beam's iterator of encoded rows. It
// checks that the rows come in file order.
type iterRows struct {
	next      func(*[]byte) bool
	row       feature.Row
	buf       []byte
	last, bad place
	started   bool
	err       error
}

func (r *iterRows) reset(next func(*[]byte) bool) {
	r.next, r.started, r.err = next, false, nil
}

// Next implements feature.Rows.
func (r *iterRows) Next() bool {
	if r.err != nil || !r.next(&r.buf) {
		return false
	}
	h, err := decodeRow(r.buf, &r.row)
	if err != nil {
		r.err = err
		return false
	}
	p := place{h.file, h.line}
	if r.started && !r.last.before(p) {
		r.bad, r.err = p, ErrOutOfOrder
		return false
	}
	r.last, r.started = p, true
	return true
}

// Row implements feature.Rows.
func (r *iterRows) Row() *feature.Row { return &r.row }

// Err implements feature.Rows.
func (r *iterRows) Err() error { return r.err }

// Schema implements feature.Rows.
func (r *iterRows) Schema() *feature.Schema { return r.row.Schema }

// sortedValues reads all of a group's rows and returns an iterator over
// them in file order: the user's rows are held in memory.
func sortedValues(values func(*[]byte) bool) func(*[]byte) bool {
	type item struct {
		p place
		b []byte
	}
	var items []item
	var b []byte
	for values(&b) {
		h, _, _, err := decodeHead(b)
		if err != nil {
			continue // decodeRow reports it when the row is read
		}
		items = append(items, item{place{h.file, h.line}, b})
		b = nil
	}
	slices.SortFunc(items, func(x, y item) int {
		if c := cmp.Compare(x.p.file, y.p.file); c != 0 {
			return c
		}
		return cmp.Compare(x.p.line, y.p.line)
	})
	i := 0
	return func(out *[]byte) bool {
		if i >= len(items) {
			return false
		}
		*out = items[i].b
		i++
		return true
	}
}
