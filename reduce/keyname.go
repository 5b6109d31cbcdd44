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
	// files, gives it). It is called at planning for --key-name input,
	// and only for a file of a store made before partition kept that name
	// (store.FileEntry.UserHeader): the input file must then still be
	// where partition read it.
	UserHeader func(path string) (string, error)
	// TZ is the zone of the times the store holds without one (--tz):
	// they are read as times of that zone, and every time is then
	// written as an instant in UTC. "" leaves them as partition read them.
	TZ string
}

// sectionOutput is how one output section is written: the name of its
// key column ("": the default) and whether its times are local.
type sectionOutput struct {
	keyName string
	local   bool
}

// sectionOutputs returns how each output is written: one per file of
// files in order, or one for them all across files.
//
// The key column is named as output.Options.ResolveKeyName says, with
// the name the input's header gave the user column, which the store
// keeps per file. Across files, the files must give the same name (else
// the default, "user"; --key-name input then fails). A file of an older
// store, which did not keep the name, counts as unnamed, unless
// --key-name input asks for its header to be read again.
//
// A section's times are local (written without a zone) when every one of
// its files had no zone in its times, and no --tz gives them one.
func sectionOutputs(files []store.FileEntry, spec *feature.Spec, across bool, out Outputs) ([]sectionOutput, error) {
	names := make([]string, len(files))
	if out.KeyName == "" && spec.KeyName == "" {
		for i, f := range files {
			names[i] = f.UserHeader
			if names[i] != "" || !out.KeyFromInput {
				continue
			}
			if out.UserHeader == nil {
				return nil, errors.New("BUG: reduce: --key-name input without a header reader")
			}
			name, err := out.UserHeader(f.Path)
			if err != nil {
				return nil, fmt.Errorf("--key-name input: the name of the user column of %s is in its header, which this store (made by an older mce partition) does not keep: %w; give --key-name NAME, or partition the file again", f.Name, err)
			}
			names[i] = name
		}
	}
	local := func(fs []store.FileEntry) bool {
		if out.TZ != "" || len(fs) == 0 {
			return false
		}
		for _, f := range fs {
			if !f.LocalTimes {
				return false
			}
		}
		return true
	}
	if !across {
		outs := make([]sectionOutput, len(files))
		for i := range files {
			outs[i] = sectionOutput{keyName: resolvedKey(out, spec, names[i]), local: local(files[i : i+1])}
		}
		return outs, nil
	}
	name := output.CommonKeyName(names)
	if name == "" && out.KeyFromInput && out.KeyName == "" && spec.KeyName == "" {
		for i, f := range files {
			if !strings.EqualFold(names[i], names[0]) {
				return nil, fmt.Errorf("--key-name input: the files name their user column differently (%s: %q, %s: %q), and --across-files writes one table; give --key-name NAME", files[0].Name, names[0], f.Name, names[i])
			}
		}
	}
	return []sectionOutput{{keyName: resolvedKey(out, spec, name), local: local(files)}}, nil
}

// resolvedKey is the key column's name as the merge task is to write it:
// "" when it is the default without an input name (the Spec's KeyName,
// else "user"), so that plans of stores that keep no names stay as they
// were.
func resolvedKey(out Outputs, spec *feature.Spec, input string) string {
	if input == "" && out.KeyName == "" {
		return ""
	}
	return out.Options.ResolveKeyName(spec, input)
}
