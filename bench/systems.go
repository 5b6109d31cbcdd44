package bench

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed unix/features.awk
var awkProgram string

// Status is how a system's measurement ended.
type Status uint8

// Statuses of a Result, in report order.
const (
	StatusOK          Status = iota
	StatusSkipped            // --skip
	StatusUnavailable        // command or tool missing
	StatusFailed             // it ran and failed
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusSkipped:
		return "skipped"
	case StatusUnavailable:
		return "not available"
	case StatusFailed:
		return "failed"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Result is one system's measurement.
type Result struct {
	System string
	What   string // the command, in words
	CPUs   int
	Status Status
	Reason string // why it was skipped, unavailable or failed
	Runs   []Sample
	// Medians over Runs, figure by figure.
	Wall, CPU    time.Duration
	PeakRSSBytes int64
	// Features are the first run's, kept on disk for the gate and read
	// back file by file; nil for systems without. They are read once when
	// made: a system whose output does not parse fails then.
	Features *PerFile
	// Rows is the rows the first run's features count (0 without).
	Rows int64
	// Skew is the worker skew read from timings.csv (run, reduce).
	Skew *Skew
	// StoreBytes is the store's size after partitioning; Spill what its
	// log said of the spilled runs (spillNote), "" when it did not say.
	StoreBytes int64
	Spill      string
	// Note holds extra facts (DuckDB's version, rows the floor read).
	Note string
}

// keepFeatures reads the first run's features, file by file, to check
// that they parse and count their rows, and keeps them for the gate
// (Features).
func (r *Result) keepFeatures(p *PerFile, err error) error {
	if err != nil {
		return err
	}
	var rows int64
	for _, stem := range p.Stems {
		fs, err := p.Read(stem)
		if err != nil {
			return err
		}
		for _, v := range fs.Rows {
			rows += v.Count
		}
	}
	r.Rows, r.Features = rows, p
	return nil
}

// keepOutput keeps a first run's features file, which the next run's
// would replace, for the gate: split by input file (splitFiles) into a
// folder of its own, read back with read. The file itself is removed.
func (r *runner) keepOutput(system string, fields FieldSet, path string, header bool, read func(string) (*Features, error)) (*PerFile, error) {
	p, err := splitFiles(system, fields, path, filepath.Join(r.cfg.Work, "out", "first", system), header, read)
	if err == nil {
		err = os.Remove(path)
	}
	if err != nil {
		return nil, fmt.Errorf("keep %s's features for the gate: %w", system, err)
	}
	return p, nil
}

// OK says whether it was measured.
func (r *Result) OK() bool { return r != nil && r.Status == StatusOK }

// setMedians fills Wall, CPU and PeakRSSBytes from Runs.
func (r *Result) setMedians() {
	var wall, cpu, rss []float64
	for _, s := range r.Runs {
		wall = append(wall, float64(s.Wall))
		cpu = append(cpu, float64(s.CPU()))
		rss = append(rss, float64(s.PeakRSSBytes))
	}
	r.Wall = time.Duration(Median(wall))
	r.CPU = time.Duration(Median(cpu))
	r.PeakRSSBytes = int64(Median(rss))
}

// Median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none. It does not modify xs.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// Skew is what timings.csv says about the balance of a cluster's workers:
// per file, the slowest worker's time over the mean.
type Skew struct {
	MaxFile  string
	Max      float64 // the largest per-file skew
	SumMax   float64 // slowest worker's seconds, summed over files
	SumMean  float64 // mean worker's seconds, summed over files
	Files    int
	Overall  float64 // SumMax / SumMean: the share of the time lost to the slowest worker
	HeavyMax float64 // the skew of the file with the most rows
}

// ReadTimings reads the skew columns of an mce run directory's timings.csv
// (file, rows, worker_max_seconds, worker_mean_seconds, skew).
func ReadTimings(path string) (*Skew, error) {
	sk := &Skew{}
	var heavyRows int64 = -1
	err := csvTable(path, func(col map[string]int, rec []string) error {
		get := func(name string) (float64, error) {
			i, ok := col[name]
			if !ok {
				return 0, fmt.Errorf("no %s column", name)
			}
			return strconv.ParseFloat(rec[i], 64)
		}
		if i, ok := col["status"]; ok && rec[i] != "done" {
			return nil
		}
		wmax, err := get("worker_max_seconds")
		if err != nil {
			return err
		}
		wmean, err := get("worker_mean_seconds")
		if err != nil {
			return err
		}
		skew, err := get("skew")
		if err != nil {
			return err
		}
		rows, _ := get("rows")
		file := rec[col["file"]]
		sk.Files++
		sk.SumMax += wmax
		sk.SumMean += wmean
		if skew > sk.Max {
			sk.Max, sk.MaxFile = skew, FileStem(file)
		}
		if int64(rows) > heavyRows {
			heavyRows, sk.HeavyMax = int64(rows), skew
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if sk.SumMean > 0 {
		sk.Overall = sk.SumMax / sk.SumMean
	}
	return sk, nil
}

// mceInfo is what the mce binary offers.
type mceInfo struct {
	path     string
	version  string
	commands map[string]bool
	err      error // why mce cannot be used at all
}

func (m *mceInfo) has(cmd string) bool { return m.err == nil && m.commands[cmd] }

// why says why cmd cannot run.
func (m *mceInfo) why(cmd string) string {
	if m.err != nil {
		return m.err.Error()
	}
	return fmt.Sprintf("`mce %s` does not exist in this mce yet", cmd)
}

// probeMCE lists mce's commands from its help.
func probeMCE(ctx context.Context, path string) *mceInfo {
	m := &mceInfo{path: path, commands: map[string]bool{}}
	if _, err := os.Stat(path); err != nil {
		m.err = fmt.Errorf("no mce binary at %s (run `make build`, or give --mce)", path)
		return m
	}
	out, err := exec.CommandContext(ctx, path, "--help").Output()
	if err != nil {
		m.err = fmt.Errorf("%s --help: %w", path, err)
		return m
	}
	m.commands = parseCommands(string(out))
	if v, err := exec.CommandContext(ctx, path, "--version").Output(); err == nil {
		m.version = strings.TrimSpace(string(v))
	}
	return m
}

// parseCommands reads the command names from urfave/cli's help: the first
// word of each line of the COMMANDS section ("gen, g" lists aliases), which
// is indented by 3 spaces, or 5 under a category heading.
func parseCommands(help string) map[string]bool {
	cmds := map[string]bool{}
	in := false
	sc := bufio.NewScanner(strings.NewReader(help))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "COMMANDS:") {
			in = true
			continue
		}
		if !in {
			continue
		}
		if trimmed == "" || !strings.HasPrefix(line, " ") {
			if strings.HasSuffix(trimmed, ":") || trimmed == "" && len(cmds) > 0 {
				break
			}
			continue
		}
		if strings.HasSuffix(trimmed, ":") {
			continue // a category heading
		}
		if indent := len(line) - len(strings.TrimLeft(line, " ")); indent > 6 {
			continue // a wrapped usage line, aligned past the names
		}
		// Names and aliases end where two spaces start the usage.
		name, _, _ := strings.Cut(trimmed, "  ")
		for _, n := range strings.Split(name, ",") {
			if n = strings.TrimSpace(n); n != "" {
				cmds[n] = true
			}
		}
	}
	return cmds
}

// runner runs one system's measurements.
type runner struct {
	cfg  *Config
	mce  *mceInfo
	data *Dataset
	// rounds, when set, collects the measurements instead of running them,
	// for runRounds.
	rounds *[]*pendingRuns
}

// pendingRuns is one system's measurement waiting for runRounds.
type pendingRuns struct {
	res    *Result
	runs   int
	mk     func(i int) (Command, func() error, error)
	failed bool
}

// runRounds runs the collected measurements in rounds: the first run of
// every system, then the second of every system, and so on, so that a
// burst of load from elsewhere on the machine slows one round of every
// system instead of every run of one (the ratios between systems are what
// the report is about). Within a round, systems keep their order, so that
// the reduces read the store partition made in the same round; the systems
// that read it (needsStore) are not run once partition has failed.
func (r *runner) runRounds(ctx context.Context, partition *Result) {
	jobs := *r.rounds
	r.rounds = nil
	maxRuns := 0
	for _, j := range jobs {
		maxRuns = max(maxRuns, j.runs)
	}
	for i := 0; i < maxRuns; i++ {
		for _, j := range jobs {
			if j.failed || i >= j.runs || ctx.Err() != nil {
				continue
			}
			if needsStore(j.res.System) && partition != nil && partition.Status != StatusOK {
				j.failed = true
				j.res.Status, j.res.Reason = StatusUnavailable, noStore(partition)
				continue
			}
			if !r.measureOnce(ctx, j.res, i, j.runs, r.inputsOf(j.res.System), j.mk) {
				j.failed = true
			}
		}
	}
	for _, j := range jobs {
		if !j.failed && len(j.res.Runs) > 0 {
			j.res.setMedians()
		}
	}
}

// measureN runs the command made by mk Runs times. mk gets the run's index
// and returns the command and a function that reads the run's output (nil:
// none); only the first run's output is kept and read.
func (r *runner) measureN(ctx context.Context, res *Result, runs int,
	mk func(i int) (Command, func() error, error)) {
	if r.rounds != nil {
		*r.rounds = append(*r.rounds, &pendingRuns{res: res, runs: runs, mk: mk})
		return
	}
	for i := range runs {
		if !r.measureOnce(ctx, res, i, runs, r.inputsOf(res.System), mk) {
			return
		}
	}
	res.setMedians()
}

// measureOnce makes and measures run i of res, inputs (what it reads)
// read back into the page cache first; false when it failed (res says
// why).
func (r *runner) measureOnce(ctx context.Context, res *Result, i, runs int, inputs []string,
	mk func(i int) (Command, func() error, error)) bool {
	cmd, read, err := mk(i)
	if err != nil {
		res.Status, res.Reason = StatusFailed, err.Error()
		return false
	}
	warm, err := warmInputs(inputs)
	if err != nil {
		res.Status, res.Reason = StatusFailed, err.Error()
		return false
	}
	r.cfg.Logger.Info("bench: measuring", "system", res.System, "cpus", res.CPUs, "run", i+1, "of", runs,
		"inputs_cached", fmt.Sprintf("%.1f%%", warm.share()))
	s, err := Measure(ctx, cmd)
	if err != nil {
		res.Status, res.Reason = StatusFailed, err.Error()
		var ee *ExitError
		if errors.As(err, &ee) {
			r.cfg.Logger.Warn("bench: command failed", "system", res.System, "command", ee.Command(), "stderr", ee.Stderr)
		}
		return false
	}
	s.Warm = warm
	res.Runs = append(res.Runs, s)
	if read != nil {
		if err := read(); err != nil {
			res.Status, res.Reason = StatusFailed, err.Error()
			return false
		}
	}
	r.cfg.Logger.Info("bench: measured", "system", res.System, "wall_s", round3(s.Wall.Seconds()),
		"cpu_s", round3(s.CPU().Seconds()), "peak_rss_mib", round3(mibOf(s.PeakRSSBytes)))
	return true
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

func mibOf(b int64) float64 { return float64(b) / (1 << 20) }

// inputsOf returns the files and folders system reads: the store, or
// the data.
func (r *runner) inputsOf(system string) []string {
	if needsStore(system) {
		return []string{r.storeDir()}
	}
	return r.inputArgs()
}

// inputArgs is how mce gets the data: the folder the bench generated
// (which holds only the inputs), else the files one by one.
func (r *runner) inputArgs() []string {
	if r.data.Generated {
		return []string{r.data.Dir}
	}
	return r.data.Files
}

// runDir returns the newest out/<job><n> folder.
func runDir(out, job string) (string, error) {
	ents, err := os.ReadDir(out)
	if err != nil {
		return "", err
	}
	best, bestN := "", -1
	for _, e := range ents {
		suf, ok := strings.CutPrefix(e.Name(), job)
		if !ok || !e.IsDir() {
			continue
		}
		if n, err := strconv.Atoi(suf); err == nil && n > bestN {
			best, bestN = filepath.Join(out, e.Name()), n
		}
	}
	if best == "" {
		return "", fmt.Errorf("%s: no %s<n> run folder", out, job)
	}
	return best, nil
}

// oneCPUClusters is --clusters for cpus clusters of one CPU: "1,1,…".
func oneCPUClusters(cpus int) string {
	return strings.TrimSuffix(strings.Repeat("1,", cpus), ",")
}

// runMCE measures `mce run` or `mce reduce` (job names the system).
func (r *runner) runMCE(ctx context.Context, system string, cpus int) *Result {
	res := &Result{System: system, CPUs: cpus, What: systemWhat(system)}
	cmd := mceCommand(system)
	if !r.mce.has(cmd) {
		res.Status, res.Reason = StatusUnavailable, r.mce.why(cmd)
		return res
	}
	features := filepath.Join(r.cfg.Src, ReduceFormFeatures)
	if system == SysRunReduce || system == SysReduceReduce {
		// Build the features binary once, outside the measured runs.
		if out, err := exec.CommandContext(ctx, r.mce.path, "features", "--features", features).CombinedOutput(); err != nil {
			res.Status, res.Reason = StatusFailed, fmt.Sprintf("mce features --features %s: %v: %s", features, err, out)
			return res
		}
	}
	base := filepath.Join(r.cfg.Work, "out", fmt.Sprintf("%s-cpus%d", system, cpus))
	if err := os.RemoveAll(base); err != nil {
		res.Status, res.Reason = StatusFailed, err.Error()
		return res
	}
	r.measureN(ctx, res, r.cfg.Runs, func(i int) (Command, func() error, error) {
		out := filepath.Join(base, fmt.Sprintf("r%d", i+1))
		args := r.mceArgs(system, out, cpus)
		read := func() error {
			dir, err := runDir(out, system)
			if err != nil {
				return err
			}
			if i == 0 {
				if err := res.keepFeatures(MCEFiles(system, dir)); err != nil {
					return err
				}
				if sk, err := ReadTimings(filepath.Join(dir, "timings.csv")); err == nil {
					res.Skew = sk
				} else {
					res.Note = "no skew: " + err.Error()
				}
				return nil
			}
			return os.RemoveAll(out)
		}
		return Command{Args: args}, read, nil
	})
	return res
}

// mceCommand is the mce command that system runs: run or reduce.
func mceCommand(system string) string {
	switch system {
	case SysRunGroup, SysRunDisk, SysRun1CPU, SysRunReduce:
		return SysRun
	case SysReduceReduce:
		return SysReduce
	}
	return system
}

// storeDir is the store this bench's partition makes and its reduces read.
func (r *runner) storeDir() string { return filepath.Join(r.cfg.Work, "store") }

// mceArgs is the command line of system (one of run's and reduce's) on
// cpus CPUs, its run folder under out: the measured runs' and the
// profiled ones'.
func (r *runner) mceArgs(system, out string, cpus int) []string {
	return r.mceArgsOn(system, out, cpus, r.storeDir())
}

// mceArgsOn is mceArgs with the reduces reading store.
func (r *runner) mceArgsOn(system, out string, cpus int, store string) []string {
	// NB: flags go before the inputs: urfave/cli stops at the first
	// positional argument.
	args := []string{r.mce.path, mceCommand(system), "--out", out, "--job", system, "--clusters", strconv.Itoa(cpus)}
	features := filepath.Join(r.cfg.Src, ReduceFormFeatures)
	switch system {
	case SysRun:
		args = append(args, r.inputArgs()...)
	case SysRunGroup:
		args = append(args, "--mode", "group")
		args = append(args, r.inputArgs()...)
	case SysRunDisk:
		args = append(args, "--mode", "disk")
		args = append(args, r.inputArgs()...)
	case SysRun1CPU:
		args[len(args)-1] = oneCPUClusters(cpus)
		args = append(args, r.inputArgs()...)
	case SysRunReduce:
		args = append(args, "--features", features)
		args = append(args, r.inputArgs()...)
	case SysReduceReduce:
		args = append(args, "--features", features, "--store", store)
	default:
		args = append(args, "--store", store)
	}
	return args
}

// partitionArgs is mce partition's command line on cpus CPUs into store,
// of inputs (the bench's: r.inputArgs()).
func (r *runner) partitionArgs(store string, cpus int, inputs []string) []string {
	args := []string{r.mce.path, SysPartition, "--out", store, "--cpus", strconv.Itoa(cpus), "--mem", r.cfg.PartitionMem}
	return append(args, inputs...)
}

// runPartition measures `mce partition` into a fresh store each time; the
// last store stays for reduce.
func (r *runner) runPartition(ctx context.Context, cpus int) *Result {
	res := &Result{System: SysPartition, CPUs: cpus, What: "mce partition into a fresh store (--mem " + r.cfg.PartitionMem + ")"}
	if !r.mce.has(SysPartition) {
		res.Status, res.Reason = StatusUnavailable, r.mce.why(SysPartition)
		return res
	}
	store := r.storeDir()
	r.measureN(ctx, res, r.cfg.Runs, func(i int) (Command, func() error, error) {
		// A store that holds the files already would skip them.
		if err := os.RemoveAll(store); err != nil {
			return Command{}, nil, err
		}
		args := r.partitionArgs(store, cpus, r.inputArgs())
		read := func() error {
			n, err := dirBytes(store)
			if err != nil {
				return fmt.Errorf("store size: %w", err)
			}
			res.StoreBytes = n
			res.Spill = spillNote(res.Runs[len(res.Runs)-1].Stderr)
			return nil
		}
		return Command{Args: args}, read, nil
	})
	return res
}

// spillNote reads partition's "ingested" log line (text records, as mce
// writes them off a terminal) in stderr and says how much spilled and how
// it was kept: the runs are s2-compressed, which costs CPU, where the
// disk has too little room for them stored; a bench on such a disk
// measures a slower partition. "" when there is no such line.
func spillNote(stderr string) string {
	var line string
	for l := range strings.Lines(stderr) {
		if strings.Contains(l, " msg=ingested ") {
			line = l
		}
	}
	if line == "" {
		return ""
	}
	kv := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			kv[k] = v
		}
	}
	switch kv["spill"] {
	case "none":
		return "no rows spilled"
	case "stored":
		return fmt.Sprintf("spilled %s MiB of runs, stored", kv["spill_mib"])
	case "s2":
		return fmt.Sprintf("spilled %s MiB of runs, s2-compressed: too little free disk to store them (slower)", kv["spill_mib"])
	}
	return ""
}

// runUnix measures the sort | awk baseline, one file after another.
func (r *runner) runUnix(ctx context.Context, cpus int) *Result {
	res := &Result{System: SysUnix, CPUs: cpus,
		What: fmt.Sprintf("per file: LC_ALL=C sort -t, -k2,2 --parallel=%d -S %s | mawk", cpus, r.cfg.SortMem)}
	if r.cfg.Messy || !r.data.Plain {
		res.Status, res.Reason = StatusUnavailable, "needs plain, default-layout files (not --messy)"
		return res
	}
	awk := ""
	for _, name := range []string{"mawk", "awk"} {
		if p, err := exec.LookPath(name); err == nil {
			awk = p
			break
		}
	}
	for _, tool := range []string{"bash", "sort", "tail"} {
		if _, err := exec.LookPath(tool); err != nil {
			awk = ""
		}
	}
	if awk == "" {
		res.Status, res.Reason = StatusUnavailable, "needs bash, sort, tail and mawk or awk"
		return res
	}
	if filepath.Base(awk) != "mawk" {
		res.What = strings.Replace(res.What, "mawk", filepath.Base(awk), 1)
	}
	dir := filepath.Join(r.cfg.Work, "out", "unix")
	tmp := filepath.Join(dir, "sort-tmp")
	// NB: pipefail, so that a failing sort fails the run.
	script := `set -o pipefail; prog=$1 awk=$2 mem=$3 par=$4 tmp=$5; shift 5
for f in "$@"; do
  tail -n +2 "$f" | LC_ALL=C sort -t, -k2,2 -S "$mem" --parallel="$par" -T "$tmp" |
    LC_ALL=C "$awk" -v file="${f##*/}" "$prog" || exit 1
done`
	r.measureN(ctx, res, r.cfg.Runs, func(i int) (Command, func() error, error) {
		if err := os.RemoveAll(dir); err != nil {
			return Command{}, nil, err
		}
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return Command{}, nil, err
		}
		outPath := filepath.Join(dir, "features.csv")
		out, err := os.Create(outPath)
		if err != nil {
			return Command{}, nil, err
		}
		args := append([]string{"bash", "-c", script, "bash", awkProgram, awk, r.cfg.SortMem, strconv.Itoa(cpus), tmp}, r.data.Files...)
		read := func() error {
			if err := out.Close(); err != nil {
				return err
			}
			if i > 0 {
				return nil
			}
			return res.keepFeatures(r.keepOutput(res.System, UnixFields, outPath, false, ReadUnixOutput))
		}
		return Command{Args: args, Stdout: out}, read, nil
	})
	return res
}

