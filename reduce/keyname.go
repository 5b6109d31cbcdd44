package reduce

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/store"
)

// Outputs says how reduce writes its features files.
type Outputs struct {
	output.Options
	// UserHeader returns the name the header of the input file at path
	// gives its user column (csvread.UserHeader: cmd/mce, which reads raw
	// files, gives it). It is called at planning, for KeyFromInput only:
	// the store keeps the rows, not the header, so the input files must
	// still be where partition read them.
	UserHeader func(path string) (string, error)
}

// keyNames returns the name of each output's key column: one per file of
// files in order, or one for them all across files; "" keeps the
// default (the Spec's KeyName, else "user").
func keyNames(files []store.FileEntry, spec *feature.Spec, across bool, out Outputs) ([]string, error) {
	keys := make([]string, max(len(files), 1))
	switch {
	case out.KeyName != "":
		for i := range keys {
			keys[i] = out.KeyName
		}
		return keys, nil
	case !out.KeyFromInput || spec.KeyName != "":
		return keys, nil
	case out.UserHeader == nil:
		return nil, errors.New("BUG: reduce: --key-name input without a header reader")
	}
	for i, f := range files {
		name, err := out.UserHeader(f.Path)
		if err != nil {
			return nil, fmt.Errorf("--key-name input: the name of the user column of %s is in its header, which the store does not keep: %w; give --key-name NAME", f.Name, err)
		}
		keys[i] = name
	}
	if across {
		for i, f := range files {
			if !strings.EqualFold(keys[i], keys[0]) {
				return nil, fmt.Errorf("--key-name input: the files name their user column differently (%s: %q, %s: %q), and --across-files writes one table; give --key-name NAME", files[0].Name, keys[0], f.Name, keys[i])
			}
		}
	}
	return keys, nil
}
