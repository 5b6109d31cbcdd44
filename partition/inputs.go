package partition

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/mce-engine/mce/internal/csvread"
)

// input is one file to consider.
type input struct {
	path    string
	name    string // the file's identity in the store
	size    int64
	modTime time.Time
}

// listInputs expands the inputs and names each file: its path relative to
// the directory it was found under, or its base name when given as a file.
// Two files with the same name are an error.
func listInputs(paths []string) ([]input, error) {
	var out []input
	byName := map[string]string{}
	for _, root := range paths {
		ins, err := csvread.ListInputs([]string{root})
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(root)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", root, err)
		}
		for _, in := range ins {
			name := filepath.Base(in.Path)
			if st.IsDir() {
				rel, err := filepath.Rel(root, in.Path)
				if err != nil {
					return nil, fmt.Errorf("input %s: %w", in.Path, err)
				}
				name = filepath.ToSlash(rel)
			}
			if other, ok := byName[name]; ok {
				if sameFile(other, in.Path) {
					continue
				}
				return nil, fmt.Errorf("inputs %s and %s have the same name %q in the store; give them in separate directories", other, in.Path, name)
			}
			byName[name] = in.Path
			fi, err := os.Stat(in.Path)
			if err != nil {
				return nil, fmt.Errorf("input %s: %w", in.Path, err)
			}
			out = append(out, input{path: in.Path, name: name, size: fi.Size(), modTime: fi.ModTime().UTC()})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].size != out[j].size {
			return out[i].size > out[j].size
		}
		return out[i].name < out[j].name
	})
	return out, nil
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// Fingerprint kinds. A fingerprint is "<kind>:<16 hex digits>".
//
//   - "xs1" (the default) is xxHash64 of the file's size and of 16 samples
//     of 64 KiB spread evenly over the file, the first at its start and the
//     last at its end (the whole file when it is at most 1 MiB). It costs
//     1 MiB of reading per file whatever its size, and catches appended,
//     truncated and rewritten files; an edit that keeps the size and
//     touches none of the samples goes unnoticed (use FullHash).
//   - "xxh64" is xxHash64 of all the bytes (Options.FullHash).
const (
	fpSampled = "xs1"
	fpFull    = "xxh64"

	fpSamples     = 16
	fpSampleBytes = 64 << 10
)

// Fingerprint returns the content fingerprint of the file at path, of the
// given kind ("xs1" or "xxh64").
func Fingerprint(path, kind string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("fingerprint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("fingerprint: %w", err)
	}
	size := st.Size()
	h := xxhash.New()
	switch kind {
	case fpFull:
		if _, err := io.Copy(h, f); err != nil {
			return "", fmt.Errorf("fingerprint %s: %w", path, err)
		}
	case fpSampled:
		var sz [8]byte
		binary.LittleEndian.PutUint64(sz[:], uint64(size))
		h.Write(sz[:])
		if size <= fpSamples*fpSampleBytes {
			if _, err := io.Copy(h, f); err != nil {
				return "", fmt.Errorf("fingerprint %s: %w", path, err)
			}
			break
		}
		buf := make([]byte, fpSampleBytes)
		step := (size - fpSampleBytes) / (fpSamples - 1)
		for i := int64(0); i < fpSamples; i++ {
			off := i * step
			if i == fpSamples-1 {
				off = size - fpSampleBytes
			}
			if _, err := f.ReadAt(buf, off); err != nil {
				return "", fmt.Errorf("fingerprint %s: %w", path, err)
			}
			h.Write(buf)
		}
	default:
		return "", fmt.Errorf("unknown fingerprint kind %q", kind)
	}
	return fmt.Sprintf("%s:%016x", kind, h.Sum64()), nil
}

// fingerprintKind returns the kind of a recorded fingerprint.
func fingerprintKind(fp string) string {
	k, _, _ := strings.Cut(fp, ":")
	return k
}
