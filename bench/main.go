package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// floorCommand is the hidden first argument with which Main runs the floor
// in a child process.
const floorCommand = "_floor"

// BindFlags binds the benchmark's flags into cfg.
func BindFlags(fs *flag.FlagSet, cfg *Config) {
	fs.StringVar(&cfg.Size, "size", DefaultSize, "size of the generated data (e.g. 300MB, 20GB)")
	fs.IntVar(&cfg.Files, "files", DefaultFiles, "number of generated monthly files")
	fs.Uint64Var(&cfg.Seed, "seed", DefaultSeed, "generator seed")
	fs.Float64Var(&cfg.HeavyShare, "heavy-share", DefaultHeavyShare, "share of rows of the heavy user")
	fs.StringVar(&cfg.Encoding, "encoding", DefaultEncoding, "encoding of the generated text: utf8 or cp1252 (DuckDB reads only utf8)")
	fs.BoolVar(&cfg.Messy, "messy", false, "generate messy files (unix and duckdb are then skipped)")
	fs.StringVar(&cfg.Data, "data", "", "use the invoice files in this folder instead of generating")
	fs.IntVar(&cfg.Runs, "runs", DefaultRuns, "runs per system; figures are medians")
	fs.DurationVar(&cfg.Settle, "settle", 0, "wait up to this long (e.g. 3m) for the 1-minute load average to fall under half the cores before measuring")
	fs.IntVar(&cfg.CPUs, "cpus", 0, "CPUs for every system (default: all cores)")
	fs.BoolVar(&cfg.Sweep, "sweep", false, "also run mce run and mce reduce with 1, 2, … all cores")
	fs.Func("sweep-cpus", "comma-separated CPU counts of the sweep (e.g. 1,4,16; implies --sweep)", func(s string) error {
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return fmt.Errorf("want CPU counts such as 1,4,16, got %q", f)
			}
			cfg.SweepCPUs = append(cfg.SweepCPUs, n)
		}
		cfg.Sweep = true
		return nil
	})
	fs.BoolVar(&cfg.Profile, "profile", false, "profile mce run, partition and reduce, and run and reduce with the Reduce-form f.go (env "+ProfileEnv+", "+strconv.Itoa(ProfileRuns)+" extra runs each), and add their CPU by phase to the report")
	fs.StringVar(&cfg.PartitionMem, "partition-mem", DefaultPartitionMem, "mce partition --mem")
	fs.StringVar(&cfg.SortMem, "sort-mem", DefaultSortMem, "sort -S of the unix baseline")
	fs.Func("skip", "comma-separated systems not to run: "+strings.Join(AllSystems(), ","), func(s string) error {
		for _, name := range strings.Split(s, ",") {
			if name = strings.TrimSpace(name); name != "" {
				cfg.Skip = append(cfg.Skip, name)
			}
		}
		return nil
	})
	fs.BoolVar(&cfg.KeepData, "keep-data", false, "keep data, outputs and store in the work folder (and reuse the data next time)")
	fs.StringVar(&cfg.Src, "src", "", "the mce repository (default: found from the working directory)")
	fs.StringVar(&cfg.MCE, "mce", "", "the mce binary (default SRC/bin/mce)")
	fs.StringVar(&cfg.Work, "work", "", "scratch folder (default SRC/bench/work)")
	fs.StringVar(&cfg.Results, "out", "", `where reports go (default SRC/bench/results; "-" for none)`)
}

// Main is the benchmark's command line: it parses args (without the program
// name) into a Config and runs it, and returns the exit code: 0, 1 when the
// benchmark failed (a disagreement or a failed system), 2 for bad flags.
// self is the command line that leads back to Main (e.g. the mcebench
// binary, or mce and "bench"), used to run the floor as a child.
func Main(ctx context.Context, args, self []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == floorCommand {
		return floorMain(ctx, args[1:], stdout, stderr)
	}
	cfg := Config{Self: self, Stdout: stdout}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench [flags]\n\nMeasures mce run, partition and reduce against sort|awk, DuckDB and the read+split floor\non generated invoice data, checks that they agree, and writes a Markdown report.\n\nflags:")
		fs.PrintDefaults()
	}
	BindFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if _, err := Run(ctx, cfg); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}

// floorMain runs RunFloor on the files and prints its result as JSON.
func floorMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(floorCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	threads := fs.Int("threads", 1, "threads")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	res, err := RunFloor(ctx, FloorConfig{Paths: fs.Args(), Threads: *threads})
	if err != nil {
		fmt.Fprintln(stderr, "floor:", err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintln(stderr, "floor:", err)
		return 1
	}
	return 0
}
