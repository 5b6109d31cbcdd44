package pipeline

// This file is the only one that knows where mce keeps the format of its
// features files (the header, the lines: engine/output; the output names:
// engine/filejob and internal/fileid): the pipeline writes what `mce run`
// writes by calling the same functions.

import (
	"path/filepath"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/filejob"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/internal/fileid"
)

// header returns a features file's header line, `user,<columns>\n`.
func header(spec *feature.Spec) string { return output.Header(spec) }

// appendRecord appends one features line (the key, every feature of rec,
// '\n') to dst; scratch is reused for formatting.
func appendRecord(dst, scratch, key []byte, rec *feature.Record) (line, scratchOut []byte) {
	return output.AppendRecord(dst, scratch, key, rec)
}

// Names of the files the pipeline writes.
const (
	featuresSuffix = fileid.FeaturesSuffix
	tempSuffix     = output.TempSuffix
	// acrossFilesOutput is the one features file of AcrossFiles, named as
	// `mce reduce --across-files` names it (reduce.AcrossFilesOutput).
	acrossFilesOutput = "across_files" + fileid.FeaturesSuffix
)

// outputNames returns each input's features file name as `mce run` names
// it, in the order of inputs (a second "jan.csv" from another folder
// writes "jan.csv-2.features.csv").
func outputNames(inputs []csvread.Input) ([]string, error) {
	tasks, err := filejob.PlanInputs(inputs)
	if err != nil {
		return nil, err
	}
	byInput := make(map[string]string, len(tasks))
	for _, t := range tasks {
		byInput[t.Input] = t.Output
	}
	names := make([]string, len(inputs))
	for i, in := range inputs {
		abs, err := filepath.Abs(in.Path) // as PlanInputs keys its tasks
		if err != nil {
			return nil, err
		}
		names[i] = byInput[abs]
	}
	return names, nil
}
