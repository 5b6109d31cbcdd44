package filejob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/inram"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/internal/fileid"
	"github.com/mce-engine/mce/internal/gctune"
	"github.com/mce-engine/mce/internal/hugemem"
	"github.com/mce-engine/mce/internal/procfs"
)

// Kind is the kind of task that map-reduces one raw input file.
const Kind = "file"

// Modes of reducing a file inside a cluster.
const (
	// ModeGroup holds every user's rows in RAM and reduces user by user,
	// biggest first, with work stealing: the fastest, with RAM about the
	// file's size. Any feature set.
	ModeGroup = "group"
	// ModeStream adds each row to its user's Aggregator as it is read:
	// RAM grows with the users, not the rows. Mergeable feature sets only.
	ModeStream = "stream"
	// ModeDisk groups the rows by user through sorted runs on local disk
	// (package partition's machinery) and reduces user by user: RAM is
	// the sort buffers and one user's rows, whatever the file's size. Any
	// feature set; the path for a Reduce set whose file does not fit.
	ModeDisk = "disk"
	// ModeAuto takes the one pass (ModeStream) for a mergeable set; it
	// groups a file of any other set whose rows fit the cluster's share of
	// the RAM limit, and sends a bigger one through disk; a file retried
	// after a RAM kill always takes the low-memory path.
	ModeAuto = "auto"
)

// Job is the settings of a whole `mce run`, sent to every cluster (as
// engine.Options.Job) and kept in the run folder's plan for --resume.
type Job struct {
	// Reader says how raw files are read (its Schema is not sent: the
	// worker's Spec decides).
	Reader csvread.Options `json:"reader"`
	// Mode is ModeAuto, ModeGroup or ModeStream ("" is auto).
	Mode string `json:"mode,omitempty"`
	// Output says how the features files are written: format (the
	// tasks' Output names, from PlanFormat, end with its extension) and
	// key column name.
	Output output.Options `json:"output,omitzero"`
}

// Encode returns j as engine.Options.Job.
func (j Job) Encode() (json.RawMessage, error) {
	j.Reader.Schema = nil
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode run settings: %w", err)
	}
	return b, nil
}

// CheckMode validates a --mode value for a feature set.
func CheckMode(mode string, mergeable bool, featureName string) error {
	switch mode {
	case "", ModeAuto, ModeGroup, ModeDisk:
		return nil
	case ModeStream:
		if !mergeable {
			return fmt.Errorf("--mode stream: feature set %s is not mergeable (it has Reduce, not NewAggregator): use --mode group or auto", featureName)
		}
		return nil
	}
	return fmt.Errorf("--mode %q: want auto, group, stream or disk", mode)
}

// Plan lists paths (files and folders, see csvread.ListInputs) and plans
// one task per input file, largest first (ties by path), each with a
// features file name unique in the run folder (fileid.Namer).
func Plan(paths []string) ([]engine.Task, error) { return PlanFormat(paths, output.CSV) }

// PlanFormat is Plan for features files in format: the same names, with
// the format's extension.
func PlanFormat(paths []string, format output.Format) ([]engine.Task, error) {
	in, err := csvread.ListInputs(paths)
	if err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, errors.New("no input files (want .csv, .tsv or .txt, optionally .gz or .zst)")
	}
	tasks, err := PlanInputs(in)
	for i := range tasks {
		tasks[i].Output = format.Name(tasks[i].Output)
	}
	return tasks, err
}

// PlanInputs plans listed inputs as Plan does: other engines that write
// `mce run`'s files (the Beam pipeline) name them with it.
func PlanInputs(in []csvread.Input) ([]engine.Task, error) {
	in = slices.Clone(in)
	sort.SliceStable(in, func(i, j int) bool {
		if in[i].Size != in[j].Size {
			return in[i].Size > in[j].Size
		}
		return in[i].Path < in[j].Path
	})
	var names fileid.Namer
	tasks := make([]engine.Task, 0, len(in))
	for i, x := range in {
		abs, err := filepath.Abs(x.Path)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", x.Path, err)
		}
		tasks = append(tasks, engine.Task{ID: i, Kind: Kind, Input: abs, Size: x.Size, Output: names.Name(abs)})
	}
	return tasks, nil
}

// Handlers returns the handler of `mce run`'s tasks, to register with
// engine.WorkerOptions.Handlers.
func Handlers() map[string]engine.Handler {
	return map[string]engine.Handler{Kind: handler{}}
}

// handler runs Kind tasks; it gives the row arena back when the parent
// asks (engine.Releaser).
type handler struct{}

