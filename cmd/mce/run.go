package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/filejob"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/engine/report"
	"github.com/mce-engine/mce/internal/bytesize"
	"github.com/mce-engine/mce/internal/fbuild"
	"github.com/mce-engine/mce/internal/prefork"
	"github.com/mce-engine/mce/internal/termview"
)

// runCommand is `mce run`: the Multiple Cluster Engine over raw files.
func runCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "run",
		Usage:     "compute per-user features for every input file on clusters of CPUs (the Multiple Cluster Engine)",
		ArgsUsage: "FILE|DIR...",
		Description: `Reads every input file (.csv .tsv .txt, optionally .gz or .zst; folders recursively) and
writes one features file per input: one line per user, sorted by user. Each cluster is one
worker process with --clusters' CPUs; a file is read once by one cluster, its users split
among the cluster's CPUs by a stable hash, then reduced biggest user first with work stealing.

Files are sorted by size, largest first. With --queue deque (the default, as in the original
engine) cluster 0 takes files from the large end and the other clusters from the small end,
so give cluster 0 the most CPUs; --queue fifo hands files out in size order.

Every --poll the RSS of each cluster goes to ram_usage.log; above --ram-limit idle clusters
first give back the memory they keep between files (or are recycled), and only then is the busy
cluster using the most killed (failure.log says which file), started again, and its file retried
once alone (the other clusters stopped, the whole limit its own) on its low-memory path: through
disk, sorted runs in the run folder, so a file bigger than the limit still completes. A failing file (a panic in the features, a bad file) is logged in failure.log
with its user and does not stop the others. The exit status is 1 when any file failed; the
last line says how many.

--format parquet writes <input>.features.parquet instead of .csv: typed columns (the exact
amounts as DECIMAL), zstd-compressed, with the same values. The key column is named user unless
--key-name says otherwise (input: as the input's header names its user column, e.g. issuer_id).

Each run makes a new folder OUT/JOBNAME<n> with the features files, status.log, failure.log,
ram_usage.log, timings.csv and summary.json. --resume OUT/JOBNAME<n> finishes an interrupted
run.

On a terminal stderr shows a live view (one line per cluster: file, phase, progress, MB/s,
RSS; a total with the ETA) and the log records go to status.log only (-v: to stderr too);
the run ends with a summary on stdout. Off a terminal stderr gets one log line per file
started, done, failed or retried.

Examples:
  mce run data/ --out runs --job jan --clusters 3,2,1
  mce run data/ --features f.go --param min_amount=100
  mce run data/ --format parquet --key-name input
  mce run --resume runs/jan0`,
		Flags: append(append([]ucli.Flag{
			&ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Value: ".", Usage: "`DIR` in which the run folder JOBNAME<n> is made"},
			&ucli.StringFlag{Name: "job", Value: engine.DefaultJobName, Usage: "job `NAME`: the run folder is NAME0, NAME1, ... (never overwritten)"},
			&ucli.StringFlag{Name: "resume", Usage: "finish the interrupted run in `DIR` (a run folder); no inputs then. It keeps the run's settings and the cluster flags it was given (--clusters, --queue, --ram-limit, ...) unless they are given again"},
			featuresFlag, featuresSourceFlag,
			&ucli.StringSliceFlag{Name: "param", Usage: "`key=value` passed to the feature function (repeatable)"},
			&ucli.StringFlag{Name: "mode", Value: filejob.ModeAuto, Usage: "how a cluster reduces a file: stream (one pass: each row added to its user's aggregate as it is parsed, no row kept: the fastest, RAM grows with users, not rows; mergeable feature sets such as the built-in one), group (every user's rows in RAM, then user by user: RAM about the file's size; any feature set), disk (rows grouped by user through sorted runs on local disk: RAM bounded whatever the file, about 3x slower than group), or auto: stream a mergeable set (and read a file again through disk when its users outgrow 40% of the cluster's share of --ram-limit); group any other when its rows fit the cluster's share of --ram-limit (measured on earlier files), else put it through disk. Same results in every `MODE`"},
		}, append(outputFlags(), clusterFlags()...)...), readerFlags()...),
		Action: func(c *ucli.Context) error {
			paths, err := argsAndLateFlags(c)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if dir := c.String("resume"); dir != "" {
				if ok, err := resumeFeatures(c, env, dir); ok || err != nil {
					return err
				}
			} else if c.String(featuresFlag.Name) != "" && !env.FeaturesBinary {
				return execFeaturesBinary(c, env)
			}
			opts, job, err := runOptions(c, env, paths)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			// The clusters start while the files are planned and the run
			// folder made, and the report is readied meanwhile.
			defer engine.StartEarly(&opts)()
			go report.Warm()
			if opts.Resume == "" {
				if opts.Tasks, err = filejob.PlanFormat(paths, job.Output.Format); err != nil {
					return &ExitError{Code: 1, Err: err}
				}
			}
			s, err := engine.Run(c.Context, opts)
			return finishRun(s, err, (*engine.Summary).LastLine, runFiles)
		},
	}
}