// duckDBDir is the Node project of the DuckDB script.
func (r *runner) duckDBDir() string { return filepath.Join(r.cfg.Src, "bench", "duckdb") }

// installDuckDB installs @duckdb/node-api into bench/duckdb/node_modules
// with npm ci, once.
func installDuckDB(ctx context.Context, dir string) error {
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("node is not installed (DuckDB runs through Node.js)")
	}
	if fileExists(filepath.Join(dir, "node_modules", "@duckdb", "node-api", "package.json")) {
		return nil // installed already: npm is not needed (a machine without it may carry them)
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return errors.New("npm is not installed (it installs DuckDB's Node.js package)")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci in %s: %w: %s", dir, err, truncate(strings.TrimSpace(string(out)), 600))
	}
	return nil
}

// runDuckDB measures the DuckDB script.
func (r *runner) runDuckDB(ctx context.Context, cpus int) *Result {
	res := &Result{System: SysDuckDB, CPUs: cpus, What: fmt.Sprintf("DuckDB SQL, threads=%d", cpus)}
	if r.cfg.Messy || !r.data.Plain {
		res.Status, res.Reason = StatusUnavailable, "needs plain, default-layout files (not --messy)"
		return res
	}
	if r.data.Generated && r.cfg.Encoding != "utf8" {
		res.Status, res.Reason = StatusUnavailable, "DuckDB reads UTF-8, UTF-16 and latin-1 only (cp1252 needs its encodings extension, a download); generate with --encoding utf8"
		return res
	}
	dir := r.duckDBDir()
	if err := installDuckDB(ctx, dir); err != nil {
		res.Status, res.Reason = StatusUnavailable, err.Error()
		return res
	}
	outDir := filepath.Join(r.cfg.Work, "out", "duckdb")
	r.measureN(ctx, res, r.cfg.Runs, func(i int) (Command, func() error, error) {
		if err := os.RemoveAll(outDir); err != nil {
			return Command{}, nil, err
		}
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return Command{}, nil, err
		}
		outPath := filepath.Join(outDir, "features.csv")
		args := append([]string{"node", filepath.Join(dir, "features.mjs"), "--threads", strconv.Itoa(cpus), "--out", outPath}, r.data.Files...)
		read := func() error {
			var info struct {
				DuckDB string `json:"duckdb"`
			}
			last := res.Runs[len(res.Runs)-1].Stdout
			if err := json.Unmarshal([]byte(lastLine(last)), &info); err == nil && info.DuckDB != "" {
				res.Note = "DuckDB " + info.DuckDB
			}
			if i > 0 {
				return nil
			}
			return res.keepFeatures(r.keepOutput(res.System, AllFields, outPath, true, ReadDuckDBOutput))
		}
		return Command{Args: args, Dir: dir}, read, nil
	})
	return res
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// runFloor measures RunFloor in a child process (Self _floor).
func (r *runner) runFloor(ctx context.Context, cpus int) *Result {
	res := &Result{System: SysFloor, CPUs: cpus, What: fmt.Sprintf("read + split on '\\n' and ',' (%d threads)", cpus)}
	if !r.data.Plain {
		res.Status, res.Reason = StatusUnavailable, "reads plain files only"
		return res
	}
	r.measureN(ctx, res, r.cfg.Runs, func(i int) (Command, func() error, error) {
		args := append(append(append([]string{}, r.cfg.Self...), floorCommand, "--threads", strconv.Itoa(cpus)), r.data.Files...)
		read := func() error {
			var fr FloorResult
			if err := json.Unmarshal([]byte(lastLine(res.Runs[len(res.Runs)-1].Stdout)), &fr); err != nil {
				return fmt.Errorf("floor output: %w", err)
			}
			res.Note = fmt.Sprintf("%d lines, %d fields", fr.Lines, fr.Fields)
			return nil
		}
		return Command{Args: args}, read, nil
	})
	return res
}