func (handler) Run(ctx context.Context, env *engine.TaskEnv, t *engine.Task) (*engine.Result, error) {
	return runFile(ctx, env, t)
}

// Release implements engine.Releaser.
func (handler) Release() { rowArena.Release() }

// modeChoice is the input of chooseMode.
type modeChoice struct {
	mode      string // --mode
	mergeable bool
	input     string
	size      int64 // on disk
	memLimit  int64 // the cluster's GOMEMLIMIT (its share of the RAM limit)
	lowMemory bool  // a retry after a RAM kill
	perByte   float64
}

// chooseMode decides how a file is reduced, and says why. A file on its
// low-memory path (a retry after a RAM kill, or a file as big as one that
// was killed) goes through disk, whose RAM does not grow with the file nor
// with its users. In ModeAuto a mergeable set takes the one pass
// (ModeStream), whose RAM grows with the users' aggregates, not with the
// rows: a file whose users outgrow the cluster's share gives way to the
// disk path in the same process (Run). Any other set is grouped when its
// grouped rows fit: about perByte of RAM per byte on disk (measured on
// this cluster's earlier files, or rowsEstimate's guess), within 80% of
// the cluster's share when measured, half of it when guessed; else it
// goes through disk.
func chooseMode(c modeChoice) (mode, why string) {
	switch {
	case c.lowMemory:
		return ModeDisk, "low-memory path after a RAM kill"
	case c.mode == ModeStream && !c.mergeable:
		return ModeGroup, "--mode stream needs a mergeable feature set"
	case c.mode == ModeGroup || c.mode == ModeStream || c.mode == ModeDisk:
		return c.mode, "--mode " + c.mode
	case c.mergeable:
		return ModeStream, "one pass: mergeable feature set"
	case c.memLimit <= 0 || c.memLimit == math.MaxInt64:
		return ModeGroup, "no RAM limit"
	}
	need, room, how := rowsEstimate(c.input, c.size), c.memLimit/2, "estimated"
	if c.perByte > 0 {
		need, room, how = int64(c.perByte*float64(c.size)), c.memLimit/10*8, "measured"
	}
	if need <= room {
		return ModeGroup, fmt.Sprintf("rows ~%d MiB (%s) fit %d MiB of the cluster's share", need>>20, how, room>>20)
	}
	return ModeDisk, fmt.Sprintf("rows ~%d MiB (%s) > %d MiB of the cluster's share", need>>20, how, room>>20)
}

// rowsEstimate is about the RAM a grouped file takes: its rows, their
// index and the reader's buffers (fileid.RawEstimate's raw bytes and a
// quarter more).
func rowsEstimate(input string, size int64) int64 {
	raw := fileid.RawEstimate(input, size)
	return raw + raw/4
}

// measured holds the peak RSS per byte on disk of the files this cluster
// process grouped, plain and compressed apart; zero until one was big
// enough to say (learnBytes).
var measured struct{ plain, compressed float64 }

// learnBytes is the smallest file whose peak RSS is taken as a measure:
// below it the process's own baseline dominates.
const learnBytes = 64 << 20

// perByte returns the measured RAM per byte for input, or 0.
func perByte(input string) float64 {
	if fileid.Compressed(input) {
		return measured.compressed
	}
	return measured.plain
}

// learn records a grouped file's peak RSS per byte on disk.
func learn(input string, size, peak int64) {
	if size < learnBytes || peak <= 0 {
		return
	}
	r := float64(peak) / float64(size)
	if fileid.Compressed(input) {
		measured.compressed = r
	} else {
		measured.plain = r
	}
}

// streamGCPercent is the GOGC of a cluster during a one-pass file.
const streamGCPercent = 200

// streamGC sets GOGC to streamGCPercent, unless the user set GOGC, and
// returns the function that sets it back.
func streamGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(streamGCPercent)
	return func() { debug.SetGCPercent(old) }
}

// rowArena holds the rows of the file a cluster is grouping: one task runs
// at a time in a cluster process.
var rowArena hugemem.Arena