// rememberResources keeps the cluster flags the command line gave in
// o.Given, which plan.json records. On --resume a flag not given again
// takes the value the run started with, so that a resumed run keeps its
// layout and, on a shared server, its --ram-limit.
func rememberResources(c *ucli.Context, o *engine.Options) {
	var k engine.Resources // the run's, on --resume; zero: none kept
	if o.Resume != "" {
		// A run folder that cannot be read is engine.Run's to report.
		if p, err := engine.ReadPlan(o.Resume); err == nil {
			k = p.Resources
		}
	}
	g := &o.Given
	switch {
	case c.IsSet("clusters"):
		g.Clusters = o.Clusters
	case len(k.Clusters) > 0:
		o.Clusters = k.Clusters
	}
	remember(c, "queue", &o.Queue, &g.Queue, k.Queue)
	remember(c, "ram-limit", &o.RAMLimitBytes, &g.RAMLimitBytes, k.RAMLimitBytes)
	remember(c, "ram-measure", &o.RAMMeasure, &g.RAMMeasure, k.RAMMeasure)
	remember(c, "poll", &o.Poll, &g.Poll, k.Poll)
	remember(c, "recycle-after", &o.RecycleAfter, &g.RecycleAfter, k.RecycleAfter)
	remember(c, "recycle-rss", &o.RecycleRSSBytes, &g.RecycleRSSBytes, k.RecycleRSSBytes)
}

// remember records in given the value (in cur) of flag name when the
// command line set it; otherwise a kept value that is not zero replaces
// cur's default.
func remember[T comparable](c *ucli.Context, name string, cur, given *T, kept T) {
	var zero T
	switch {
	case c.IsSet(name):
		*given = *cur
	case kept != zero:
		*cur = kept
	}
}

// clusterFlags are the flags of the engine's clusters, shared by the
// commands that run on them.
func clusterFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "clusters", Usage: "`CPUS` per cluster, comma separated, e.g. 3,2,1 (default: one cluster of all CPUs up to 4 CPUs, else all but one in clusters of at most 8, e.g. 8,7 on 16)"},
		&ucli.StringFlag{Name: "queue", Value: engine.QueueDeque, Usage: "file `ORDER`: deque (cluster 0 takes the largest files, the others the smallest) or fifo (largest first to any free cluster)"},
		&ucli.StringFlag{Name: "ram-limit", Value: "80%", Usage: "total RSS of all clusters above which idle clusters give memory back and then the biggest busy one is killed (its file retried alone, through disk): a share of physical RAM (80%) or a `SIZE` (12GiB)"},
		&ucli.StringFlag{Name: "ram-measure", Value: engine.MeasureRSS, Usage: "what --ram-limit is compared with: rss (the clusters' resident sets), pss (shared pages counted once) or cgroup (this process's cgroup's working set, what the kernel's OOM killer acts on)"},
		&ucli.DurationFlag{Name: "poll", Value: engine.DefaultPoll, Usage: "`INTERVAL` at which each cluster's RSS is measured, logged to ram_usage.log and checked against --ram-limit"},
		&ucli.IntFlag{Name: "recycle-after", Usage: "restart a cluster after `N` files (0: never), against leaks"},
		&ucli.StringFlag{Name: "recycle-rss", Usage: "restart a cluster whose RSS between files exceeds `SIZE` (e.g. 2GiB; default: never)"},
		&ucli.BoolFlag{Name: "no-progress", Usage: "no live view on a terminal: log records on stderr instead"},
		verboseFlag,
	}
}

