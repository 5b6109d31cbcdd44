package main

import (
	"errors"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/internal/beamrun"
)

// beamCommand is `mce beam`: the same features on Apache Beam.
func beamCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "beam",
		Usage:     "compute the same per-user features as an Apache Beam pipeline (Prism here; Dataflow, Flink, Spark there)",
		ArgsUsage: "--out DIR [flags] FILE|DIR...",
		Description: `Compiles the features (--features f.go, or the built-in set) with mce's Beam module into a
pipeline binary, cached like --features (the first build compiles the Beam SDK: minutes; then
seconds), and runs it. Each input file is read whole with mce's reader; the features files in
--out have the names and bytes mce run gives. They appear only when the whole job succeeded,
with summary.json (rows and bad rows per file) written last.

Flags:
  --features FILE       a Go file declaring var Features = feature.Spec{...} (default: built-in)
  --param key=value     passed to the feature functions (repeatable)
  --runner NAME         prism (default: in this process), universal (a job server: Flink,
                        Spark or Prism, with --endpoint) or dataflow
  --endpoint HOST:PORT  the job server
  --across-files        one features file with one line per user over all the files
  --out DIR             where the features files go (must hold no earlier results)
  --delimiter, --encoding, --alias, --user-col, --max-bad-rows   as for mce run
  --fanout N, --hot-rows N, --hot-share F   hot-user fan-out of mergeable features
  --sort-values         sort each user's rows in memory (runners that reorder them)
Any other flag goes to Beam as it is, written --name=value (--environment_type=LOOPBACK,
--project=..., --region=..., --temp_location=gs://...).

Examples:
  mce beam --out out data/
  mce beam --features f.go --param min_amount=100 --out out data/
  mce beam --runner universal --endpoint localhost:8099 --environment_type=LOOPBACK --out out data/
  mce beam --runner dataflow --project=P --region=us-central1 --temp_location=gs://b/tmp \
           --out gs://b/out gs://b/data/`,
		SkipFlagParsing: true,
		Action: func(c *ucli.Context) error {
			args := c.Args().Slice()
			if beamrun.WantsHelp(args) {
				return ucli.ShowCommandHelp(c.Lineage()[1], c.Command.Name)
			}
			o, err := beamrun.ParseArgs(args)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			o.Logger = env.Logger
			err = beamrun.Run(c.Context, o)
			if ee, ok := errors.AsType[*beamrun.ExitError](err); ok {
				return &ExitError{Code: ee.Code} // the pipeline said why
			}
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			return nil
		},
	}
}
