package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"unicode/utf8"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/fileid"
	"github.com/mce-engine/mce/internal/procfs"
)

// Task is one unit of work the parent hands to a cluster: for `mce run`
// one raw input file, for `mce reduce` a range of a store. A mode plans its
// tasks, and its Handler, registered under the task's Kind in the cluster
// processes, runs them; the engine only schedules them.
type Task struct {
	// ID is the task's position in the plan (largest first), from 0.
	ID int `json:"id"`
	// Kind picks the worker's Handler.
	Kind string `json:"kind"`
	// Input is the task's input file, when it has one (`mce run`'s raw
	// file); logs name the task by it unless Name is set.
	Input string `json:"input"`
	// Name is how logs, failure.log and timings.csv name the task when it
	// is not Input (a store range of `mce reduce`).
	Name string `json:"name,omitempty"`
	// Size is the input's size in bytes: the scheduling order and the
	// progress view's denominator.
	Size int64 `json:"size"`
	// Output is the final output file's name in the run directory. A task
	// whose output exists is complete (--resume skips it).
	Output string `json:"output"`
	// Args are the task's settings for its Handler, which decodes them.
	Args json.RawMessage `json:"args,omitempty"`
	// LowMemory is set on a task run again after its cluster was killed
	// over the RAM limit or by the kernel: its Handler should take the
	// path that holds least in RAM (`mce run`: through disk).
	LowMemory bool `json:"low_memory,omitempty"`
	// Phase orders dependent work: a task starts only when no task of a
	// lower phase is waiting or running, so a later phase may read what
	// an earlier one wrote (`mce reduce` merges the partial outputs of
	// its shard tasks). On --resume a task whose output is gone counts as
	// complete when every task of a higher phase is complete: its output
	// was an intermediate that has been consumed. Plain runs use phase 0.
	Phase int `json:"phase,omitempty"`
}

// Label returns how logs name the task: Name, or else Input; quoted (Go
// syntax) when it holds a control character or is not UTF-8, so that a
// file named with a newline never breaks a log line.
func (t *Task) Label() string {
	s := t.Input
	if t.Name != "" {
		s = t.Name
	}
	return safeName(s)
}

// safeName quotes s when it holds a control character or invalid UTF-8.
func safeName(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return strconv.Quote(s)
		}
	}
	return s
}

// ShortLabel is Label without folders, for the progress view.
func (t *Task) ShortLabel() string { return filepath.Base(t.Label()) }

// Result is what a Handler reports for a finished task. Fields that do not
// apply stay zero.
type Result struct {
	Bytes             int64    `json:"bytes"` // uncompressed input bytes read
	Rows              int64    `json:"rows"`
	BadRows           int64    `json:"bad_rows"`                     // bad values' rows included
	BadValues         int64    `json:"bad_values"`                   // amounts or dates that did not read
	BadValuesEmptied  int64    `json:"bad_values_emptied,omitempty"` // of them, emptied in a kept row (--on-bad-value empty)
	DroppedRows       int64    `json:"dropped_rows,omitempty"`
	Users             int64    `json:"users"`
	SplitUsers        int      `json:"split_users,omitempty"`
	MapSeconds        float64  `json:"map_seconds"`
	ReduceSeconds     float64  `json:"reduce_seconds"`
	WorkerMaxSeconds  float64  `json:"worker_max_seconds"`
	WorkerMeanSeconds float64  `json:"worker_mean_seconds"`
	PeakRSSBytes      int64    `json:"peak_rss_bytes,omitempty"` // measured in the worker
	Mode              string   `json:"mode,omitempty"`           // how the handler ran it (`mce run`: group, stream or disk)
	ModeReason        string   `json:"mode_reason,omitempty"`    // why
	BadRowSamples     []string `json:"bad_row_samples,omitempty"`
}

// Skew is the slowest worker's time over the mean.
func (r *Result) Skew() float64 {
	if r.WorkerMeanSeconds <= 0 {
		return 1
	}
	return r.WorkerMaxSeconds / r.WorkerMeanSeconds
}

