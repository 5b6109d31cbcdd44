// Package fileid owns the names mce gives files: an input's base name
// without its compression suffix, whether a name is compressed, and the
// features file each input gets in a run folder. `mce run`, `mce
// partition` (which records inputs by that base name) and `mce reduce`
// (which writes the same names as run) all name files here, so the modes
// can be compared file by file.
package fileid

import (
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FeaturesSuffix ends the name of every features file.
const FeaturesSuffix = ".features.csv"

// compressed are the compression suffixes a name loses, in the order they
// are cut ("a.csv.zst.gz" -> "a.csv").
var compressed = []string{".gz", ".zst", ".zstd"}

// Base returns path's file name without its folder and without its
// compression suffixes: "data/jan.csv.gz" -> "jan.csv". The suffixes are
// matched as written (lower case), as every run folder has named them.
func Base(path string) string {
	b := filepath.Base(path)
	for _, z := range compressed {
		b = strings.TrimSuffix(b, z)
	}
	return b
}

// Compressed reports whether Base cuts a compression suffix from path's
// name.
func Compressed(path string) bool { return Base(path) != filepath.Base(path) }

// RawEstimate is about the raw bytes of the input file path of size bytes
// on disk: its size, or ten times that when it is compressed (whose raw
// size is not known before it is read).
func RawEstimate(path string, size int64) int64 {
	if Compressed(path) {
		return 10 * size
	}
	return size
}

// FeaturesName returns the features file's name for an input path.
func FeaturesName(input string) string { return Base(input) + FeaturesSuffix }

// Namer hands out features file names that are unique in one run folder:
// a second "jan.csv" from another folder gets "jan.csv-2.features.csv".
type Namer struct{ used map[string]bool }

// Name returns the next unique features file name for input.
func (n *Namer) Name(input string) string {
	if n.used == nil {
		n.used = map[string]bool{}
	}
	base := Base(input)
	name := base + FeaturesSuffix
	for k := 2; n.used[name]; k++ {
		name = base + "-" + strconv.Itoa(k) + FeaturesSuffix
	}
	n.used[name] = true
	return name
}

// ExactBytes returns name's bytes when JSON cannot carry name as text (it
// is not UTF-8: encoding/json writes each such byte as U+FFFD), else nil:
// the value of the base64 "…_bytes" field that records beside the name
// (a task, a store's file entry, reduce's file reference).
func ExactBytes(name string) []byte {
	if utf8.ValidString(name) {
		return nil
	}
	return []byte(name)
}

// FromJSON returns the name a record held: its exact bytes when it has
// them (ExactBytes), else its text.
func FromJSON(text string, exact []byte) string {
	if exact != nil {
		return string(exact)
	}
	return text
}