// clusterOptions reads clusterFlags into engine options.
func clusterOptions(c *ucli.Context, env *Env, o *engine.Options) error {
	var err error
	if s := c.String("clusters"); s != "" {
		if o.Clusters, err = engine.ParseClusters(s); err != nil {
			return fmt.Errorf("--clusters: %w", err)
		}
	}
	o.Queue = c.String("queue")
	if o.Queue != engine.QueueDeque && o.Queue != engine.QueueFIFO {
		return fmt.Errorf("--queue %q: want deque or fifo", o.Queue)
	}
	if o.RAMLimitBytes, err = engine.ParseRAMLimit(c.String("ram-limit")); err != nil {
		return fmt.Errorf("--ram-limit: %w", err)
	}
	o.RAMMeasure = c.String("ram-measure")
	switch o.RAMMeasure {
	case engine.MeasureRSS, engine.MeasurePSS, engine.MeasureCgroup:
	default:
		return fmt.Errorf("--ram-measure %q: want rss, pss or cgroup", o.RAMMeasure)
	}
	o.Poll = c.Duration("poll")
	if o.Poll <= 0 {
		return fmt.Errorf("--poll %s: want a positive duration", o.Poll)
	}
	o.RecycleAfter = c.Int("recycle-after")
	if o.RecycleAfter < 0 {
		return fmt.Errorf("--recycle-after %d: want 0 or more", o.RecycleAfter)
	}
	if s := c.String("recycle-rss"); s != "" {
		if o.RecycleRSSBytes, err = bytesize.Parse(s); err != nil {
			return fmt.Errorf("--recycle-rss: %w", err)
		}
	}
	rememberResources(c, o)
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	o.WorkerExe = exe
	o.WorkerArgs = prefork.ClusterArgs(c.String("log-level"))
	// The live view is for a terminal; elsewhere (a pipe, a file, CI)
	// stderr gets one log line per file event instead.
	live := !c.Bool("no-progress") && termview.IsTerminal(os.Stderr)
	if live {
		o.Progress = os.Stderr
	}
	o.Logger = env.commandLogger(c, live)
	o.FeatureName = env.Spec.Name
	return nil
}

func runOptions(c *ucli.Context, env *Env, paths []string) (engine.Options, filejob.Job, error) {
	var o engine.Options
	job := filejob.Job{Mode: c.String("mode")}
	var err error
	o.Out, o.JobName, o.Resume = c.String("out"), c.String("job"), c.String("resume")
	if o.Resume != "" && len(paths) > 0 {
		return o, job, fmt.Errorf("--resume %s takes no input files (the run folder's plan names them)", o.Resume)
	}
	if o.Resume == "" && len(paths) == 0 {
		return o, job, errors.New("run: give input files or folders (or --resume DIR)")
	}
	if o.Params, err = feature.ParseParams(c.StringSlice("param")); err != nil {
		return o, job, err
	}
	if job.Reader, err = readerOptions(c, env.Spec.Schema); err != nil {
		return o, job, err
	}
	if job.Output, err = outputOptions(c, o.Resume); err != nil {
		return o, job, err
	}
	if err := clusterOptions(c, env, &o); err != nil {
		return o, job, err
	}
	runMemory(c, &o)
	if err := filejob.CheckMode(job.Mode, env.Spec.Mergeable(), env.Spec.Name); err != nil {
		return o, job, err
	}
	if o.Resume == "" {
		if o.Job, err = job.Encode(); err != nil {
			return o, job, err
		}
	}
	return o, job, nil
}

