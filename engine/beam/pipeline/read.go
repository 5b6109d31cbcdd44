package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/csvread"
)

// inputFile is one element of the read: one whole file.
type inputFile struct {
	Index int    // position in the job's list of inputs
	Path  string // a local path, or a gs:// or s3:// object
}

// FileStats is what reading one input found.
type FileStats struct {
	File    int    `json:"-"`
	Input   string `json:"input"`
	Output  string `json:"output"`
	Bytes   int64  `json:"bytes"` // uncompressed bytes read
	Rows    int64  `json:"rows"`  // good rows
	BadRows int64  `json:"bad_rows"`
	// UserHeader is the name the input's header gives its user column,
	// and LocalTimes whether its times had no zone (csvread's
	// Stats.Zoneless): they say how its features file is written, as
	// `mce run` writes it.
	UserHeader string `json:"user_header,omitempty"`
	LocalTimes bool   `json:"local_times,omitempty"`
	// BadRowSamples are the first bad rows, as `mce run`'s summary has them.
	BadRowSamples []string `json:"bad_row_samples,omitempty"`
}

// ReaderOptions are csvread's options that can travel to the workers (the
// schema is the Spec's).
type ReaderOptions struct {
	Delimiter      byte
	Encoding       feature.Encoding
	Aliases        map[string][]string
	MaxBadRowShare float64 // 0: csvread's default (1%); negative: never fail
	// Decimal, DateFormat, TZ and OnBadValue are mce run's --decimal,
	// --date-format, --tz and --on-bad-value: amounts and dates are
	// checked and read in each file's convention, as mce run reads them.
	Decimal, DateFormat, TZ, OnBadValue string
}

func (o ReaderOptions) csvread(schema *feature.Schema) csvread.Options {
	return csvread.Options{Schema: schema, Delimiter: o.Delimiter, Encoding: o.Encoding,
		Aliases: o.Aliases, MaxBadRowShare: o.MaxBadRowShare, CheckValues: true,
		Decimal: o.Decimal, DateFormat: o.DateFormat, TZ: o.TZ, OnBadValue: o.OnBadValue}
}

var (
	rowsRead = beam.NewCounter(metricsNamespace, "rows")
	badRows  = beam.NewCounter(metricsNamespace, "bad_rows")
)

// readFn reads one input file whole with mce's reader (csvread: the
// delimiter, aliases, cp1252, gzip and zstd, quoted newlines, bad rows) and
// emits its good rows, encoded, in file order, then the file's FileStats.
// A file is never cut into byte ranges: a quoted field may hold newlines,
// so only a reader that has seen everything before a point knows whether
// a record starts there.
type readFn struct {
	Spec    string
	Reader  ReaderOptions
	Parsers int // csvread's parser goroutines per file

	spec *feature.Spec
}

func (f *readFn) Setup() error {
	var err error
	f.spec, err = lookup(f.Spec)
	return err
}

// readBlock is one batch of encoded rows, in a buffer of its own.
type readBlock struct {
	seq  int64
	data []byte
	ends []int
}

func (f *readFn) ProcessElement(ctx context.Context, in inputFile, emit func([]byte), emitStats func(FileStats)) error {
	local, cleanup, err := fetchInput(ctx, in.Path)
	if err != nil {
		return err
	}
	defer cleanup()
	ropts := f.Reader.csvread(f.spec.Schema)
	ropts.Reads = f.spec.Reads // the rows carry only what the features read, as in mce run
	file, err := csvread.Open(local, ropts)
	if err != nil {
		return readErr(in.Path, err)
	}
	defer file.Close()

	// csvread parses on several goroutines and hands batches out of
	// order; Beam's emitters belong to this goroutine. The batches come
	// here through a channel and are emitted in file order.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	blocks := make(chan readBlock, 2*max(f.Parsers, 1))
	var (
		st      csvread.Stats
		scanErr error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(blocks)
		nf := f.spec.Schema.Len()
		st, scanErr = file.Scan(ctx, max(f.Parsers, 1), func(b *csvread.Batch) error {
			blk := readBlock{seq: b.Seq(), ends: make([]int, 0, b.Len())}
			lens := make([]uint32, nf)
			for i := range b.Len() {
				span := b.RowSpan(i, lens)
				blk.data = appendRow(blk.data, in.Index, b.Line(i), file.Encoding, b.User(i), lens, span)
				blk.ends = append(blk.ends, len(blk.data))
			}
			select {
			case blocks <- blk:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	pending := map[int64]readBlock{}
	var next int64
	for blk := range blocks {
		pending[blk.seq] = blk
		for {
			b, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			start := 0
			for _, end := range b.ends {
				emit(b.data[start:end:end])
				start = end
			}
		}
	}
	<-done
	if scanErr != nil {
		return readErr(in.Path, scanErr)
	}
	if len(pending) > 0 {
		return fmt.Errorf("BUG: read %s: %d batches never emitted", in.Path, len(pending))
	}
	rowsRead.Inc(ctx, st.Rows)
	badRows.Inc(ctx, st.BadRows)
	fs := FileStats{File: in.Index, Input: in.Path, Bytes: st.Bytes, Rows: st.Rows, BadRows: st.BadRows,
		UserHeader: file.UserName(), LocalTimes: st.Zoneless()}
	for _, s := range st.Samples {
		fs.BadRowSamples = append(fs.BadRowSamples, s.Error()+": "+s.Text)
	}
	emitStats(fs)
	return nil
}

// readErr names the input in a reader's error, unless it is a
// *csvread.FileError, which names it already.
func readErr(input string, err error) error {
	if _, ok := errors.AsType[*csvread.FileError](err); ok {
		return err
	}
	return fmt.Errorf("read %s: %w", input, err)
}

// isRemote reports whether p names an object of a Beam file system
// (gs://, s3://) rather than a local path.
func isRemote(p string) bool { return strings.Contains(p, "://") }

// baseName is the input's base name, as feature.User.File has it.
func baseName(p string) string {
	if isRemote(p) {
		return path.Base(p)
	}
	return filepath.Base(p)
}

// fetchInput returns a local path for the input: the path itself, or a
// copy of a remote object in a temporary folder under the object's base
// name (csvread reads local files; the copy costs the worker's disk, not
// its RAM).
func fetchInput(ctx context.Context, p string) (local string, cleanup func(), err error) {
	if !isRemote(p) {
		return p, func() {}, nil
	}
	fsys, err := filesystem.New(ctx, p)
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer fsys.Close()
	r, err := fsys.OpenRead(ctx, p)
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer r.Close()
	dir, err := os.MkdirTemp("", "mce-beam-input")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	local = filepath.Join(dir, baseName(p))
	w, err := os.Create(local)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	_, err = io.Copy(w, r)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("copy %s: %w", p, err)
	}
	return local, cleanup, nil
}