// runFile is the handler of Kind: the whole map and reduce of one raw
// file inside one cluster, its features file written through
// output.Table in the Job's format.
func runFile(ctx context.Context, env *engine.TaskEnv, t *engine.Task) (*engine.Result, error) {
	var job Job
	if len(env.Job) > 0 {
		if err := json.Unmarshal(env.Job, &job); err != nil {
			return nil, fmt.Errorf("run settings: %w", err)
		}
	}
	out, err := output.CreateTable(env.OutputPath(t), env.Spec, job.Output)
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	res, err := Run(ctx, Input{
		Path: t.Input, Size: t.Size, Job: job, Env: env, FreeArena: env.FreeBetweenTasks,
		LowMemory: t.LowMemory, ScratchDir: output.ScratchName(env.OutputPath(t), "spill"),
	}, out.Writer())
	if err != nil {
		return nil, taskError(t.Input, err)
	}
	if err := out.Close(); err != nil {
		return nil, err
	}
	// Only the disk is left to wait for: the cluster may start its next
	// file meanwhile.
	env.Computed()
	faultBeforeCommit(t.Input)
	if err := out.Commit(); err != nil {
		return nil, err
	}
	return res, nil
}

// taskError says which user and line err names, when it does, for
// failure.log.
func taskError(input string, err error) error {
	te := &engine.TaskError{Input: input}
	var ue *inram.UserError
	var fe *csvread.FileError
	switch {
	case errors.As(err, &ue):
		te.User, te.Line, te.Message = ue.User, ue.Line, ue.Err.Error()
	case errors.As(err, &fe):
		te.Line, te.Message = fe.Line, fe.Err.Error()
	default:
		return err
	}
	var pe *feature.PanicError
	if errors.As(err, &pe) {
		te.Stack = pe.Stack
	}
	return te
}

// Input is one file for Run.
type Input struct {
	Path string
	Size int64 // on disk, for the mode choice
	Job  Job
	// Env gives the Spec, Params, CPUs (the workers), Progress and Logger.
	Env *engine.TaskEnv
	// FreeArena gives the row arena's memory back after the file instead
	// of keeping it for the next.
	FreeArena bool
	// LowMemory asks for the path that holds least in RAM (a retry after
	// a RAM kill).
	LowMemory bool
	// ScratchDir is the folder ModeDisk spills into (made and removed by
	// Run); "" makes one in the system's temporary folder.
	ScratchDir string
}

// Run reads one raw file, maps it on in.Env.CPUs workers, groups or
// streams it (package inram) and writes its features table to w (a
// bufio.Writer or another io.StringWriter). When w is an *output.Writer,
// Run tells it the name the file's header gives the user column (which
// names the key column) and, once the file is read, whether its times
// had no zone (which are then written without one). It is the whole
// per-file job:
// the cluster's handler runs it into the run folder and `mce debug` into
// its stdout.
func Run(ctx context.Context, in Input, w io.Writer) (*engine.Result, error) {
	env := in.Env
	p := env.Progress
	p.Phase.Store("open")
	ropts := in.Job.Reader
	ropts.Schema = env.Spec.Schema
	ropts.Reads = env.Spec.Reads // the rows carry only what the features read
	f, err := csvread.Open(in.Path, ropts)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if ow, ok := w.(*output.Writer); ok {
		ow.SetInputKeyName(f.UserName())
	}
	// The rows live in the cluster's arena until the output is written;
	// its regions stay mapped for the next file unless the cluster gives
	// its memory back between files.
	defer func() {
		if in.FreeArena {
			rowArena.Release()
		} else {
			rowArena.Reset()
		}
	}()
	budget := memBudget()
	mode, why := chooseMode(modeChoice{
		mode: in.Job.Mode, mergeable: env.Spec.Mergeable(), input: in.Path, size: in.Size,
		memLimit: budget, lowMemory: in.LowMemory, perByte: perByte(in.Path),
	})
	env.Logger.Debug("mode", "file", in.Path, "mode", mode, "why", why)
	if mode == ModeDisk {
		return runDiskWhy(ctx, in, f, w, why)
	}
	// A one pass that auto chose gives way to ModeDisk when its users
	// outgrow outgrowShare of the cluster's share of the RAM limit: the
	// file is read again, through disk, in this process, instead of the
	// RAM monitor killing the cluster for it.
	var maxLive int64
	if mode == ModeStream && in.Job.Mode != ModeStream && budget > 0 && budget < math.MaxInt64 {
		maxLive = budget / 100 * outgrowShare
	}
	res, err := runInRAM(ctx, in, f, w, mode, why, maxLive)
	var og *outgrownError
	if !errors.As(err, &og) {
		return res, err
	}
	why = og.Error()
	env.Logger.Info("file read again through disk", "file", in.Path, "why", why)
	f.Close()
	// Give the aggregates' memory back before the sort buffers, which are
	// mapped outside the Go heap, are made.
	debug.FreeOSMemory()
	again, err := csvread.Open(in.Path, ropts)
	if err != nil {
		return nil, err
	}
	defer again.Close()
	return runDiskWhy(ctx, in, again, w, why)
}

