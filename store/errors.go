package store

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
)

// CorruptError reports damaged data found while reading a store: the
// damaged file when pebble names it, what was being read, and pebble's
// reason. It matches ErrCorrupt (errors.Is) and unwraps to pebble's error.
//
// NB: pebble's own corruption errors span lines (a detail carrier after a
// newline, a stack trace with %+v); Error gives one line.
type CorruptError struct {
	Store string // the store directory
	File  string // the damaged file, "" when pebble does not say
	Op    string // what was being read ("scan shard 3", "read user \"X\"")
	Err   error
}

func (e *CorruptError) Error() string {
	where := e.Store
	if e.File != "" {
		where = e.File
	}
	return fmt.Sprintf("%v: %s: %s: %s", ErrCorrupt, where, e.Op, firstLine(e.Err))
}

// Is makes errors.Is(err, ErrCorrupt) hold.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func (e *CorruptError) Unwrap() error { return e.Err }

// ReadError reports a store read that failed for another reason than
// damaged data (an I/O error, a cancelled context): which store, what was
// being read. It unwraps to the cause.
type ReadError struct {
	Store string
	Op    string
	Err   error
}

func (e *ReadError) Error() string {
	return fmt.Sprintf("store %s: %s: %s", e.Store, e.Op, firstLine(e.Err))
}

func (e *ReadError) Unwrap() error { return e.Err }

// readErr names the store and what was read in err, and turns pebble's
// corruption errors into a *CorruptError. It keeps nil and errors already
// made here as they are.
func (db *DB) readErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *CorruptError
	var re *ReadError
	switch {
	case errors.As(err, &ce), errors.As(err, &re):
		return err
	case pebble.IsCorruptionError(err):
		c := &CorruptError{Store: db.dir, Op: op, Err: err}
		if info := pebble.ExtractDataCorruptionInfo(err); info != nil {
			c.File = info.Path
		}
		return c
	}
	return &ReadError{Store: db.dir, Op: op, Err: err}
}

// logCorruption is pebble's DataCorruption listener: it logs each damaged
// file once, in one line (the read that met it returns the error).
func (db *DB) logCorruption(info pebble.DataCorruptionInfo) {
	if _, seen := db.corrupt.LoadOrStore(info.Path, true); seen {
		return
	}
	rel, err := filepath.Rel(db.dir, info.Path)
	if err != nil {
		rel = info.Path
	}
	db.logger.Error("damaged file in the store", "file", rel, "error", firstLine(info.Details))
}

// firstLine is err's text up to its first line break.
func firstLine(err error) string {
	if err == nil {
		return ""
	}
	return firstLineOf(err.Error())
}

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// isIOError reports whether err came from the operating system (or a
// filesystem that acts like it) rather than from the data.
func isIOError(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	if errors.Is(err, fs.ErrNotExist) {
		return false // a file of the database is missing: damage
	}
	return errors.As(err, &pe) || errors.As(err, &errno)
}