// outputFlags are the flags of the features files, shared by run and
// reduce.
func outputFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "format", Value: string(output.CSV), Usage: "`FORMAT` of the features files: csv, or parquet (<input>.features.parquet: typed columns, exact amounts as DECIMAL, times as timestamps (in UTC, or local when the input's had no zone), zstd; the same values as the CSV)"},
		&ucli.StringFlag{Name: "key-name", Usage: "`NAME` of the key column (the first); by default the feature set's KeyName, else the input's own name for its user column (e.g. issuer_id; user for a feature set with a Map, or when the files of one table name it differently); input: the input's name even then; any other name, user included, is taken as it is"},
	}
}

// outputOptions reads outputFlags; a run resumed keeps the settings its
// plan recorded, so they may not be given again.
func outputOptions(c *ucli.Context, resume string) (output.Options, error) {
	var o output.Options
	if resume != "" {
		for _, name := range []string{"format", "key-name"} {
			if c.IsSet(name) {
				return o, fmt.Errorf("--resume %s takes no --%s (the run folder's plan has it)", resume, name)
			}
		}
		return o, nil
	}
	var err error
	if o.Format, err = output.ParseFormat(c.String("format")); err != nil {
		return o, fmt.Errorf("--format: %w", err)
	}
	if err := o.ParseKeyName(c.String("key-name")); err != nil {
		return o, fmt.Errorf("--key-name: %w", err)
	}
	return o, nil
}

// finishRun prints on stdout the run folder, the run's summary (files ok
// and failed, rows, bad rows, wall time, MB/s, the first failures, the
// report's path) and the last line (as lastLine words it; files counts
// the files ok and failed; notes follow the summary), and maps the
// outcome to the exit status: 1 when any file failed, 130 when interrupted.
func finishRun(s *engine.Summary, err error, lastLine func(*engine.Summary) string, files func(*engine.Summary) (ok, failed int), notes ...string) error {
	if s != nil {
		fmt.Printf("run folder: %s\n", s.RunDir)
		// The report is drawn from what the run folder recorded, also
		// for a failed or interrupted run; the summary names it.
		if _, rerr := report.Write(s.RunDir); rerr != nil {
			slog.Warn("no run report", "dir", s.RunDir, "error", rerr)
		}
		printSummary(os.Stdout, s, files)
		for _, n := range notes {
			fmt.Println(n)
		}
		fmt.Println(lastLine(s))
	}
	if err != nil {
		code := 1
		if s != nil && s.Interrupted {
			code = 130
		}
		return &ExitError{Code: code, Err: err}
	}
	if s.Failed > 0 {
		return &ExitError{Code: 1}
	}
	return nil
}

// runFiles counts the files of a `mce run`: one task each.
func runFiles(s *engine.Summary) (ok, failed int) { return s.Done + s.Skipped, s.Failed }

// execFeaturesBinary compiles --features and replaces this process with
// the features binary's own command (same arguments, without --features),
// so that the user's Spec decides the schema, the aliases and the workers,
// and no extra process stands between the user and the clusters. The
// binary records the features file and this command line in the run
// folder (--features-source, MCE_RUN_COMMAND), for --resume.
func execFeaturesBinary(c *ucli.Context, env *Env) error {
	// Where the live view will have the terminal, the build says what it
	// does in plain words rather than in log records.
	benv := *env
	if live := !c.Bool("no-progress") && termview.IsTerminal(os.Stderr); env.commandLogger(c, live) != env.Logger {
		benv.Logger = slog.New(noteHandler{w: os.Stderr})
	}
	exe, err := WorkerExe(c, &benv)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	src, err := filepath.Abs(c.String(featuresFlag.Name))
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	return execFeatures(exe, dropFlag(os.Args[1:], featuresFlag.Name), src)
}

// execFeatures replaces this process with the features binary exe running
// args; src, when set, is the features file it was built from.
func execFeatures(exe string, args []string, src string) error {
	if src != "" {
		args = append(args, "--"+featuresSourceFlag.Name, src)
	}
	cmd, err := json.Marshal(os.Args)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	environ := append(os.Environ(), commandEnv+"="+string(cmd))
	stopProfiling() // the features binary profiles itself (MCE_CPUPROFILE)
	if err := syscall.Exec(exe, append([]string{exe}, args...), environ); err != nil {
		return &ExitError{Code: 1, Err: fmt.Errorf("run features binary %s: %w", exe, err)}
	}
	return nil // not reached
}

