package bench

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mce-engine/mce/internal/bytesize"
)

// ReduceFormFeatures is the features file of the run-reduce system,
// relative to the repository: the built-in features written as a plain
// Reduce.
const ReduceFormFeatures = "examples/invoice-reduce/f.go"

// Defaults of a zero Config.
const (
	DefaultSize         = "300MB"
	DefaultFiles        = 6
	DefaultSeed         = 1
	DefaultHeavyShare   = 0.13
	DefaultRuns         = 5
	DefaultPartitionMem = "256MiB"
	DefaultSortMem      = "1G"
	// DefaultEncoding is UTF-8, not the cp1252 of the real data: DuckDB
	// cannot read cp1252 without downloading an extension.
	DefaultEncoding = "utf8"
)

// Systems, in the order they run and are reported.
const (
	SysFloor    = "floor"
	SysCSVFloor = "csvfloor"
	SysRun      = "run"
	SysRunGroup = "run-group"
	// SysRunDisk is mce run --mode disk: rows grouped through sorted runs
	// on local disk, the mode whose RAM does not grow with a file.
	SysRunDisk   = "run-disk"
	SysRun1CPU   = "run-1cpu"
	SysRunReduce = "run-reduce"
	SysPartition = "partition"
	SysReduce    = "reduce"
	// SysReduceReduce is mce reduce with the Reduce-form features file
	// (ReduceFormFeatures): beside SysRunReduce, when the store pays for
	// a user who writes Reduce.
	SysReduceReduce = "reduce-reduce"
	SysUnix         = "unix"
	SysDuckDB       = "duckdb"
)

// AllSystems lists every system in report order.
func AllSystems() []string {
	return []string{SysRun, SysRunGroup, SysRunDisk, SysRun1CPU, SysRunReduce, SysPartition, SysReduce, SysReduceReduce, SysUnix, SysDuckDB, SysFloor, SysCSVFloor}
}