// outgrowShare is the percentage of the cluster's share of the RAM limit
// that the one pass's live heap may reach before it gives way to ModeDisk
// (Run): the rest is for its Finish (a features line per user, sorted)
// and the collector's headroom.
const outgrowShare = 40

// outgrownError stops a one pass whose live heap (projected) passed its
// bound, limit, after read bytes of the file. Its text is the file's
// mode_reason.
type outgrownError struct{ users, live, limit, read int64 }

func (e *outgrownError) Error() string {
	return fmt.Sprintf("one pass outgrew %d%% of the cluster's share: %d users, ~%d MiB live > %d MiB after %d MiB read",
		outgrowShare, e.users, e.live>>20, e.limit>>20, e.read>>20)
}

// runDiskWhy is runDisk, its result saying why.
func runDiskWhy(ctx context.Context, in Input, f *csvread.File, w io.Writer, why string) (*engine.Result, error) {
	rowArena.Trim(0)
	res, err := runDisk(ctx, in, f, w)
	if res != nil {
		res.ModeReason = why
	}
	return res, err
}

// outgrowGuard tells when a one pass's users will not fit in limit bytes
// of live heap. The live heap is known only as the last collection found
// it, and the collector may let the heap triple before the next one
// (GOGC 200), so it projects: from the last two collections it knows
// what each new user cost (the reader's buffers and other fixed memory
// cancel out), and adds that for every user made since. Safe for
// concurrent use.
type outgrowGuard struct {
	limit int64

	mu     sync.Mutex
	cycles uint64 // collections so far, when last looked
	// The live heap and the users at the last two collections (since the
	// guard was made) that found more users than the one before.
	live, users         int64
	prevLive, prevUsers int64
	sampled, havePrev   bool
	sample              [2]metrics.Sample
}

// newOutgrowGuard makes a guard for a one pass starting now: collections
// before it (of earlier files) are not its figures.
func newOutgrowGuard(limit int64) *outgrowGuard {
	g := &outgrowGuard{limit: limit, sample: [2]metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/live:bytes"},
	}}
	metrics.Read(g.sample[:])
	if g.sample[0].Value.Kind() == metrics.KindUint64 {
		g.cycles = g.sample[0].Value.Uint64()
	}
	return g
}

// check returns the projected live heap for users users, and whether it
// is over the bound.
func (g *outgrowGuard) check(users int64) (int64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	metrics.Read(g.sample[:])
	if g.sample[0].Value.Kind() != metrics.KindUint64 || g.sample[1].Value.Kind() != metrics.KindUint64 {
		return 0, false
	}
	return g.observe(g.sample[0].Value.Uint64(), int64(g.sample[1].Value.Uint64()), users)
}

// observe is check, given the collections so far and the live heap the
// last one found; g.mu is held.
func (g *outgrowGuard) observe(cycles uint64, live, users int64) (int64, bool) {
	if cycles != g.cycles {
		g.cycles = cycles
		if g.sampled && users > g.users {
			g.prevLive, g.prevUsers, g.havePrev = g.live, g.users, true
		}
		g.live, g.users, g.sampled = live, users, true
	}
	p := g.live
	if d := g.users - g.prevUsers; g.havePrev && d > 0 && g.live > g.prevLive && users > g.users {
		p += int64(float64(g.live-g.prevLive) / float64(d) * float64(users-g.users))
	}
	return p, p > g.limit
}

