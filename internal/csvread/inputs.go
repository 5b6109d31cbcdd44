package csvread

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mce-engine/mce/internal/fileid"
)

// Input is a file to read.
type Input struct {
	Path string
	Size int64 // bytes on disk
}

// dataExts are the names of data files, before any compression suffix.
var dataExts = []string{".csv", ".tsv", ".txt"}

// IsDataFile reports whether a file name looks like input data: .csv, .tsv
// or .txt, possibly followed by .gz or .zst (any case).
func IsDataFile(name string) bool {
	name = fileid.Base(strings.ToLower(name))
	for _, e := range dataExts {
		if strings.HasSuffix(name, e) {
			return true
		}
	}
	return false
}

// ListInputs expands paths into the input files: a file is taken as it is,
// whatever its name; a directory is walked recursively for data files (see
// IsDataFile), skipping hidden files and directories (names starting with
// '.') and names starting with '_' (like _SUCCESS markers and the
// generator's _truth.csv). A path that does not exist is an error naming it. The inputs are
// sorted by size, largest first (by path on a tie), each listed once.
func ListInputs(paths []string) ([]Input, error) {
	var ins []Input
	seen := make(map[string]bool)
	add := func(path string, size int64) {
		key := filepath.Clean(path)
		if abs, err := filepath.Abs(path); err == nil {
			key = abs
		}
		if seen[key] {
			return
		}
		seen[key] = true
		ins = append(ins, Input{Path: path, Size: size})
	}
	for _, root := range paths {
		st, err := os.Stat(root)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("input %s: no such file or directory", root)
			}
			return nil, fmt.Errorf("input %s: %w", root, err)
		}
		if !st.IsDir() {
			add(root, st.Size())
			continue
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("list %s: %w", path, err)
			}
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || !IsDataFile(name) {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("list %s: %w", path, err)
			}
			if !info.Mode().IsRegular() {
				if info, err = os.Stat(path); err != nil || !info.Mode().IsRegular() {
					return nil // a dangling link or a device
				}
			}
			add(path, info.Size())
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.SliceStable(ins, func(i, j int) bool {
		if ins[i].Size != ins[j].Size {
			return ins[i].Size > ins[j].Size
		}
		return ins[i].Path < ins[j].Path
	})
	return ins, nil
}
