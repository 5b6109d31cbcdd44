package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/csvread"
)

// metricsNamespace is the namespace of the pipeline's Beam counters.
const metricsNamespace = "mce"

// SummaryName is the job's summary file in the output folder. It is
// written last, so that its presence says the job is complete.
const SummaryName = "summary.json"

// Defaults of Options.
const (
	DefaultFanout   = 8
	DefaultHotRows  = 10_000
	DefaultHotShare = 0.01
)

// Options configure a job. A zero Options with Inputs and Out set runs on
// Prism in this process.
type Options struct {
	// Inputs are files or folders (walked as `mce run` walks them), or
	// objects and folders of a Beam file system (gs://bucket/path/).
	Inputs []string
	// Out is the folder the features files and the summary go to (a
	// local path for Prism; a gs:// folder or one every worker mounts for
	// a cluster). It must not hold the results of an earlier job.
	Out string
	// Params are the --param values.
	Params feature.Params
	// Reader says how to read the files.
	Reader ReaderOptions
	// AcrossFiles makes one features file with one line per user over
	// all the inputs (feature.User.File is then ""); the rows of a user
	// come file by file in the order of the files' base names, then in
	// line order, as `mce reduce --across-files` gives them.
	AcrossFiles bool
	// Runner is the Beam runner: "" or "prism" (in-process), "universal"
	// (a job server: Flink, Spark or Prism, with the --endpoint flag),
	// "dataflow".
	Runner string
	// Fanout, HotRows and HotShare spread a hot user of a mergeable Spec
	// over Fanout sub-keys once it passes HotRows rows and HotShare of
	// its file's rows (see mapFn). Zero values take the defaults; Fanout
	// 1 disables the fan-out.
	Fanout   int
	HotRows  int64
	HotShare float64
	// SortValues sorts each user's rows into file order in memory before
	// a Reduce, for runners that reorder a group's values (Prism does not).
	SortValues bool
	// Parsers is the number of parser goroutines per file (default: the
	// CPUs, at most 4).
	Parsers int
	Logger  *slog.Logger
}