// Config says what to benchmark. The zero value (with Self set, for the
// floor) generates DefaultSize of data under bench/work of the repository
// the working directory is in, runs every system DefaultRuns times on all
// cores and writes the report to bench/results.
type Config struct {
	// Src is the repository root (where go.mod names the mce module); empty
	// means the first such folder at or above the working directory.
	Src string
	// MCE is the mce binary (default Src/bin/mce, as `make build` writes it).
	MCE string
	// Work is the scratch folder for data, outputs and the store (default
	// Src/bench/work).
	Work string
	// Results is where reports and charts go (default Src/bench/results);
	// "-" writes none.
	Results string
	// Data is a folder of existing invoice files to use instead of
	// generating them (plain, default-layout files for unix and duckdb).
	Data string
	// Size of the generated data, as `mce gen --size` reads it.
	Size       string
	Files      int
	Seed       uint64
	HeavyShare float64
	Messy      bool
	// Encoding of the generated text: utf8 (default) or cp1252.
	Encoding string
	// Runs is how many times each system runs; figures are medians.
	Runs int
	// Settle is how long Run waits, at most, for the 1-minute load
	// average to fall under half the cores before it starts (0: it does
	// not wait): the large size's report otherwise starts at the load the
	// default size's own runs left, and is marked indicative for it.
	Settle time.Duration
	// CPUs is the CPUs (threads, cluster size) every system gets; default
	// all cores.
	CPUs int
	// Sweep also runs mce run and mce reduce with 1, 2, … all cores.
	Sweep bool
	// SweepCPUs are the CPU counts of the sweep (default 1, 2, … all
	// cores); setting it sets Sweep.
	SweepCPUs []int
	// Profile runs mce run, partition and reduce (and run and reduce with
	// the Reduce-form f.go) ProfileRuns more times each with CPU profiling
	// (ProfileEnv) and puts their CPU by phase in the report.
	Profile bool
	// PartitionMem is passed as `mce partition --mem`.
	PartitionMem string
	// SortMem is the unix baseline's `sort -S`.
	SortMem string
	// Skip names systems not to run.
	Skip []string
	// KeepData keeps the generated data, outputs and store in Work (and
	// reuses data generated with the same settings on the next run).
	KeepData bool
	// Self is the command line that re-enters Main (the running binary and
	// any subcommand before the bench's own flags); the floor runs as
	// Self + "_floor".
	Self []string
	// Stdout gets the report (default os.Stdout).
	Stdout io.Writer
	// Logger gets progress lines (default slog.Default()).
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Src == "" {
		wd, err := os.Getwd()
		if err != nil {
			return c, err
		}
		src, err := findModuleRoot(wd)
		if err != nil {
			return c, err
		}
		c.Src = src
	}
	abs, err := filepath.Abs(c.Src)
	if err != nil {
		return c, err
	}
	c.Src = abs
	if c.MCE == "" {
		c.MCE = filepath.Join(c.Src, "bin", "mce")
	}
	if c.Work == "" {
		c.Work = filepath.Join(c.Src, "bench", "work")
	}
	if c.Results == "" {
		c.Results = filepath.Join(c.Src, "bench", "results")
	}
	for _, p := range []*string{&c.MCE, &c.Work, &c.Data} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return c, err
			}
		}
	}
	if c.Results != "-" {
		if c.Results, err = filepath.Abs(c.Results); err != nil {
			return c, err
		}
	}
	if c.Size == "" {
		c.Size = DefaultSize
	}
	if _, err := ParseBytes(c.Size); err != nil {
		return c, fmt.Errorf("--size %q: %w", c.Size, err)
	}
	if c.Files == 0 {
		c.Files = DefaultFiles
	}
	if c.Files < 0 {
		return c, fmt.Errorf("--files %d: want a positive number", c.Files)
	}
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.HeavyShare == 0 {
		c.HeavyShare = DefaultHeavyShare
	}
	switch c.Encoding {
	case "":
		c.Encoding = DefaultEncoding
	case "utf8", "cp1252":
	default:
		return c, fmt.Errorf("--encoding %q: want utf8 or cp1252", c.Encoding)
	}
	if c.Runs == 0 {
		c.Runs = DefaultRuns
	}
	if c.Runs < 0 {
		return c, fmt.Errorf("--runs %d: want a positive number", c.Runs)
	}
	if c.CPUs == 0 {
		c.CPUs = runtime.NumCPU()
	}
	if c.CPUs < 0 {
		return c, fmt.Errorf("--cpus %d: want a positive number", c.CPUs)
	}
	if c.PartitionMem == "" {
		c.PartitionMem = DefaultPartitionMem
	}
	if _, err := ParseBytes(c.PartitionMem); err != nil {
		return c, fmt.Errorf("--partition-mem %q: %w", c.PartitionMem, err)
	}
	if c.SortMem == "" {
		c.SortMem = DefaultSortMem
	}
	for _, s := range c.Skip {
		if !slices.Contains(AllSystems(), s) {
			return c, fmt.Errorf("--skip %q: want some of %s", s, strings.Join(AllSystems(), ","))
		}
	}
	if len(c.Self) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return c, err
		}
		c.Self = []string{exe}
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

func (c *Config) skipped(system string) bool { return slices.Contains(c.Skip, system) }

// findModuleRoot returns the first folder at or above dir whose go.mod
// declares the mce module.
func findModuleRoot(dir string) (string, error) {
	for d := dir; ; {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/mce-engine/mce\n") {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("not inside the mce repository (no go.mod of github.com/mce-engine/mce at or above the working directory); give --src")
		}
		d = parent
	}
}

// ParseBytes reads a positive byte size (package bytesize).
func ParseBytes(s string) (int64, error) {
	n, err := bytesize.Parse(s)
	if err != nil || n <= 0 {
		return 0, errors.New("want a positive size such as 300MB, 2GiB or 512M")
	}
	return n, nil
}
