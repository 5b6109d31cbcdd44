package output

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/hugemem"
)

// Writer writes one features table in the format its Options ask for. It
// takes the table as every mode makes it, CSV bytes in any chunks: the
// header line Header(spec), then one line per user as AppendRecord made
// it, in key order (WriteSorted, or reduce's merge). For CSV it passes the
// lines through unchanged, with its own header (the key column named as
// the Options say); for Parquet it reads each line back into typed
// columns. So the features are formatted once, by AppendRecord, whatever
// the format, and a Parquet table holds exactly the values of the CSV one.
//
// What the input was is told before the first Write: SetInputKeyName
// (the key column's name, see Options.ResolveKeyName) and SetLocalTimes
// (times without a zone: the CSV lines are then rewritten, their times'
// "Z" dropped, unless the job asked LinesFor and made its lines without
// it, which the Writer then passes as they are).
//
// A Writer is not safe for concurrent use. Errors are sticky: after one,
// every Write returns it.
type Writer struct {
	spec     *feature.Spec
	o        Options
	bw       *hugemem.Writer
	inputKey string
	local    bool // SetLocalTimes
	// localLines: the lines' times come without their "Z" (LinesFor),
	// so a CSV table of local times passes them as they are.
	localLines bool

	started bool        // the header was read
	pending []byte      // the start of a line not yet whole
	scratch []byte      // a line of local times
	split   lineSplit   // Parquet's lines into fields
	enc     lineEncoder // Parquet's; nil for CSV
	// localTimes, for a CSV table of local times, says which fields
	// (the key first) are times, whose "Z" appendLocalLine drops; nil:
	// CSV lines are passed through.
	localTimes []bool
	lines      int64
	err        error
}

// NewWriter returns a Writer of the table of spec onto w, which it
// buffers. Close ends the table; it does not close w.
func NewWriter(w io.Writer, spec *feature.Spec, o Options) (*Writer, error) {
	if o.Format == "" {
		o.Format = CSV
	}
	if _, err := ParseFormat(string(o.Format)); err != nil {
		return nil, err
	}
	if o.KeyName != "" {
		if err := checkKeyAgainst(o.KeyName, spec); err != nil {
			return nil, err
		}
	}
	if o.RowGroupRows <= 0 {
		o.RowGroupRows = DefaultRowGroupRows
	}
	return &Writer{spec: spec, o: o, bw: hugemem.NewWriter(w)}, nil
}

// SetInputKeyName gives the name the input's header gave its user column,
// which names the key column under Options.KeyFromInput. It must come
// before the first Write.
func (w *Writer) SetInputKeyName(name string) {
	if w.started {
		w.fail(errors.New("BUG: output: SetInputKeyName after the header"))
		return
	}
	w.inputKey = name
}

// SetLocalTimes says that the table's times are wall-clock times, read
// without a zone (csvread.Stats.Zoneless): CSV then writes them without
// one ("2024-03-01T10:11:12", where AppendRecord wrote
// "2024-03-01T10:11:12Z") and Parquet as TIMESTAMP(isAdjustedToUTC=false)
// instead of an instant in UTC. It must come before the first Write.
func (w *Writer) SetLocalTimes(local bool) {
	if w.started {
		w.fail(errors.New("BUG: output: SetLocalTimes after the header"))
		return
	}
	w.local = local
}

// KeyName returns the name the key column gets.
func (w *Writer) KeyName() string { return w.o.ResolveKeyName(w.spec, w.inputKey) }

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

// WriteString implements io.StringWriter.
func (w *Writer) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// Write takes the next bytes of the table.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	if !w.started {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.pending = append(w.pending, p...)
			return n, nil
		}
		w.pending = append(w.pending, p[:i+1]...)
		p = p[i+1:]
		if err := w.start(); err != nil {
			return 0, err
		}
	}
	if w.enc == nil && w.localTimes == nil {
		if _, err := w.bw.Write(p); err != nil {
			return 0, w.fail(err)
		}
		return n, nil
	}
	if err := w.parseLines(p); err != nil {
		return 0, err
	}
	return n, nil
}

