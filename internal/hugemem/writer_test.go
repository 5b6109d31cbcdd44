package hugemem

import (
	"bufio"
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// TestWriter writes the same bytes in the same random pieces (Write and
// WriteString, small and bigger than the buffer) through a Writer and
// a bufio.Writer of the same size: the destinations get the same bytes.
func TestWriter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	size := MiB.Size()
	for round := range 8 {
		var got, want bytes.Buffer
		bw := NewWriter(&got)
		ref := bufio.NewWriterSize(&want, size)
		for range 1 + rng.IntN(40) {
			n := rng.IntN(size / 4)
			if rng.IntN(8) == 0 {
				n = size + rng.IntN(size) // bigger than the buffer
			}
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			if rng.IntN(2) == 0 {
				if m, err := bw.Write(p); m != n || err != nil {
					t.Fatalf("round %d: Write(%d bytes) = %d, %v", round, n, m, err)
				}
				ref.Write(p)
			} else {
				if m, err := bw.WriteString(string(p)); m != n || err != nil {
					t.Fatalf("round %d: WriteString(%d bytes) = %d, %v", round, n, m, err)
				}
				ref.WriteString(string(p))
			}
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		ref.Flush()
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("round %d: %d bytes written, want %d (or they differ)", round, got.Len(), want.Len())
		}
		bw.Release()
	}
}

// TestWriter_error: the destination's error comes back, and stays.
func TestWriter_error(t *testing.T) {
	boom := errors.New("disk full")
	tests := []struct {
		name  string
		write func(b *Writer) error
	}{
		{"a small write, then Flush", func(b *Writer) error { b.Write([]byte("abc")); return b.Flush() }},
		{"a write bigger than the buffer", func(b *Writer) error {
			_, err := b.Write(make([]byte, 2*cap(b.buf)))
			return err
		}},
		{"strings filling the buffer", func(b *Writer) error {
			s := string(make([]byte, cap(b.buf)/3))
			for range 4 {
				b.WriteString(s)
			}
			return b.err
		}},
		{"a short write", func(b *Writer) error {
			b.w = shortWriter{}
			b.Write([]byte("abc"))
			return b.Flush()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewWriter(failWriter{boom})
			defer b.Release()
			err := tt.write(b)
			if err == nil {
				t.Fatal("no error")
			}
			if _, again := b.Write([]byte("x")); !errors.Is(again, err) {
				t.Errorf("the next Write: %v, want %v", again, err)
			}
			if again := b.Flush(); !errors.Is(again, err) {
				t.Errorf("Flush: %v, want %v", again, err)
			}
		})
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

// TestWriter_afterRelease: a Writer released errs, and puts nothing back
// twice.
func TestWriter_afterRelease(t *testing.T) {
	var dst bytes.Buffer
	w := NewWriter(&dst)
	w.WriteString("abc")
	w.Release()
	w.Release()
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Release: no error")
	}
	if _, err := w.WriteString("x"); err == nil {
		t.Error("WriteString after Release: no error")
	}
	if err := w.Flush(); err == nil {
		t.Error("Flush after Release: no error")
	}
	if dst.Len() != 0 {
		t.Errorf("%d bytes reached the destination, none were flushed", dst.Len())
	}
}