func (o *Options) ensureDefaults() {
	if o.Runner == "" {
		o.Runner = "prism"
	}
	if o.Fanout == 0 {
		o.Fanout = DefaultFanout
	}
	if o.HotRows == 0 {
		o.HotRows = DefaultHotRows
	}
	if o.HotShare == 0 {
		o.HotShare = DefaultHotShare
	}
	if o.Parsers <= 0 {
		o.Parsers = min(runtime.GOMAXPROCS(0), 4)
	}
	if o.Params == nil {
		o.Params = feature.Params{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Summary is the outcome of a job, written to Out/summary.json.
type Summary struct {
	Feature     string           `json:"feature"`
	Runner      string           `json:"runner"`
	JobID       string           `json:"job_id,omitempty"`
	Out         string           `json:"out"`
	Started     time.Time        `json:"started"`
	Finished    time.Time        `json:"finished"`
	Seconds     float64          `json:"seconds"`
	Files       int              `json:"files"`
	Rows        int64            `json:"rows"`
	BadRows     int64            `json:"bad_rows"`
	DroppedRows int64            `json:"dropped_rows"`
	Users       int64            `json:"users"` // lines written, over all features files
	Outputs     []outputPart     `json:"outputs"`
	Counters    map[string]int64 `json:"counters"` // the pipeline's Beam counters (namespace mce)
}

// LastLine says what the job did in one line.
func (s *Summary) LastLine() string {
	return fmt.Sprintf("%d features files, %d users, %d rows (%d bad, %d dropped by Map) in %.1fs on %s",
		len(s.Outputs), s.Users, s.Rows, s.BadRows, s.DroppedRows, s.Seconds, s.Runner)
}

// Run runs the job on spec with the runner opts.Runner and waits for it.
// The features files appear in opts.Out only when the whole job has
// succeeded: the workers write them into a hidden temporary folder inside
// it, and Run moves them in, then writes summary.json. A failed job
// leaves no features file and no summary; its error names the file and
// the user when the feature code failed.
//
// Run registers spec; a job on remote workers also needs the program to
// have called Register before beam.Init (Main does both).
func Run(ctx context.Context, spec feature.Spec, opts Options) (*Summary, error) {
	opts.ensureDefaults()
	rs, err := Register(spec)
	if err != nil {
		return nil, err
	}
	if opts.Out == "" {
		return nil, errors.New("no output folder (--out)")
	}
	if len(opts.Inputs) == 0 {
		return nil, errors.New("no input files")
	}
	if opts.Fanout < 1 || opts.HotRows < 0 || opts.HotShare < 0 || opts.HotShare > 1 {
		return nil, fmt.Errorf("fan-out %d, hot rows %d, hot share %g: want fan-out >= 1, hot rows >= 0, share in [0, 1]",
			opts.Fanout, opts.HotRows, opts.HotShare)
	}
	inputs, err := listInputs(ctx, opts.Inputs)
	if err != nil {
		return nil, err
	}
	if len(inputs) == 0 {
		return nil, fmt.Errorf("no input files in %s", strings.Join(opts.Inputs, " "))
	}
	var outputs []string
	if opts.AcrossFiles {
		// A user's rows come file by file in the order of the files'
		// names, as `mce partition` numbers the files of a store that
		// `mce reduce --across-files` reads (monthly files sort by date).
		slices.SortStableFunc(inputs, func(a, b csvread.Input) int {
			if c := strings.Compare(baseName(a.Path), baseName(b.Path)); c != 0 {
				return c
			}
			return strings.Compare(a.Path, b.Path)
		})
		outputs = []string{acrossFilesOutput}
	} else if outputs, err = outputNames(inputs); err != nil {
		return nil, err
	}
	if err := prepareOut(ctx, opts.Out); err != nil {
		return nil, err
	}
	tmp, err := tempDir(ctx, opts.Out)
	if err != nil {
		return nil, err
	}
	// Whatever happens, the temporary folder goes: a failed job leaves
	// nothing, a finished one has moved its files out.
	defer removeAll(context.WithoutCancel(ctx), tmp)

	sum := &Summary{Feature: rs.Name, Runner: opts.Runner, Out: opts.Out, Started: time.Now(), Files: len(inputs)}
	p, s := beam.NewPipelineWithRoot()
	build(s, rs, opts, inputs, outputs, tmp)
	opts.Logger.Info("beam job", "feature", rs.Name, "runner", opts.Runner, "files", len(inputs), "out", opts.Out)
	res, err := beam.Run(ctx, opts.Runner, p)
	if err != nil {
		return nil, &JobError{Runner: opts.Runner, Err: err}
	}
	if res != nil {
		sum.JobID = res.JobID()
		sum.Counters = counters(res)
	}
	if err := commit(ctx, opts.Out, tmp, outputs, sum); err != nil {
		return nil, err
	}
	return sum, nil
}

// JobError is a job the runner reports failed. Its message starts with
// the line that says why, when the feature code or the reader failed (the
// runner's report, which follows, is long).
type JobError struct {
	Runner string
	Err    error
}

func (e *JobError) Error() string {
	full := e.Err.Error()
	if h := headline(full); h != "" {
		return fmt.Sprintf("the job failed: %s\n(the %s runner's report follows)\n%s", h, e.Runner, full)
	}
	return fmt.Sprintf("the job failed on %s: %s", e.Runner, full)
}

func (e *JobError) Unwrap() error { return e.Err }

// headline finds the line of a runner's report that a UserError or a
// reader's error wrote: the runners pass errors on as text.
func headline(report string) string {
	lines := strings.Split(report, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.Contains(l, ": user \"") && strings.Contains(l, "\": ") {
			return l
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "read ") || strings.Contains(l, "too many bad rows") {
			return l
		}
	}
	return ""
}

// build adds the job's transforms under s.
func build(s beam.Scope, spec *feature.Spec, o Options, inputs []csvread.Input, outputs []string, tmp string) {
	files := make([]string, len(inputs))
	elems := make([]inputFile, len(inputs))
	for i, in := range inputs {
		files[i] = baseName(in.Path)
		elems[i] = inputFile{Index: i, Path: in.Path}
	}
	// A Reshuffle after Create lets the runner hand the files to several
	// workers rather than read them all in the bundle that created them.
	in := beam.Reshuffle(s.Scope("inputs"), beam.CreateList(s.Scope("inputs"), elems))
	rows, stats := beam.ParDo2(s.Scope("read"), &readFn{Spec: spec.Name, Reader: o.Reader, Parsers: o.Parsers}, in)
	keyed := beam.ParDo(s.Scope("map"), &mapFn{Spec: spec.Name, Params: o.Params, Files: files, AcrossFiles: o.AcrossFiles,
		Fanout: o.Fanout, HotRows: o.HotRows, HotShare: o.HotShare}, rows)
	var lines beam.PCollection // KV<file, keyed line>
	if combinable(spec) {
		parts := beam.CombinePerKey(s.Scope("add"), &addFn{Spec: spec.Name, Params: o.Params, Files: files}, keyed)
		users := beam.ParDo(s.Scope("unsalt"), unsaltFn, parts)
		done := beam.CombinePerKey(s.Scope("finish"), &finishFn{Spec: spec.Name, Params: o.Params, Files: files}, users)
		lines = beam.ParDo(s.Scope("byfile"), byFileFn, done)
	} else {
		groups := beam.GroupByKey(s.Scope("group"), keyed)
		lines = beam.ParDo(s.Scope("reduce"), &reduceFn{Spec: spec.Name, Params: o.Params, Files: files, SortValues: o.SortValues}, groups)
	}
	st := beam.ParDo(s.Scope("stats"), &statsByFileFn{AcrossFiles: o.AcrossFiles}, stats)
	out := beam.CoGroupByKey(s.Scope("collect"), lines, st)
	beam.ParDo0(s.Scope("write"), &writeFn{Spec: spec.Name, TempDir: tmp, Outputs: outputs}, out)
}

// counters sums the job's committed counters of namespace mce by name.
func counters(res beam.PipelineResult) map[string]int64 {
	m := map[string]int64{}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace == metricsNamespace {
			m[c.Key.Name] += c.Result()
		}
	}
	for _, d := range res.Metrics().AllMetrics().Distributions() {
		if d.Key.Namespace == metricsNamespace {
			r := d.Result()
			m[d.Key.Name+"_max"] = max(m[d.Key.Name+"_max"], r.Max)
			m[d.Key.Name+"_count"] += r.Count
		}
	}
	return m
}

// listInputs expands the inputs as `mce run` does: local files and
// folders through csvread.ListInputs; remote ones through Beam's file
// systems (a path ending in / lists the folder's data files). All are
// sorted by size, largest first, then by path.
func listInputs(ctx context.Context, paths []string) ([]csvread.Input, error) {
	var local []string
	var ins []csvread.Input
	for _, p := range paths {
		if !isRemote(p) {
			local = append(local, p)
			continue
		}
		fsys, err := filesystem.New(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", p, err)
		}
		glob := p
		if strings.HasSuffix(p, "/") {
			glob = p + "*"
		}
		names, err := fsys.List(ctx, glob)
		if err != nil {
			fsys.Close()
			return nil, fmt.Errorf("list %s: %w", p, err)
		}
		if len(names) == 0 {
			fsys.Close()
			return nil, fmt.Errorf("input %s: no such file or folder", p)
		}
		for _, n := range names {
			if strings.HasSuffix(p, "/") && !csvread.IsDataFile(n) {
				continue
			}
			size, err := fsys.Size(ctx, n)
			if err != nil {
				fsys.Close()
				return nil, fmt.Errorf("input %s: %w", n, err)
			}
			ins = append(ins, csvread.Input{Path: n, Size: size})
		}
		fsys.Close()
	}
	if len(local) > 0 {
		l, err := csvread.ListInputs(local)
		if err != nil {
			return nil, err
		}
		ins = append(ins, l...)
	}
	slices.SortStableFunc(ins, func(a, b csvread.Input) int {
		if a.Size != b.Size {
			if a.Size > b.Size {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
	return ins, nil
}

// prepareOut makes the output folder and refuses one that holds results.
func prepareOut(ctx context.Context, out string) error {
	if isRemote(out) {
		fsys, err := filesystem.New(ctx, out)
		if err != nil {
			return fmt.Errorf("--out %s: %w", out, err)
		}
		defer fsys.Close()
		names, err := fsys.List(ctx, joinPath(out, "*"+featuresSuffix))
		if err != nil {
			return fmt.Errorf("--out %s: %w", out, err)
		}
		if len(names) > 0 {
			return fmt.Errorf("--out %s already holds features files (%s): give a new folder", out, names[0])
		}
		return nil
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	ents, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), featuresSuffix) || e.Name() == SummaryName {
			return fmt.Errorf("--out %s already holds the results of a job (%s): give a new folder", out, e.Name())
		}
	}
	return nil
}

// tempDir returns the job's temporary folder inside out: hidden, so that
// nothing in it looks like a result.
func tempDir(ctx context.Context, out string) (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	dir := joinPath(out, ".beam-"+hex.EncodeToString(b[:]))
	if !isRemote(dir) {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", err
		}
		// NB: the workers of a remote runner cannot write into a local
		// folder: Out must then be a gs:// or s3:// folder (or one that
		// every worker mounts at the same path).
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", err
		}
		dir = abs
	}
	return dir, nil
}

// commit checks that every features file is in the temporary folder,
// moves them into out, then writes the summary.
func commit(ctx context.Context, out, tmp string, outputs []string, sum *Summary) error {
	for _, name := range outputs {
		b, err := readFile(ctx, joinPath(tmp, name+partSuffix))
		if err != nil {
			return fmt.Errorf("commit %s: the job finished without writing it: %w", name, err)
		}
		var part outputPart
		if err := json.Unmarshal(b, &part); err != nil {
			return fmt.Errorf("commit %s: %w", name, err)
		}
		sum.Outputs = append(sum.Outputs, part)
		sum.Users += part.Users
		for _, in := range part.Inputs {
			sum.Rows += in.Rows
			sum.BadRows += in.BadRows
		}
	}
	sum.DroppedRows = sum.Counters["dropped_rows"]
	for _, name := range outputs {
		if err := move(ctx, joinPath(tmp, name), joinPath(out, name)); err != nil {
			return err
		}
	}
	sum.Finished = time.Now()
	sum.Seconds = sum.Finished.Sub(sum.Started).Seconds()
	js, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(ctx, joinPath(out, SummaryName), func(w io.Writer) error {
		_, err := w.Write(append(js, '\n'))
		return err
	})
}

func readFile(ctx context.Context, p string) ([]byte, error) {
	if !isRemote(p) {
		return os.ReadFile(p)
	}
	fsys, err := filesystem.New(ctx, p)
	if err != nil {
		return nil, err
	}
	defer fsys.Close()
	r, err := fsys.OpenRead(ctx, p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// move renames a finished file into the output folder: a rename for a
// local file (the temporary folder is inside out, on the same disk), the
// file system's rename, or a copy and a remove.
func move(ctx context.Context, from, to string) error {
	if !isRemote(from) {
		if err := os.Rename(from, to); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return syncDir(filepath.Dir(to))
	}
	fsys, err := filesystem.New(ctx, from)
	if err != nil {
		return err
	}
	defer fsys.Close()
	if r, ok := fsys.(filesystem.Renamer); ok {
		return r.Rename(ctx, from, to)
	}
	c, ok1 := fsys.(filesystem.Copier)
	rm, ok2 := fsys.(filesystem.Remover)
	if !ok1 || !ok2 {
		return fmt.Errorf("commit %s: its file system can neither rename nor copy", to)
	}
	if err := c.Copy(ctx, from, to); err != nil {
		return fmt.Errorf("commit %s: %w", to, err)
	}
	return rm.Remove(ctx, from)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// removeAll removes the temporary folder and what is in it.
func removeAll(ctx context.Context, dir string) {
	if !isRemote(dir) {
		os.RemoveAll(dir)
		return
	}
	fsys, err := filesystem.New(ctx, dir)
	if err != nil {
		return
	}
	defer fsys.Close()
	rm, ok := fsys.(filesystem.Remover)
	if !ok {
		return
	}
	names, _ := fsys.List(ctx, joinPath(dir, "*"))
	for _, n := range names {
		rm.Remove(ctx, n)
	}
}