// runCSVFloor builds bench/cmd/csvfloor and measures it.
func (r *runner) runCSVFloor(ctx context.Context, cpus int) *Result {
	res := &Result{System: SysCSVFloor, CPUs: cpus, What: fmt.Sprintf("mce's CSV reader, no-op callback (%d threads)", cpus)}
	if _, err := exec.LookPath("go"); err != nil {
		res.Status, res.Reason = StatusUnavailable, "needs the Go toolchain to build bench/cmd/csvfloor"
		return res
	}
	bin := filepath.Join(r.cfg.Work, "bin", "csvfloor")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./bench/cmd/csvfloor")
	cmd.Dir = r.cfg.Src
	if out, err := cmd.CombinedOutput(); err != nil {
		res.Status, res.Reason = StatusUnavailable, "bench/cmd/csvfloor does not build: "+truncate(strings.TrimSpace(string(out)), 400)
		return res
	}
	r.measureN(ctx, res, r.cfg.Runs, func(i int) (Command, func() error, error) {
		args := append([]string{bin, "--threads", strconv.Itoa(cpus)}, r.data.Files...)
		read := func() error {
			var out struct {
				Rows    int64 `json:"rows"`
				BadRows int64 `json:"bad_rows"`
			}
			if err := json.Unmarshal([]byte(lastLine(res.Runs[len(res.Runs)-1].Stdout)), &out); err != nil {
				return fmt.Errorf("csvfloor output: %w", err)
			}
			res.Note = fmt.Sprintf("%d rows, %d bad", out.Rows, out.BadRows)
			return nil
		}
		return Command{Args: args}, read, nil
	})
	return res
}