// TaskError is why a task failed, as failure.log records it.
type TaskError struct {
	Input   string `json:"input"`
	User    string `json:"user,omitempty"` // the user whose features failed, if any
	Line    int64  `json:"line,omitempty"`
	Message string `json:"message"`
	Stack   string `json:"stack,omitempty"` // of a panic in feature code
}

func (e *TaskError) Error() string {
	s := e.Input
	if e.Line > 0 {
		s = fmt.Sprintf("%s:%d", s, e.Line)
	}
	if e.User != "" {
		s += fmt.Sprintf(": user %q", e.User)
	}
	return s + ": " + e.Message
}

// Progress holds a running task's counters; the handler updates them and
// the worker reports them to the parent a few times a second.
type Progress struct {
	Phase      atomic.Value // string: "map", "reduce", "write"
	Bytes      atomic.Int64 // uncompressed bytes read
	DiskBytes  atomic.Int64 // on-disk bytes read (the denominator is Task.Size)
	UsersDone  atomic.Int64
	UsersTotal atomic.Int64
}

func (p *Progress) snapshot() progressMsg {
	ph, _ := p.Phase.Load().(string)
	return progressMsg{
		Phase: ph, Bytes: p.Bytes.Load(), DiskBytes: p.DiskBytes.Load(),
		UsersDone: p.UsersDone.Load(), UsersTotal: p.UsersTotal.Load(),
	}
}

// TaskEnv is what a Handler gets besides its Task.
type TaskEnv struct {
	// Spec is the feature set this worker binary carries (validated).
	Spec *feature.Spec
	// Params are the job's --param values.
	Params feature.Params
	// Job are the mode's settings for the whole run (Options.Job), which
	// its Handler decodes.
	Job json.RawMessage
	// RunDir is the run directory; outputs go there.
	RunDir string
	// Cluster is this cluster's number and CPUs its number of CPUs (the
	// number of workers a handler should use).
	Cluster, CPUs int
	// Progress is where the handler reports progress.
	Progress *Progress
	Logger   *slog.Logger
	// FreeBetweenTasks says the cluster gives its memory back to the OS
	// after each task (so that its RSS between files is its live size).
	FreeBetweenTasks bool

	// computed, when the parent lets tasks overlap, tells the worker that
	// this task's output is written (Computed); peakAtComputed is the
	// task's peak RSS then.
	computed       func()
	peakAtComputed int64
}

// Computed tells the worker that the task's output is written and only
// its commit is left (output.File.Commit: the fsync, the rename), so that
// the parent may hand the cluster its next task while it waits for the
// disk: the fsync of a features file and the start of the next were
// 5–8 ms between two files, with the CPUs idle. The task's result still
// goes to the parent once Run returns; until then the parent counts the
// task as running (a crash puts it back in the queue). A handler calls it
// at most once, after its last use of anything it keeps from one task to
// the next (arenas, tables): the next task may start at once.
func (e *TaskEnv) Computed() {
	if e.computed != nil {
		e.peakAtComputed = procfs.PeakRSS()
		e.computed()
		e.computed = nil
	}
}

// OutputPath returns where the task's final output goes.
func (e *TaskEnv) OutputPath(t *Task) string { return filepath.Join(e.RunDir, t.Output) }

// Handler runs one kind of task inside a cluster process. An error fails
// the task; a *TaskError (anywhere in the chain) says which user and line,
// and a *feature.PanicError's stack reaches failure.log. Handlers must write
// outputs through output.File so that a killed cluster leaves no partial
// output under the final name.
type Handler interface {
	Run(ctx context.Context, env *TaskEnv, t *Task) (*Result, error)
}

// Releaser is a Handler that keeps memory from one task to the next
// (arenas, caches) and gives it back when Release is called: the parent
// asks an idle cluster to, when the clusters are over the RAM limit,
// before it kills a busy one.
type Releaser interface {
	Release()
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, env *TaskEnv, t *Task) (*Result, error)

