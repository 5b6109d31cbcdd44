package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/hugemem"
	"github.com/mce-engine/mce/internal/prefork"
	"github.com/mce-engine/mce/internal/procfs"
	"github.com/mce-engine/mce/internal/scratchdir"
)

// WorkerOptions configure the worker side of a cluster: the process the
// parent starts for each cluster (the hidden `worker` command of mce or of
// a features binary).
type WorkerOptions struct {
	// Spec is the feature set this binary carries.
	Spec feature.Spec
	// Handlers run the tasks, by Task.Kind: each mode registers its own
	// (filejob.Handlers, reduce.Handlers).
	Handlers map[string]Handler
	// In and Out carry the protocol; nil means os.Stdin and os.Stdout.
	In  io.Reader
	Out io.Writer
	// Logger gets the worker's log; nil means slog.Default(). The parent
	// copies the worker's stderr into its own log.
	Logger *slog.Logger
}

// heapReserveBytes is how much a cluster's heap maps, untouched, for
// hugemem.AdviseHeap when it starts.
const heapReserveBytes = 256 << 20

// maxMessageBytes bounds one protocol line.
const maxMessageBytes = 64 << 20

// worker is one cluster process's side of the protocol.
type worker struct {
	opts WorkerOptions
	spec feature.Spec
	cfg  *workerConfig
	msgs chan toWorker
	errs chan error
	out  *bufio.Writer
	enc  *json.Encoder
}

// Serve runs a cluster: it reads the config and then tasks from opts.In,
// runs each with its Handler on GOMAXPROCS workers and reports progress and
// results on opts.Out. It returns nil when In closes (the parent is done or
// gone), abandoning a running task, and an error when the protocol breaks.
func Serve(ctx context.Context, opts WorkerOptions) error {
	if opts.In == nil {
		in := pollablePipe(os.Stdin)
		if in != os.Stdin {
			defer in.Close()
		}
		opts.In = in
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := opts.Spec.Validate(); err != nil {
		return err
	}
	w := &worker{opts: opts, spec: opts.Spec, msgs: make(chan toWorker), errs: make(chan error, 1)}
	w.out = bufio.NewWriter(opts.Out)
	w.enc = json.NewEncoder(w.out)
	go w.read(ctx)
	ok, err := w.configure(ctx)
	if !ok || err != nil {
		return err
	}
	return w.loop(ctx)
}

// read decodes the parent's messages into w.msgs until In ends.
func (w *worker) read(ctx context.Context) {
	sc := bufio.NewScanner(w.opts.In)
	sc.Buffer(make([]byte, 64<<10), maxMessageBytes)
	for sc.Scan() {
		var m toWorker
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			w.errs <- fmt.Errorf("worker: bad message %.80q: %w", sc.Bytes(), err)
			return
		}
		select {
		case w.msgs <- m:
		case <-ctx.Done():
			return
		}
	}
	w.errs <- sc.Err() // nil at EOF
}

func (w *worker) send(m *fromWorker) error {
	if err := w.enc.Encode(m); err != nil {
		return fmt.Errorf("worker: write to parent: %w", err)
	}
	return w.out.Flush()
}

// configure waits for the config message and answers ready; ok is false
// when the parent went away first. A process package prefork started
// gets its limits first.
func (w *worker) configure(ctx context.Context) (ok bool, err error) {
	if prefork.Child() {
		m, ok, err := w.first(ctx, "limits")
		if !ok {
			return false, err
		}
		if m.Limits.CPUs > 0 {
			runtime.GOMAXPROCS(m.Limits.CPUs)
		}
		if m.Limits.MemLimit > 0 {
			debug.SetMemoryLimit(m.Limits.MemLimit)
		}
		w.opts.Logger.Debug("started before its cluster was known: limits applied", "gomaxprocs", runtime.GOMAXPROCS(0), "gomemlimit", debug.SetMemoryLimit(-1))
	}
	// A fresh cluster's heap grows into memory advised for huge pages:
	// its page faults were about a tenth of its CPU time. The advice
	// depends on the memory limit.
	hugemem.AdviseHeap(heapReserveBytes)
	m, ok, err := w.first(ctx, "config")
	if !ok {
		return false, err
	}
	w.cfg = m.Config
	if w.cfg.CPUs <= 0 {
		w.cfg.CPUs = runtime.GOMAXPROCS(0)
	}
	// A heavy user's receivers, past what the built-in features hold,
	// go beside the outputs: the data's disk, not a small /tmp.
	scratchdir.Set(w.cfg.RunDir)
	return true, w.send(&fromWorker{Type: "ready", PID: os.Getpid()})
}

// first waits for the next message, which must be of type want ("limits"
// or "config", with its payload); ok is false when it is not (err says
// so), on a read error, or when the parent went away first (err nil).
func (w *worker) first(ctx context.Context, want string) (m toWorker, ok bool, err error) {
	select {
	case m = <-w.msgs:
		if m.Type != want || want == "limits" && m.Limits == nil || want == "config" && m.Config == nil {
			return m, false, fmt.Errorf("worker: first message is %q, want %s", m.Type, want)
		}
		return m, true, nil
	case err := <-w.errs:
		return m, false, err
	case <-ctx.Done():
		return m, false, nil
	}
}

