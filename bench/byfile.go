package bench

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"

	"github.com/mce-engine/mce/internal/gen"
)

// PerFile is a system's features kept on disk and read back one input
// file at a time (the file's stem, FileStem): the gate then holds one
// file's features of the reference and of one system, whatever the
// number and size of the files. At 2 GB of data the bench itself held
// 3.2 GiB with every system's features whole, 1,000 MiB with one system's
// at a time beside the reference's, and 288–310 MiB file by file (88
// MiB at 300 MB, against 214).
type PerFile struct {
	System string
	Fields FieldSet
	// Stems are the input files the features have rows of, sorted.
	Stems []string
	// Read reads the rows of one input file; a stem not in Stems has
	// none.
	Read func(stem string) (*Features, error)
}

// All reads every file's rows into one Features.
func (p *PerFile) All() (*Features, error) {
	all := &Features{System: p.System, Fields: p.Fields, Rows: map[Key]*Value{}}
	for _, stem := range p.Stems {
		fs, err := p.Read(stem)
		if err != nil {
			return nil, err
		}
		maps.Copy(all.Rows, fs.Rows)
	}
	return all, nil
}

// stemsOf returns the stems of every source, sorted, each once.
func stemsOf(srcs ...*PerFile) []string {
	set := map[string]bool{}
	for _, p := range srcs {
		for _, s := range p.Stems {
			set[s] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// CompareFiles is Compare, input file by input file: it holds one file's
// features of each side at a time. A side that does not read is an error
// naming it.
func CompareFiles(ref, got *PerFile, relTol float64) error {
	e := &MismatchError{Ref: ref.System, System: got.System, Compared: ref.Fields & got.Fields}
	for _, stem := range stemsOf(ref, got) {
		w, err := ref.Read(stem)
		if err != nil {
			return fmt.Errorf("%s's features: %w", ref.System, err)
		}
		g, err := got.Read(stem)
		if err != nil {
			return fmt.Errorf("%s's features: %w", got.System, err)
		}
		e.add(w, g, relTol)
	}
	if e.Count > 0 {
		return e
	}
	return nil
}

// MCEFiles keeps the features files of an mce run or reduce output
// directory (OUT/JOB<n>: one <file>.features.csv per input file) for
// reading back file by file.
func MCEFiles(system, dir string) (*PerFile, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.features.csv"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no *.features.csv files", dir)
	}
	slices.Sort(paths)
	byStem := map[string][]string{}
	for _, p := range paths {
		stem := FileStem(p)
		byStem[stem] = append(byStem[stem], p)
	}
	return &PerFile{
		System: system, Fields: AllFields, Stems: slices.Sorted(maps.Keys(byStem)),
		Read: func(stem string) (*Features, error) {
			fs := &Features{System: system, Fields: AllFields, Rows: map[Key]*Value{}}
			for _, p := range byStem[stem] {
				if err := readFeatureCSV(fs, p, stem); err != nil {
					return nil, err
				}
			}
			return fs, nil
		},
	}, nil
}

// splitFiles keeps a features CSV of every input file (the DuckDB
// script's, the sort | awk baseline's, the truth) for reading back file by
// file: it writes its rows into one CSV per input file under dir, named by
// the file's stem. The file of a row is its "file" column when header is
// set (the first line names the columns; without such a column every row
// is of the stem ""), else its first field. read reads one of those CSVs
// (ReadDuckDBOutput, ReadUnixOutput), so its errors name the split CSV,
// in dir.
func splitFiles(system string, fields FieldSet, path, dir string, header bool, read func(path string) (*Features, error)) (*PerFile, error) {
	paths, err := splitByFile(path, dir, header)
	if err != nil {
		return nil, err
	}
	return &PerFile{
		System: system, Fields: fields, Stems: slices.Sorted(maps.Keys(paths)),
		Read: func(stem string) (*Features, error) {
			p, ok := paths[stem]
			if !ok {
				return &Features{System: system, Fields: fields, Rows: map[Key]*Value{}}, nil
			}
			return read(p)
		},
	}, nil
}

// splitByFile does splitFiles' writing into dir, made anew: it returns
// each stem's CSV.
func splitByFile(path, dir string, header bool) (map[string]string, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	in, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	type part struct {
		f *os.File
		w *csv.Writer
	}
	parts := map[string]*part{}
	paths := map[string]string{}
	closeAll := func() error {
		var errs []error
		for _, p := range parts {
			p.w.Flush()
			errs = append(errs, p.w.Error(), p.f.Close())
		}
		return errors.Join(errs...)
	}
	var head []string
	fileCol := 0
	if header {
		rec, err := r.Read()
		if err != nil {
			return nil, fmt.Errorf("%s: header: %w", path, err)
		}
		head = slices.Clone(rec)
		fileCol = -1
		for i, h := range head {
			if columnName(h) == "file" {
				fileCol = i
			}
		}
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		stem := ""
		if fileCol >= 0 && fileCol < len(rec) {
			stem = FileStem(rec[fileCol])
		}
		p := parts[stem]
		if p == nil {
			name := filepath.Join(dir, url.PathEscape(stem)+".csv")
			f, err := os.Create(name)
			if err != nil {
				closeAll()
				return nil, err
			}
			p = &part{f: f, w: csv.NewWriter(f)}
			parts[stem], paths[stem] = p, name
			if head != nil {
				p.w.Write(head)
			}
		}
		p.w.Write(rec)
	}
	if err := closeAll(); err != nil {
		return nil, fmt.Errorf("split %s by input file: %w", path, err)
	}
	return paths, nil
}

// TruthFiles keeps the generator's truth file at path (gen.TruthFile in
// the data's truth folder: good rows and their total per file and user)
// for reading back file by file, split into dir.
func TruthFiles(path, dir string) (*PerFile, error) {
	if err := truthName(path); err != nil {
		return nil, err
	}
	return splitFiles("truth", TruthFields, path, dir, true, readTruthCSV)
}

// truthName checks that path names a truth file.
func truthName(path string) error {
	if filepath.Base(path) != gen.TruthFile {
		return fmt.Errorf("truth file %s: want a file named %s", path, gen.TruthFile)
	}
	return nil
}

// readTruthCSV reads a CSV of truth.csv's format.
func readTruthCSV(path string) (*Features, error) {
	fs := &Features{System: "truth", Fields: TruthFields, Rows: map[Key]*Value{}}
	err := gen.EachTruthIn(path, func(t gen.Truth) error {
		// Amounts here are in units of 1e-4; the truth keeps cents.
		fs.Rows[Key{File: FileStem(t.File), User: t.User}] = &Value{Set: TruthFields, Count: t.Rows, Total: t.AmountCents * 100}
		return nil
	})
	return fs, err
}
