package hugemem

import (
	"errors"
	"io"
)

// errReleased is what a Writer's methods return after its Release.
var errReleased = errors.New("BUG: hugemem: write after Release")

// Writer is a bufio.Writer whose buffer comes from MiB and goes back there
// once it is written (Release): a cluster writes a features table per
// file, and a new buffer for each was fresh memory each time (see
// Buffers). It is not safe for concurrent use; errors are sticky.
type Writer struct {
	w   io.Writer
	buf []byte
	err error
}

// NewWriter returns a Writer onto w with a buffer of MiB.Size() bytes.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, buf: MiB.Get()}
}

// Write implements io.Writer.
func (b *Writer) Write(p []byte) (int, error) {
	if len(b.buf) == 0 && len(p) >= cap(b.buf) && b.err == nil {
		// Nothing buffered and a big write: straight through.
		n, err := b.w.Write(p)
		b.err = err
		return n, err
	}
	return fill(b, p)
}

// WriteString implements io.StringWriter.
func (b *Writer) WriteString(s string) (int, error) { return fill(b, s) }

// fill appends p to b's buffer, flushing it each time it is full.
func fill[S string | []byte](b *Writer, p S) (int, error) {
	n := 0
	for len(p) > 0 && b.err == nil {
		m := min(len(p), cap(b.buf)-len(b.buf))
		b.buf = append(b.buf, p[:m]...)
		n += m
		p = p[m:]
		if len(b.buf) == cap(b.buf) {
			b.Flush()
		}
	}
	return n, b.err
}

// Flush writes what is buffered.
func (b *Writer) Flush() error {
	if b.err != nil || len(b.buf) == 0 {
		return b.err
	}
	n, err := b.w.Write(b.buf)
	if err == nil && n < len(b.buf) {
		err = io.ErrShortWrite
	}
	b.err = err
	b.buf = b.buf[:0]
	return err
}

// Release gives the buffer back to MiB, unflushed; every later call
// returns an error. A Writer never released leaves its buffer out of MiB
// (a failed write's, typically), which is harmless: MiB makes others.
func (b *Writer) Release() {
	if b.buf != nil {
		MiB.Put(b.buf)
	}
	b.buf, b.w, b.err = nil, nil, errReleased
}