// loop runs the tasks and reports their progress. One task computes at a
// time; with Overlap, the next may start once the last one said it is
// computed (TaskEnv.Computed) while that one commits its output. Results
// and "computed" messages go out in the order the parent can follow: a
// task says "computed" only once the task before it has sent its result.
func (w *worker) loop(ctx context.Context) error {
	type done struct {
		task int
		res  *Result
		err  *TaskError
	}
	logger := w.opts.Logger.With("cluster", w.cfg.Cluster)
	every := time.Duration(w.cfg.ProgressEveryMS) * time.Millisecond
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	results := make(chan done, 2)
	computed := make(chan int, 2)
	var running *TaskEnv // the task computing
	var runningID int
	// committing says a task that sent "computed" has not sent its result
	// yet (committingID); heldBack that the running task is computed too
	// and says so once that result is sent.
	committing, heldBack := false, false
	var committingID int
	sendComputed := func(id int) error {
		committing, committingID, running = true, id, nil
		return w.send(&fromWorker{Type: "computed", Task: id})
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.errs:
			return err // nil at EOF: the parent is done or gone
		case m := <-w.msgs:
			if m.Type == "release" {
				if running == nil && !committing {
					w.release()
				}
				continue
			}
			if m.Type != "task" || m.Task == nil {
				return fmt.Errorf("worker: unexpected message %q", m.Type)
			}
			if running != nil {
				return fmt.Errorf("worker: task %d sent while task %d runs", m.Task.ID, runningID)
			}
			t := m.Task
			h, ok := w.opts.Handlers[t.Kind]
			if !ok {
				if err := w.send(&fromWorker{Type: "result", Task: t.ID,
					Error: &TaskError{Input: t.Label(), Message: fmt.Sprintf("this worker has no handler for tasks of kind %q", t.Kind)}}); err != nil {
					return err
				}
				continue
			}
			env := w.env(logger)
			if w.cfg.Overlap {
				env.computed = func() { computed <- t.ID }
			}
			running, runningID, heldBack = env, t.ID, false
			go func() {
				res, terr := runTask(ctx, h, env, t)
				results <- done{task: t.ID, res: res, err: terr}
			}()
		case id := <-computed:
			switch {
			case running == nil || id != runningID:
				// its result came first
			case committing:
				heldBack = true
			default:
				if err := sendComputed(id); err != nil {
					return err
				}
			}
		case d := <-results:
			if err := w.send(&fromWorker{Type: "result", Task: d.task, Result: d.res, Error: d.err}); err != nil {
				return err
			}
			switch {
			case committing && d.task == committingID:
				committing = false
				if heldBack && running != nil {
					heldBack = false
					if err := sendComputed(runningID); err != nil {
						return err
					}
				}
			case running != nil && d.task == runningID:
				running, heldBack = nil, false
			}
		case <-ticker.C:
			if running != nil {
				p := running.Progress.snapshot()
				if err := w.send(&fromWorker{Type: "progress", Task: runningID, Progress: &p}); err != nil {
					return err
				}
			}
		}
	}
}

// release gives the memory the handlers keep between tasks, and the free
// heap, back to the OS.
func (w *worker) release() {
	for _, h := range w.opts.Handlers {
		if r, ok := h.(Releaser); ok {
			r.Release()
		}
	}
	runtime.GC()
	debug.FreeOSMemory()
}

// env is a fresh TaskEnv for the next task.
func (w *worker) env(logger *slog.Logger) *TaskEnv {
	c := w.cfg
	return &TaskEnv{
		Spec: &w.spec, Params: c.Params, Job: c.Job, RunDir: c.RunDir,
		Cluster: c.Cluster, CPUs: c.CPUs, Progress: &Progress{}, Logger: logger,
		FreeBetweenTasks: c.FreeBetweenTasks,
	}
}

// runTask runs one task, turns its error into a *TaskError and measures the
// task's peak RSS. With env.FreeBetweenTasks it gives freed memory back to
// the OS, so that the parent sees the idle size; without, the pages stay
// for the next task: a fresh page costs a fault (about half of a cluster's
// CPU time went to faults when every file started from a returned heap),
// and the Go scavenger still returns memory in the background and under
// GOMEMLIMIT.
func runTask(ctx context.Context, h Handler, env *TaskEnv, t *Task) (res *Result, terr *TaskError) {
	hugemem.AdviseHeap(0) // what the heap mapped since
	procfs.ResetPeakRSS()
	start := time.Now()
	err := func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = &feature.PanicError{Value: v, Stack: string(debug.Stack())}
			}
		}()
		res, err = h.Run(ctx, env, t)
		return err
	}()
	if res == nil {
		res = &Result{}
	}
	if env.FreeBetweenTasks {
		runtime.GC()
		debug.FreeOSMemory()
	}
	res.PeakRSSBytes = env.peakAtComputed // the next task may have reset the peak since
	if res.PeakRSSBytes <= 0 {
		res.PeakRSSBytes = procfs.PeakRSS()
	}
	if err != nil {
		terr = toTaskError(t.Label(), err)
		env.Logger.Debug("task failed", "file", t.Label(), "error", terr.Error(), "seconds", time.Since(start).Seconds())
		return res, terr
	}
	return res, nil
}

// toTaskError returns the *TaskError in err's chain (a handler's, naming a
// user and line), or one made of err's text; a panic's stack is kept.
func toTaskError(label string, err error) *TaskError {
	var te *TaskError
	if !errors.As(err, &te) {
		te = &TaskError{Input: label, Message: err.Error()}
	}
	var pe *feature.PanicError
	if te.Stack == "" && errors.As(err, &pe) {
		te.Stack = pe.Stack
	}
	return te
}