// start checks the header line held in pending and writes the table's own.
func (w *Writer) start() error {
	w.started = true
	got := w.pending
	w.pending = w.pending[:0]
	if want := Header(w.spec); string(got) != want {
		return w.fail(fmt.Errorf("BUG: output: the table starts with %q, want the header %q", got, want))
	}
	key := w.KeyName()
	if err := checkKeyAgainst(key, w.spec); err != nil {
		return w.fail(err)
	}
	if w.o.Format == Parquet {
		w.split = newLineSplit(w.spec)
		enc, err := newParquetEncoder(w.bw, w.spec, key, w.o.RowGroupRows, w.local)
		if err != nil {
			return w.fail(err)
		}
		w.enc = enc
		return nil
	}
	if _, err := w.bw.WriteString(header(w.spec, key)); err != nil {
		return w.fail(err)
	}
	if w.local && !w.localLines && hasTimes(w.spec) {
		w.localTimes = timeFields(w.spec)
	}
	return nil
}

// lineEncoder takes the table's lines, split into unquoted fields (the
// key first), when they cannot be passed through (Parquet).
type lineEncoder interface {
	record(fields [][]byte) error
	close() error
}

func hasTimes(spec *feature.Spec) bool {
	for _, c := range spec.Columns {
		if c.Type == feature.TypeTime {
			return true
		}
	}
	return false
}

// timeFields says which fields of spec's lines (the key first) are times.
func timeFields(spec *feature.Spec) []bool {
	t := make([]bool, 1+len(spec.Columns))
	for i, c := range spec.Columns {
		t[i+1] = c.Type == feature.TypeTime
	}
	return t
}

// appendLocalLine appends line (as AppendRecord made it, without its
// newline) and a newline, with the "Z" of its time fields dropped:
// AppendRecord writes a time in UTC, "2024-03-01T10:11:12Z", which for a
// time read without a zone is its wall clock; without the "Z" it says no
// more than the input did. Every other byte is kept: a time is never
// quoted, and the fields are only walked (a quoted one to its closing
// quote), not unquoted and quoted again. times is timeFields' (its length
// the number of fields, which the line must have).
func appendLocalLine(dst, line []byte, times []bool) ([]byte, error) {
	f, start := 0, 0
	for i := 0; ; f++ {
		if i < len(line) && line[i] == '"' {
			for i++; i < len(line); i++ {
				if line[i] == '"' {
					if i+1 < len(line) && line[i+1] == '"' {
						i++
						continue
					}
					i++
					break
				}
			}
		}
		end := len(line)
		if k := bytes.IndexByte(line[i:], ','); k >= 0 {
			end = i + k
		}
		field := line[start:end]
		if f < len(times) && times[f] {
			field = bytes.TrimSuffix(field, []byte{'Z'})
		}
		dst = append(dst, field...)
		if end == len(line) {
			break
		}
		dst = append(dst, ',')
		start, i = end+1, end+1
	}
	if f+1 != len(times) {
		return dst, fmt.Errorf("has %d fields, want %d", f+1, len(times))
	}
	return append(dst, '\n'), nil
}

// parseLines hands every whole line of pending+p to the encoder and keeps
// the rest in pending. A line ends at a newline outside quotes: one that
// follows an even number of quotes in the line.
func (w *Writer) parseLines(p []byte) error {
	data := p
	if len(w.pending) > 0 {
		w.pending = append(w.pending, p...)
		data = w.pending
	}
	start, from := 0, 0
	for {
		i := bytes.IndexByte(data[from:], '\n')
		if i < 0 {
			break
		}
		end := from + i
		if bytes.Count(data[start:end], []byte{'"'})%2 != 0 {
			from = end + 1 // a line break inside a quoted field
			continue
		}
		if err := w.line(data[start:end]); err != nil {
			return err
		}
		start, from = end+1, end+1
	}
	rest := data[start:]
	if len(w.pending) > 0 {
		w.pending = w.pending[:copy(w.pending, rest)]
	} else {
		w.pending = append(w.pending, rest...)
	}
	return nil
}

