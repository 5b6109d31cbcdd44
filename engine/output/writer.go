package output

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/mce-engine/mce/engine/feature"
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
// A Writer is not safe for concurrent use. Errors are sticky: after one,
// every Write returns it.
type Writer struct {
	spec     *feature.Spec
	o        Options
	bw       *bufio.Writer
	inputKey string

	started bool   // the header was read
	pending []byte // the start of a line not yet whole
	fields  [][]byte
	scratch []byte // unquoted fields
	enc     *parquetEncoder
	lines   int64
	err     error
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
	return &Writer{spec: spec, o: o, bw: bufio.NewWriterSize(w, 1<<20)}, nil
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
	if w.enc == nil {
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
		enc, err := newParquetEncoder(w.bw, w.spec, key, w.o.RowGroupRows)
		if err != nil {
			return w.fail(err)
		}
		w.enc = enc
		w.fields = make([][]byte, 1+len(w.spec.Columns))
		return nil
	}
	if _, err := w.bw.WriteString(header(w.spec, key)); err != nil {
		return w.fail(err)
	}
	return nil
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

// line splits one line into its unquoted fields and encodes them.
func (w *Writer) line(b []byte) error {
	w.lines++
	nf := 0
	w.scratch = w.scratch[:0]
	if bytes.IndexByte(b, '"') < 0 {
		for nf < len(w.fields) {
			i := bytes.IndexByte(b, ',')
			if i < 0 {
				w.fields[nf] = b
				nf++
				b = nil
				break
			}
			w.fields[nf] = b[:i]
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
				w.scratch = append(w.scratch, '"')
				i++
			case c == '"':
				quoted = !quoted
			case !quoted && c == ',':
				ends = append(ends, len(w.scratch))
			default:
				w.scratch = append(w.scratch, c)
			}
			i++
		}
		ends = append(ends, len(w.scratch))
		lo := 0
		for _, e := range ends {
			if nf < len(w.fields) {
				w.fields[nf] = w.scratch[lo:e]
			}
			nf++
			lo = e
		}
	}
	if nf != len(w.fields) {
		return w.fail(fmt.Errorf("BUG: output: line %d of the table has %d fields, want %d", w.lines, nf, len(w.fields)))
	}
	if err := w.enc.record(w.fields); err != nil {
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
	return nil
}