// runInRAM is Run's ModeGroup and ModeStream: the rows grouped in RAM or
// streamed into their users' aggregates. With maxLive > 0, a live heap
// (after a collection) above maxLive stops the read with an
// *outgrownError.
func runInRAM(ctx context.Context, in Input, f *csvread.File, w io.Writer, mode, why string, maxLive int64) (*engine.Result, error) {
	env := in.Env
	p := env.Progress
	// Keep about what this file's rows need of the last file's arena.
	if mode == ModeGroup {
		rowArena.Trim(rowsEstimate(in.Path, in.Size))
	} else {
		rowArena.Trim(0)
	}
	opts := inram.Options{
		Spec: env.Spec, Params: env.Params, Workers: env.CPUs,
		File: filepath.Base(in.Path), Encoding: f.Encoding, Arena: &rowArena, Group: mode == ModeGroup,
	}
	if mode == ModeStream {
		// The one pass's heap is its users' aggregates and the tables
		// they outgrow: at GOGC 100 the collector runs every time they
		// double, and the scavenger hands the freed pages back to the OS
		// in between, so that the next ones fault in afresh. 200 halves
		// the collections and the faults (the cluster's CPU time -8 to
		// -12% on the bench data, peak RSS +5%); GOMEMLIMIT still bounds
		// the heap. A GOGC the user set is left as it is.
		defer streamGC()()
	} else {
		// Grouping's live heap is the users' index and the rows' places
		// (the rows are in rowArena, outside the heap), and its garbage the
		// Reduce's: maps and strings made for a user and dropped at the
		// next. It takes the same fixed headroom as mce reduce's clusters,
		// which run the same Reduce: on the bench's data (Reduce-form
		// f.go, 8 rounds) -9% CPU, +29 MiB peak RSS at 300 MB.
		defer gctune.Start()()
	}
	job, err := inram.New(opts)
	if err != nil {
		return nil, err
	}
	defer pumpProgress(p, f, func() (int64, int64) { return job.UsersDone(), job.UsersTotal() })()

	p.Phase.Store("map")
	t0 := time.Now()
	var guard *outgrowGuard
	if maxLive > 0 {
		guard = newOutgrowGuard(maxLive)
	}
	stats, err := f.Scan(ctx, env.CPUs, func(b *csvread.Batch) error {
		if err := job.Add(b); err != nil {
			return err
		}
		if guard != nil {
			users := job.UsersTotal()
			if live, over := guard.check(users); over {
				return &outgrownError{users: users, live: live, limit: maxLive, read: f.BytesRead()}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	scan := time.Since(t0)
	env.Logger.Debug("file read", "file", in.Path, "rows", stats.Rows, "bad_rows", stats.BadRows, "seconds", scan.Seconds())
	tellTimes(w, in.Path, stats, env.Logger)

	p.Phase.Store("reduce")
	js, err := job.Finish(ctx, w)
	if err != nil {
		return nil, err
	}
	mx, mean := js.BusyMaxMean()
	if mode == ModeGroup {
		learn(in.Path, in.Size, procfs.PeakRSS())
	}
	res := &engine.Result{
		Mode:              mode,
		ModeReason:        why,
		Bytes:             stats.Bytes,
		Rows:              stats.Rows,
		BadRows:           stats.BadRows,
		BadValues:         stats.BadValues,
		BadValuesEmptied:  stats.EmptiedValues,
		DroppedRows:       js.Dropped,
		Users:             js.Users,
		SplitUsers:        js.SplitUsers,
		MapSeconds:        (scan + js.IndexTime).Seconds(),
		ReduceSeconds:     (js.ReduceTime + js.WriteTime).Seconds(),
		WorkerMaxSeconds:  mx.Seconds(),
		WorkerMeanSeconds: mean.Seconds(),
	}
	for _, s := range stats.Samples {
		res.BadRowSamples = append(res.BadRowSamples, s.Error()+": "+s.Text)
	}
	return res, nil
}

// tellTimes tells the features table (an *output.Writer) whether the
// file's times had no zone, before its first line, so that they are
// written without one; it warns of a file that mixes both.
func tellTimes(w io.Writer, path string, st csvread.Stats, log *slog.Logger) {
	if ow, ok := w.(*output.Writer); ok {
		ow.SetLocalTimes(st.Zoneless())
	}
	if st.ZonedTimes > 0 && st.LocalTimes > 0 {
		log.Warn("times with and without a zone: those without are read as UTC (give --tz ZONE to say theirs)",
			"file", path, "with_zone", st.ZonedTimes, "without_zone", st.LocalTimes)
	}
}

// pumpProgress copies the reader's counters and users (done, total) into
// p until the returned function is called.
func pumpProgress(p *engine.Progress, f *csvread.File, users func() (done, total int64)) (stop func()) {
	done := make(chan struct{})
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			p.Bytes.Store(f.BytesRead())
			p.DiskBytes.Store(f.DiskBytesRead())
			n, total := users()
			p.UsersTotal.Store(total)
			p.UsersDone.Store(n)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-pumped }
}

// memBudget is the memory this cluster may use: its GOMEMLIMIT (its share
// of the RAM limit), or less when its cgroup's limit is lower, since the
// kernel kills at that one.
func memBudget() int64 {
	lim := debug.SetMemoryLimit(-1)
	if cg, err := procfs.OwnCgroup(); err == nil {
		if c, ok := cg.Limit(); ok && c < lim {
			lim = c
		}
	}
	return lim
}
