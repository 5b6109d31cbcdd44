package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
)

// outputPart is what the writer leaves beside a features file in the
// job's temporary folder: the file's name and counts, read back by the
// launcher to commit the job and write its summary.
type outputPart struct {
	Output string      `json:"output"`
	Users  int64       `json:"users"`
	Inputs []FileStats `json:"inputs"`
}

// partSuffix ends the name of an outputPart in the temporary folder.
const partSuffix = ".part.json"

// writeFn writes one features file: every user's line of one input (or
// of all of them, across files), sorted by user key as `mce run` sorts
// them, under `mce run`'s name, into the job's temporary folder. The
// launcher moves it into the output folder once the whole job has
// succeeded.
type writeFn struct {
	Spec    string
	TempDir string
	Outputs []string // features file name per input; one name across files
}

func (f *writeFn) ProcessElement(ctx context.Context, file int, lines func(*[]byte) bool, stats func(*FileStats) bool) error {
	spec, err := lookup(f.Spec)
	if err != nil {
		return err
	}
	name := f.Outputs[0]
	if file >= 0 {
		name = f.Outputs[file]
	}
	type keyed struct{ key, line []byte }
	var all []keyed
	var b []byte
	for lines(&b) {
		key, line, err := parseKeyedLine(b)
		if err != nil {
			return err
		}
		all = append(all, keyed{key, line})
		b = nil
	}
	slices.SortFunc(all, func(x, y keyed) int { return bytes.Compare(x.key, y.key) })
	for i := 1; i < len(all); i++ {
		if bytes.Equal(all[i-1].key, all[i].key) {
			return fmt.Errorf("BUG: %s: user %q has two lines", name, all[i].key)
		}
	}
	part := outputPart{Output: name, Users: int64(len(all))}
	var st FileStats
	for stats(&st) {
		part.Inputs = append(part.Inputs, st)
		st = FileStats{}
	}
	slices.SortFunc(part.Inputs, func(x, y FileStats) int { return x.File - y.File })
	for i := range part.Inputs {
		part.Inputs[i].Output = name
	}
	err = writeFile(ctx, joinPath(f.TempDir, name), func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		if _, err := bw.WriteString(header(spec)); err != nil {
			return err
		}
		for _, k := range all {
			if _, err := bw.Write(k.line); err != nil {
				return err
			}
		}
		return bw.Flush()
	})
	if err != nil {
		return err
	}
	js, err := json.Marshal(part)
	if err != nil {
		return err
	}
	return writeFile(ctx, joinPath(f.TempDir, name+partSuffix), func(w io.Writer) error {
		_, err := w.Write(js)
		return err
	})
}

// byFileFn keys a combined user's line by its file (-1 across files).
func byFileFn(key, line []byte) (int, []byte, error) {
	file, _, _, err := parseGroupKey(key)
	return file, line, err
}

// statsByFileFn keys a file's stats by the file, or by -1 across files
// (where they go with the one output).
type statsByFileFn struct {
	AcrossFiles bool
}

func (f *statsByFileFn) ProcessElement(st FileStats) (int, FileStats) {
	if f.AcrossFiles {
		return -1, st
	}
	return st.File, st
}

// joinPath joins a folder and a name, for local paths and remote ones.
func joinPath(dir, name string) string {
	if isRemote(dir) {
		return path.Join(dir, name)
	}
	return filepath.Join(dir, name)
}

// writeFile writes a file whole through write. A local file is written
// under a temporary name, synced and renamed, so that a worker that dies
// leaves no partial file under the name; a remote object is committed by
// its file system when closed (GCS and S3 objects appear whole).
func writeFile(ctx context.Context, p string, write func(io.Writer) error) error {
	if isRemote(p) {
		fsys, err := filesystem.New(ctx, p)
		if err != nil {
			return err
		}
		defer fsys.Close()
		w, err := fsys.OpenWrite(ctx, p)
		if err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := write(w); err != nil {
			w.Close()
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		return nil
	}
	tmp := p + tempSuffix + strconv.FormatInt(time.Now().UnixNano(), 36)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}
