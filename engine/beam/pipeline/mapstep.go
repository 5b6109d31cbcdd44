package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/mce-engine/mce/engine/feature"
)

var (
	droppedRows = beam.NewCounter(metricsNamespace, "dropped_rows")
	hotRows     = beam.NewCounter(metricsNamespace, "hot_rows")
)

// mapFn is the Spec's Map step: it drops rows or gives them another key
// (then the key inside the encoded row is replaced too), and it keys every
// row for the shuffle (a group key: file, salt, user).
//
// For a mergeable Spec it also spreads hot users: once a user has more
// than HotRows rows in its file and more than HotShare of the file's rows
// seen so far, its further rows are dealt round-robin over Fanout
// sub-keys (salts), each combined on its own, so that no single combine
// receives a bank's 13% of the rows; the partial aggregates are merged
// afterwards (see combine.go). The counts are per bundle: a runner that
// cuts a file's rows into several bundles only spreads them less, the
// result is the same.
type mapFn struct {
	Spec        string
	Params      feature.Params
	Files       []string // the inputs' base names, for errors
	AcrossFiles bool
	Fanout      int // sub-keys of a hot user; <= 1 disables the fan-out
	HotRows     int64
	HotShare    float64

	spec   *feature.Spec
	row    feature.Row
	key    []byte
	counts map[string]int64 // rows per group key (salt 0) in this bundle
	totals map[int]int64    // rows per file in this bundle
}

func (f *mapFn) Setup() error {
	var err error
	if f.spec, err = lookup(f.Spec); err != nil {
		return err
	}
	f.row.Schema = f.spec.Schema
	f.row.Fields = make([][]byte, f.spec.Schema.Len())
	return nil
}

// StartBundle starts the bundle's counts. (Beam wants the emitter in its
// signature too.)
func (f *mapFn) StartBundle(_ func([]byte, []byte)) {
	f.counts = map[string]int64{}
	f.totals = map[int]int64{}
}

func (f *mapFn) ProcessElement(ctx context.Context, b []byte, emit func([]byte, []byte)) error {
	h, err := decodeRow(b, &f.row)
	if err != nil {
		return err
	}
	key := h.key
	if f.spec.Map != nil {
		k, keep, err := f.callMap(h)
		if err != nil {
			return err
		}
		if !keep {
			droppedRows.Inc(ctx, 1)
			return nil
		}
		if k != nil {
			if k = feature.KeyUTF8(k, f.row.Encoding); string(k) != string(h.key) {
				// A fresh buffer: the row is emitted and may be kept.
				b = rekey(nil, h, f.row.Encoding, k, f.row.Fields)
				key = k
			}
		}
	}
	file := h.file
	if f.AcrossFiles {
		file = -1
	}
	salt := 0
	if f.Fanout > 1 && f.spec.Mergeable() {
		salt = f.salt(ctx, file, key)
	}
	emit(appendGroupKey(nil, file, salt, key), b)
	return nil
}

// salt counts the row and returns its sub-key: 0 until its user is hot.
func (f *mapFn) salt(ctx context.Context, file int, key []byte) int {
	f.key = appendGroupKey(f.key[:0], file, 0, key)
	n := f.counts[string(f.key)] + 1
	f.counts[string(f.key)] = n
	total := f.totals[file] + 1
	f.totals[file] = total
	if n <= f.HotRows || float64(n) <= f.HotShare*float64(total) {
		return 0
	}
	hotRows.Inc(ctx, 1)
	return int(n % int64(f.Fanout))
}

// callMap runs the Spec's Map on the decoded row, turning a panic into a
// *UserError that names the file, the line and the user.
func (f *mapFn) callMap(h rowHead) (key []byte, keep bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = userError(UserError{File: f.fileName(h.file), User: string(h.key), Line: h.line, Op: "map",
				Err: &feature.PanicError{Value: v, Stack: string(debug.Stack())}})
		}
	}()
	key, keep = f.spec.Map(&f.row, f.Params)
	return key, keep, nil
}

func (f *mapFn) fileName(i int) string { return fileName(f.Files, i) }

// fileName returns the base name of input i, or "" across files.
func fileName(files []string, i int) string {
	if i < 0 || i >= len(files) {
		return ""
	}
	return files[i]
}

// UserError is an error or a panic of the feature code on one user (in
// Reduce or an Aggregator) or on one row (in Map). It fails the job; its
// text is what the runner reports.
type UserError struct {
	File string // the input's base name; "" for a user across files
	User string
	Line int64  // the row's line, where there is one (Map, Aggregator.Add)
	Op   string // "map", "add", "merge", "finish" or "reduce"
	Err  error
}

func (e *UserError) Error() string {
	file := e.File
	if file == "" {
		file = "all files"
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: user %q: %s: %v", file, e.Line, e.User, e.Op, e.Err)
	}
	return fmt.Sprintf("%s: user %q: %s: %v", file, e.User, e.Op, e.Err)
}

func (e *UserError) Unwrap() error { return e.Err }

// userError returns e, after logging the stack of a panic: only the
// error's text reaches the launcher through the runner.
func userError(e UserError) error {
	if pe, ok := errors.AsType[*feature.PanicError](e.Err); ok {
		slog.Error("feature code panicked", "file", e.File, "user", e.User, "op", e.Op, "panic", pe.Value, "stack", pe.Stack)
	}
	return &e
}
