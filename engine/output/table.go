package output

import (
	"fmt"

	"github.com/mce-engine/mce/engine/feature"
)

// Table is a features file being written: a Writer onto a File, so that
// the table appears under its final name whole or not at all. It is how
// `mce run` and `mce reduce` write every output, in every format.
type Table struct {
	w      *Writer
	file   *File
	closed bool
}

// CreateTable starts the features file final (see Format.Name for its
// name) of spec, as o says.
func CreateTable(final string, spec *feature.Spec, o Options) (*Table, error) {
	f, err := Create(final)
	if err != nil {
		return nil, err
	}
	w, err := NewWriter(f, spec, o)
	if err != nil {
		f.Abort()
		return nil, err
	}
	return &Table{w: w, file: f}, nil
}

// Writer returns the table's Writer, which takes the table's lines.
func (t *Table) Writer() *Writer { return t.w }

// Name returns the final name.
func (t *Table) Name() string { return t.file.Name() }

// Write implements io.Writer (see Writer.Write).
func (t *Table) Write(p []byte) (int, error) { return t.w.Write(p) }

// WriteString implements io.StringWriter.
func (t *Table) WriteString(s string) (int, error) { return t.w.WriteString(s) }

// Close ends the table (its last rows, a Parquet file's footer) and
// writes it out, leaving to Commit only the wait for the disk (File.Commit:
// the fsync, the rename). On an error the temporary file is removed.
func (t *Table) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	if err := t.w.Close(); err != nil {
		t.file.Abort()
		return fmt.Errorf("write %s: %w", t.file.Name(), err)
	}
	return nil
}

// Commit ends the table (Close) and renames it to its final name
// (File.Commit).
func (t *Table) Commit() error {
	if err := t.Close(); err != nil {
		return err
	}
	return t.file.Commit()
}

// Abort removes the temporary file unless Commit was called.
func (t *Table) Abort() { t.file.Abort() }