// line writes one line of a CSV table of local times, or splits it into
// its unquoted fields for the encoder.
func (w *Writer) line(b []byte) error {
	w.lines++
	if w.localTimes != nil {
		var err error
		if w.scratch, err = appendLocalLine(w.scratch[:0], b, w.localTimes); err != nil {
			return w.fail(fmt.Errorf("BUG: output: line %d of the table %w", w.lines, err))
		}
		if _, err := w.bw.Write(w.scratch); err != nil {
			return w.fail(err)
		}
		return nil
	}
	if err := w.split.line(b); err != nil {
		return w.fail(fmt.Errorf("BUG: output: line %d of the table %w", w.lines, err))
	}
	if err := w.enc.record(w.split.fields); err != nil {
		return w.fail(err)
	}
	return nil
}

// lineSplit splits a line as AppendRecord made it (no newline) into its
// unquoted fields, in fields (made with the table's number of fields).
type lineSplit struct {
	fields  [][]byte
	scratch []byte // unquoted fields
}

func newLineSplit(spec *feature.Spec) lineSplit {
	return lineSplit{fields: make([][]byte, 1+len(spec.Columns))}
}

// line splits b into s.fields, which alias b or s.scratch until the next
// call.
func (s *lineSplit) line(b []byte) error {
	nf := 0
	s.scratch = s.scratch[:0]
	if bytes.IndexByte(b, '"') < 0 {
		for nf < len(s.fields) {
			i := bytes.IndexByte(b, ',')
			if i < 0 {
				s.fields[nf] = b
				nf++
				b = nil
				break
			}
			s.fields[nf] = b[:i]
			nf++
			b = b[i+1:]
		}
		if b != nil {
			nf++ // more fields than columns
		}
	} else {
		// Unquote into scratch; fields are sliced out once it stops
		// growing.
		var ends []int
		quoted, i := false, 0
		for i < len(b) {
			c := b[i]
			switch {
			case quoted && c == '"' && i+1 < len(b) && b[i+1] == '"':
				s.scratch = append(s.scratch, '"')
				i++
			case c == '"':
				quoted = !quoted
			case !quoted && c == ',':
				ends = append(ends, len(s.scratch))
			default:
				s.scratch = append(s.scratch, c)
			}
			i++
		}
		ends = append(ends, len(s.scratch))
		lo := 0
		for _, e := range ends {
			if nf < len(s.fields) {
				s.fields[nf] = s.scratch[lo:e]
			}
			nf++
			lo = e
		}
	}
	if nf != len(s.fields) {
		return fmt.Errorf("has %d fields, want %d", nf, len(s.fields))
	}
	return nil
}

// csvLines says how lines as AppendRecord made them become this CSV
// table's bytes, once its header is written: passed as they are
// (localTimes nil), or through appendLocalLine with localTimes. ok is
// false for Parquet, whose encoder takes the lines one by one through
// Write. WriteSorted uses it to encode lines on many goroutines and hand
// the bytes to writeCSV.
func (w *Writer) csvLines() (localTimes []bool, ok bool) {
	if w.err != nil || !w.started || len(w.pending) > 0 || w.o.Format != CSV {
		return nil, false
	}
	return w.localTimes, true
}

// writeCSV writes whole lines of the table made as csvLines said.
func (w *Writer) writeCSV(p []byte, lines int) error {
	if w.err != nil {
		return w.err
	}
	w.lines += int64(lines)
	if _, err := w.bw.Write(p); err != nil {
		return w.fail(err)
	}
	return nil
}

// Close ends the table (a header alone when no line came; the Parquet
// footer) and flushes it to the destination.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if !w.started {
		if len(w.pending) == 0 {
			w.pending = append(w.pending, Header(w.spec)...)
		}
		if err := w.start(); err != nil {
			return err
		}
	}
	if w.enc != nil {
		if len(w.pending) > 0 {
			return w.fail(fmt.Errorf("BUG: output: the table ends inside a line (%d bytes)", len(w.pending)))
		}
		if err := w.enc.close(); err != nil {
			return w.fail(err)
		}
	}
	if err := w.bw.Flush(); err != nil {
		return w.fail(err)
	}
	w.err = errors.New("output: write after Close")
	// Every method checks w.err first: the buffer is no longer used.
	w.bw.Release()
	w.bw = nil
	return nil
}