// commandEnv carries the user's command line into the features binary
// that execFeatures starts, for plan.json.
const commandEnv = "MCE_RUN_COMMAND"

// featuresSourceFlag tells a features binary which file it was built from.
var featuresSourceFlag = &ucli.StringFlag{Name: "features-source", Hidden: true}

// runMemory fills what a run folder remembers of its start: the command
// line and, in a features binary, the features file.
func runMemory(c *ucli.Context, o *engine.Options) {
	o.Command = os.Args
	if s := os.Getenv(commandEnv); s != "" {
		var cmd []string
		if json.Unmarshal([]byte(s), &cmd) == nil {
			o.Command = cmd
		}
	}
	o.FeaturesFile = c.String(featuresSourceFlag.Name)
}

// resumeFeatures resumes, in the features binary it was built with, a run
// folder whose run computed a features file: from the copy the run kept,
// after checking that the file has not changed since (a --features given
// again must be the same file). It returns false when the run used the
// built-in features.
func resumeFeatures(c *ucli.Context, env *Env, dir string) (bool, error) {
	if env.FeaturesBinary {
		return false, nil
	}
	p, err := engine.ReadPlan(dir)
	if err != nil {
		return false, &ExitError{Code: 1, Err: err}
	}
	given := c.String(featuresFlag.Name)
	if p.Features == nil {
		if given != "" {
			return false, &ExitError{Code: 2, Err: fmt.Errorf("resume %s: the run computed the built-in %s features; drop --features", dir, p.Feature)}
		}
		return false, nil
	}
	kept := filepath.Join(dir, engine.FeaturesCopy)
	check := func(path, what string) error {
		sum, err := engine.HashFile(path)
		if err != nil {
			return &ExitError{Code: 1, Err: fmt.Errorf("resume %s: %s: %w", dir, what, err)}
		}
		if sum != p.Features.SHA256 {
			return &ExitError{Code: 2, Err: fmt.Errorf("resume %s: %s %s changed since the run started (sha256 %.12s, the run's %.12s): "+
				"resume with the copy the run kept (--features %s) or start a new run", dir, what, path, sum, p.Features.SHA256, kept)}
		}
		return nil
	}
	switch {
	case given != "":
		if err := check(given, "the features file"); err != nil {
			return false, err
		}
	default:
		if _, err := os.Stat(p.Features.Path); err == nil {
			if err := check(p.Features.Path, "the features file"); err != nil {
				return false, err
			}
		}
	}
	if err := check(kept, "the run's copy of the features file"); err != nil {
		return false, err
	}
	exe, err := fbuild.Build(c.Context, kept, fbuild.Options{Logger: env.Logger})
	if err != nil {
		return false, &ExitError{Code: 1, Err: err}
	}
	return true, execFeatures(exe, dropFlag(os.Args[1:], featuresFlag.Name), "")
}

// argsAndLateFlags returns the command's positional arguments and applies
// the flags written after them (urfave/cli stops parsing flags at the
// first argument, but `mce run data/ --out runs` is how people write it).
func argsAndLateFlags(c *ucli.Context) ([]string, error) {
	isBool := map[string]bool{}
	known := map[string]bool{}
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			known[n] = true
			if _, ok := f.(*ucli.BoolFlag); ok {
				isBool[n] = true
			}
		}
	}
	var pos []string
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !known[name] {
			return nil, fmt.Errorf("flag provided but not defined: %s", a)
		}
		if !hasVal {
			if isBool[name] {
				val = "true"
			} else {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("flag needs an argument: %s", a)
				}
				i++
				val = args[i]
			}
		}
		if err := c.Set(name, val); err != nil {
			return nil, fmt.Errorf("%s %q: %w", a, val, err)
		}
	}
	return pos, nil
}