// Run implements Handler.
func (f HandlerFunc) Run(ctx context.Context, env *TaskEnv, t *Task) (*Result, error) {
	return f(ctx, env, t)
}

// The protocol between the parent and a cluster is JSON lines: the parent
// writes a config message and then one task message at a time on the
// worker's stdin; the worker answers with ready, progress and result
// messages on its stdout. With workerConfig.Overlap a task may say
// "computed" before its result (its output is written, its commit is
// left), and the parent may then send the next task: at most one task
// commits while another runs. The worker exits when its stdin closes.

// workerConfig is the first message to a worker.
type workerConfig struct {
	Cluster         int             `json:"cluster"`
	CPUs            int             `json:"cpus"`
	RunDir          string          `json:"run_dir"`
	Params          feature.Params  `json:"params,omitempty"`
	Job             json.RawMessage `json:"job,omitempty"`
	ProgressEveryMS int64           `json:"progress_every_ms"`
	// FreeBetweenTasks gives the heap back to the OS after each task, so
	// that the RSS the parent reads between files is the live size (for
	// --recycle-rss). Off, a worker keeps its pages for the next file.
	FreeBetweenTasks bool `json:"free_between_tasks,omitempty"`
	// Overlap lets the worker say "computed" once a task's output is
	// written and only its commit remains (TaskEnv.Computed), so that the
	// parent hands it the next task while the last one's output is made
	// durable.
	Overlap bool `json:"overlap,omitempty"`
}

// workerLimits are a cluster's GOMAXPROCS and GOMEMLIMIT, for a process
// package prefork started before they were known (its environment sets
// neither). It gets them before its config, as soon as Prestart adopts
// it, and applies them before it advises its heap (which depends on the
// limit), while the parent plans the run.
type workerLimits struct {
	CPUs     int   `json:"cpus"`
	MemLimit int64 `json:"mem_limit,omitempty"`
}

type toWorker struct {
	Type   string        `json:"type"` // "limits", "config", "task" or "release"
	Limits *workerLimits `json:"limits,omitempty"`
	Config *workerConfig `json:"config,omitempty"`
	Task   *Task         `json:"task,omitempty"`
}

type progressMsg struct {
	Phase      string `json:"phase,omitempty"`
	Bytes      int64  `json:"bytes"`
	DiskBytes  int64  `json:"disk_bytes"`
	UsersDone  int64  `json:"users_done"`
	UsersTotal int64  `json:"users_total"`
}

type fromWorker struct {
	Type     string       `json:"type"` // "ready", "progress", "computed" or "result"
	PID      int          `json:"pid,omitempty"`
	Task     int          `json:"task"`
	Progress *progressMsg `json:"progress,omitempty"`
	Result   *Result      `json:"result,omitempty"`
	Error    *TaskError   `json:"error,omitempty"`
}

// taskJSON is Task's JSON form: a file name that is not UTF-8 (bytes JSON
// strings cannot carry) travels in base64 as input_bytes, output_bytes.
type taskJSON struct {
	taskAlias
	InputBytes  []byte `json:"input_bytes,omitempty"`
	OutputBytes []byte `json:"output_bytes,omitempty"`
}

type taskAlias Task

// MarshalJSON implements json.Marshaler.
func (t Task) MarshalJSON() ([]byte, error) {
	j := taskJSON{taskAlias: taskAlias(t)}
	if j.InputBytes = fileid.ExactBytes(t.Input); j.InputBytes != nil {
		j.Input = ""
	}
	if j.OutputBytes = fileid.ExactBytes(t.Output); j.OutputBytes != nil {
		j.Output = ""
	}
	return json.Marshal(j)
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Task) UnmarshalJSON(b []byte) error {
	var j taskJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*t = Task(j.taskAlias)
	t.Input, t.Output = fileid.FromJSON(t.Input, j.InputBytes), fileid.FromJSON(t.Output, j.OutputBytes)
	return nil
}
