package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/report"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/reduce"
)

// reduceCommand is `mce reduce`: features from a store made by mce
// partition, on the same clusters, logs and run folders as `mce run`.
func reduceCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "reduce",
		Usage:     "compute per-user features from a store made by mce partition (users already grouped: no parsing, no shuffle)",
		ArgsUsage: "--store STORE",
		Description: `Reads the store's users one block of rows at a time and hands each user's rows to the
same feature function mce run uses, so memory holds one block per CPU, not one user and
never one file. By default it writes one features file per input file of the store, with
the names, columns and values mce run gives for the same files and features; with
--across-files, one features file with one line per user over all the files. --files
picks some of the store's files (names as mce store info lists them, or base names).

The work runs on the clusters of mce run (--clusters, --ram-limit, --poll, recycling;
by default one cluster of all CPUs up to 4, else of all but one), in two phases: first the heavy users (split into chunks over all of a cluster's CPUs
when the feature set is mergeable) and ranges of hash shards, each task writing sorted
partial results; then one merge per output file. The run folder OUT/JOBNAME<n> holds the
features files, status.log, failure.log, ram_usage.log, timings.csv and summary.json as
for mce run, and --resume finishes an interrupted run. A feature function that fails on
a user fails that output file (failure.log names the user and the file); the others
complete.

A feature set whose Map re-keys rows (groups them under another key than the user)
cannot be computed from a store grouped by user: use mce run for it. A Map that only
drops rows (returns a nil key) is fine.

--format and --key-name work as for mce run: the store keeps the name each file's header
gives its user column (a store made by an older mce partition does not: its key column is
then user, and --key-name input reads the file's header again, so it must still be where
partition read it). Times the input wrote without a zone are written without one, as mce
run writes them; --tz ZONE reads them as times of ZONE (when partition was not given
--tz already) and writes every time as an instant in UTC.

Examples:
  mce reduce --store store --out runs
  mce reduce --store store --features f.go --param min_amount=100
  mce reduce --store store --across-files --files invoices_2024_01.csv,invoices_2024_02.csv
  mce reduce --store store --format parquet --key-name rfc
  mce reduce --store store --tz America/Mexico_City
  mce reduce --resume runs/job0`,
		Flags: append([]ucli.Flag{
			&ucli.StringFlag{Name: "store", Aliases: []string{"s"}, Usage: "the store `DIR` (made by mce partition)"},
			&ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Value: ".", Usage: "`DIR` in which the run folder JOBNAME<n> is made"},
			&ucli.StringFlag{Name: "job", Value: engine.DefaultJobName, Usage: "job `NAME`: the run folder is NAME0, NAME1, ... (never overwritten)"},
			&ucli.StringFlag{Name: "resume", Usage: "finish the interrupted run in `DIR` (a run folder of mce reduce); it keeps the cluster flags the run was given (--clusters, --ram-limit, ...) unless they are given again"},
			featuresFlag, featuresSourceFlag,
			&ucli.StringSliceFlag{Name: "param", Usage: "`key=value` passed to the feature function (repeatable)"},
			&ucli.BoolFlag{Name: "across-files", Usage: "one line per user over all the files, in one features file"},
			&ucli.StringSliceFlag{Name: "files", Usage: "only these store `FILES` (comma separated; names or base names)"},
			&ucli.StringFlag{Name: "tz", Usage: "the time `ZONE` of the times the store holds without one, e.g. America/Mexico_City (default: they stay without one)"},
		}, append(outputFlags(), clusterFlags()...)...),
		Action: func(c *ucli.Context) error {
			args, err := argsAndLateFlags(c)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if len(args) > 0 {
				return &ExitError{Code: 2, Err: fmt.Errorf("reduce takes no arguments (got %q): give the store with --store", args)}
			}
			if dir := c.String("resume"); dir != "" {
				if ok, err := resumeFeatures(c, env, dir); ok || err != nil {
					return err
				}
			} else if c.String(featuresFlag.Name) != "" && !env.FeaturesBinary {
				return execFeaturesBinary(c, env)
			}
			o, err := reduceOptions(c, env)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			go report.Warm() // while the store is opened and the clusters start
			s, err := reduce.Run(c.Context, o)
			var notes []string
			if s != nil && len(o.Engine.Clusters) > 1 && len(s.Clusters) == 1 {
				// reduce.Run logs why; on a terminal the log is in status.log only.
				notes = append(notes, fmt.Sprintf("clusters: one of %d CPUs instead of %s: the store admits one reading process at a time",
					s.Clusters[0], c.String("clusters")))
			}
			return finishRun(s, err, reduce.LastLine, reduceFiles, notes...) // counts output files, not tasks
		},
	}
}

func reduceOptions(c *ucli.Context, env *Env) (reduce.Options, error) {
	spec := env.Spec
	o := reduce.Options{
		Store: c.String("store"), Spec: &spec, Files: c.StringSlice("files"), AcrossFiles: c.Bool("across-files"),
	}
	e := &o.Engine
	e.Out, e.JobName, e.Resume = c.String("out"), c.String("job"), c.String("resume")
	if e.Resume == "" && o.Store == "" {
		return o, errors.New("reduce: give the store folder with --store (or --resume DIR)")
	}
	var err error
	if e.Params, err = feature.ParseParams(c.StringSlice("param")); err != nil {
		return o, err
	}
	if o.Output.Options, err = outputOptions(c, e.Resume); err != nil {
		return o, err
	}
	if tz := c.String("tz"); tz != "" {
		if e.Resume != "" {
			return o, fmt.Errorf("--resume %s takes no --tz (the run folder's plan has it)", e.Resume)
		}
		if _, err := time.LoadLocation(tz); err != nil {
			return o, fmt.Errorf("--tz %q: %w", tz, err)
		}
		o.Output.TZ = tz
	}
	o.Output.UserHeader = func(path string) (string, error) {
		return csvread.UserHeader(path, csvread.Options{Schema: spec.Schema})
	}
	if err := clusterOptions(c, env, e); err != nil {
		return o, err
	}
	runMemory(c, e)
	return o, nil
}

// reduceFiles counts the output files of a `mce reduce`, as reduce.LastLine
// does: its store read tasks feed them and are not counted.
func reduceFiles(s *engine.Summary) (ok, failed int) {
	for _, t := range s.Tasks {
		if strings.HasPrefix(filepath.ToSlash(t.Output), reduce.PartsDir+"/") {
			continue
		}
		switch t.Status {
		case engine.TaskDone, engine.TaskSkipped:
			ok++
		case engine.TaskFailed:
			failed++
		}
	}
	return ok, failed
}
