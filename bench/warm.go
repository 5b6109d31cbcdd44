package bench

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// The report says every run starts with a warm page cache, and a run's
// inputs were just written or read by the run before. Some VMs evict file
// pages anyway, with gigabytes of memory free (one such VM lost 2% of a
// file read 45 s before, and nearly all of the 300 MB data 15 minutes
// after its bench), so that a run reads part of its input from the
// virtual disk. Before each measured run, warmInputs counts the bytes of
// the run's inputs the page cache holds and reads the files it does not
// hold whole, and the report gives the share that was cached.

// warmStats is what warmInputs found: the inputs' bytes and how many of
// them the page cache held before it read the others.
type warmStats struct {
	Bytes, Cached int64
}

func (w *warmStats) add(o warmStats) { w.Bytes += o.Bytes; w.Cached += o.Cached }

// share returns the percentage of the bytes that were cached (100 for
// none).
func (w warmStats) share() float64 {
	if w.Bytes == 0 {
		return 100
	}
	return 100 * float64(w.Cached) / float64(w.Bytes)
}

// warmInputs warms the files at paths (files, or folders read
// recursively) and returns what it found.
func warmInputs(paths []string) (warmStats, error) {
	var st warmStats
	buf := make([]byte, 1<<20)
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // a file a run removed meanwhile
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			f, err := warmFile(path, buf)
			st.add(f)
			return err
		})
		if err != nil {
			return st, fmt.Errorf("warm the inputs: %w", err)
		}
	}
	return st, nil
}

// warmFile reads the file at path unless the page cache holds all of it.
func warmFile(path string, buf []byte) (warmStats, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return warmStats{}, nil
		}
		return warmStats{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return warmStats{}, err
	}
	st := warmStats{Bytes: fi.Size()}
	if st.Bytes == 0 {
		return st, nil
	}
	cached, ok := cachedBytes(f, st.Bytes)
	if ok {
		st.Cached = cached
		if cached == st.Bytes {
			return st, nil
		}
	}
	for {
		if _, err := f.Read(buf); err == io.EOF {
			return st, nil
		} else if err != nil {
			return st, fmt.Errorf("%s: %w", path, err)
		}
	}
}
