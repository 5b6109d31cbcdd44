package output

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TempSuffix ends the name of an output while it is being written. A file
// with this suffix is never a result; --resume removes it.
const TempSuffix = ".tmp"

// File is a file written under a temporary name and renamed to its final
// name only when complete (Commit), so that a killed writer never leaves a
// partial file under the final name.
//
// A File starts the write-back of what it has written every
// writeBehindBytes (sync_file_range on Linux), so that the disk writes
// while the writer computes the rest, and Commit's fsync waits only for
// the last stretch: at the end of a run that wait is time no CPU works.
type File struct {
	f          *os.File
	final, tmp string
	closed     bool
	written    int64 // bytes written
	flushed    int64 // bytes whose write-back has been started
	// scratch: no write-back, no syncs (CreateScratch).
	scratch bool
}

// writeBehindBytes is how much a File writes before it starts the
// write-back of it.
const writeBehindBytes = 1 << 20

// Create starts writing the file final (as final+TempSuffix).
func Create(final string) (*File, error) {
	tmp := final + TempSuffix
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create output: %w", err)
	}
	return &File{f: f, final: final, tmp: tmp}, nil
}

// CreateScratch is Create for a file that is read back in the same run
// and checked when read after a crash (a reduce's part file, which holds
// a checksum of itself): it starts no write-back, and Publish, not Commit,
// renames it without waiting for the disk. While the machine is up, the
// file is under its final name whole or not at all, as with Commit; after
// a power cut it may be missing or short or hold zeros, which its reader
// must tell.
func CreateScratch(final string) (*File, error) {
	o, err := Create(final)
	if err == nil {
		o.scratch = true
	}
	return o, err
}

// Name returns the final name.
func (o *File) Name() string { return o.final }

// Write implements io.Writer.
func (o *File) Write(p []byte) (int, error) {
	n, err := o.f.Write(p)
	o.written += int64(n)
	if o.written-o.flushed >= writeBehindBytes && !o.scratch {
		// A hint: an error here shows again in Commit's fsync.
		_ = startWriteBack(o.f, o.flushed, o.written-o.flushed)
		o.flushed = o.written
	}
	return n, err
}

// Commit syncs the file, renames it to its final name and syncs the folder.
func (o *File) Commit() error {
	o.closed = true
	if err := o.f.Sync(); err != nil {
		o.f.Close()
		os.Remove(o.tmp)
		return fmt.Errorf("output not saved: %w", err) // err names the file: "sync PATH: ..."
	}
	if err := o.closeRename(); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(o.final))
}

// Publish closes the file and renames it to its final name, syncing
// neither: for a file made by CreateScratch. (A part file's fsync left
// both CPUs of a 2-core `mce reduce` idle for 17 ms between its phases,
// at 300 MB.)
func (o *File) Publish() error {
	o.closed = true
	return o.closeRename()
}

// closeRename closes the file and renames it to its final name; on an
// error the temporary file is removed.
func (o *File) closeRename() error {
	if err := o.f.Close(); err != nil {
		os.Remove(o.tmp)
		return fmt.Errorf("output not saved: %w", err)
	}
	if err := os.Rename(o.tmp, o.final); err != nil {
		os.Remove(o.tmp)
		return fmt.Errorf("rename output: %w", err)
	}
	return nil
}

// Abort removes the temporary file unless Commit or Publish was called.
func (o *File) Abort() {
	if o.closed {
		return
	}
	o.closed = true
	o.f.Close()
	os.Remove(o.tmp)
}

// WriteFileAtomic writes data to path through a synced temporary file and a
// rename.
func WriteFileAtomic(path string, data []byte) error {
	o, err := Create(path)
	if err != nil {
		return err
	}
	if _, err := o.Write(data); err != nil {
		o.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return o.Commit()
}

// SyncDir syncs a folder, so that a rename in it survives a power cut.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err) // err names the folder: "sync DIR: ..."
	}
	return nil
}

// RemoveTemps removes leftover temporary outputs in dir (files, and
// scratch folders whose names end in TempSuffix) and returns their names.
func RemoveTemps(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), TempSuffix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return removed, err
			}
			removed = append(removed, e.Name())
		}
	}
	return removed, nil
}

// ScratchName is the name of a scratch folder that belongs to the output
// final (its temporary files through disk): RemoveTemps and RemoveOf
// remove it with the output's temporary file.
func ScratchName(final, what string) string { return final + "." + what + TempSuffix }

// RemoveOf removes the temporary file of the output final and its
// scratch folders.
func RemoveOf(final string) {
	os.Remove(final + TempSuffix)
	m, _ := filepath.Glob(globEscape(final) + ".*" + TempSuffix)
	for _, p := range m {
		os.RemoveAll(p)
	}
}

// globEscape quotes the pattern characters of a path for filepath.Glob.
func globEscape(p string) string {
	var b strings.Builder
	for _, c := range p {
		if c == '*' || c == '?' || c == '[' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
