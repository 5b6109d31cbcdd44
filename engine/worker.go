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
	"github.com/mce-engine/mce/engine/inram"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/internal/procfs"
)

// WorkerOptions configure the worker side of a cluster: the process the
// parent starts for each cluster (the hidden `worker` command of mce or of
// a features binary).
type WorkerOptions struct {
	// Spec is the feature set this binary carries.
	Spec feature.Spec
	// Handlers adds task kinds to the built-in KindFile handler (or
	// replaces it, under the same name).
	Handlers map[string]Handler
	// In and Out carry the protocol; nil means os.Stdin and os.Stdout.
	In  io.Reader
	Out io.Writer
	// Logger gets the worker's log; nil means slog.Default(). The parent
	// copies the worker's stderr into its own log.
	Logger *slog.Logger
}

// maxMessageBytes bounds one protocol line.
const maxMessageBytes = 64 << 20

// Serve runs a cluster: it reads the config and then tasks from opts.In,
// runs each with its Handler on GOMAXPROCS workers and reports progress and
// results on opts.Out. It returns nil when In closes (the parent is done or
// gone), abandoning a running task, and an error when the protocol breaks.
func Serve(ctx context.Context, opts WorkerOptions) error {
	if opts.In == nil {
		opts.In = os.Stdin
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	spec := opts.Spec
	if err := spec.Validate(); err != nil {
		return err
	}
	handlers := map[string]Handler{KindFile: HandlerFunc(runFile)}
	for k, h := range opts.Handlers {
		handlers[k] = h
	}

	msgs := make(chan toWorker)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(opts.In)
		sc.Buffer(make([]byte, 64<<10), maxMessageBytes)
		for sc.Scan() {
			var m toWorker
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				readErr <- fmt.Errorf("worker: bad message %.80q: %w", sc.Bytes(), err)
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err() // nil at EOF
	}()

	out := bufio.NewWriter(opts.Out)
	enc := json.NewEncoder(out)
	send := func(m *fromWorker) error {
		if err := enc.Encode(m); err != nil {
			return fmt.Errorf("worker: write to parent: %w", err)
		}
		return out.Flush()
	}

	var cfg *workerConfig
	select {
	case m := <-msgs:
		if m.Type != "config" || m.Config == nil {
			return fmt.Errorf("worker: first message is %q, want config", m.Type)
		}
		cfg = m.Config
	case err := <-readErr:
		if err == nil {
			return nil
		}
		return err
	case <-ctx.Done():
		return nil
	}
	if cfg.CPUs <= 0 {
		cfg.CPUs = runtime.GOMAXPROCS(0)
	}
	reader := cfg.Reader
	reader.Schema = spec.Schema
	logger := opts.Logger.With("cluster", cfg.Cluster)
	every := time.Duration(cfg.ProgressEveryMS) * time.Millisecond
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	if err := send(&fromWorker{Type: "ready", PID: os.Getpid()}); err != nil {
		return err
	}

	type done struct {
		task int
		res  *Result
		err  *TaskError
	}
	results := make(chan done, 1)
	var running *TaskEnv
	var runningID int
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			return err // nil at EOF: the parent is done or gone
		case m := <-msgs:
			if m.Type != "task" || m.Task == nil {
				return fmt.Errorf("worker: unexpected message %q", m.Type)
			}
			if running != nil {
				return fmt.Errorf("worker: task %d sent while task %d runs", m.Task.ID, runningID)
			}
			t := m.Task
			h, ok := handlers[t.Kind]
			if !ok {
				if err := send(&fromWorker{Type: "result", Task: t.ID,
					Error: &TaskError{Input: t.Input, Message: fmt.Sprintf("this worker has no handler for tasks of kind %q", t.Kind)}}); err != nil {
					return err
				}
				continue
			}
			env := &TaskEnv{
				Spec: &spec, Params: cfg.Params, Reader: reader, RunDir: cfg.RunDir,
				Cluster: cfg.Cluster, CPUs: cfg.CPUs, Progress: &Progress{}, Logger: logger,
				FreeBetweenTasks: cfg.FreeBetweenTasks, Mode: cfg.Mode,
			}
			running, runningID = env, t.ID
			go func() {
				res, terr := runTask(ctx, h, env, t, cfg.FreeBetweenTasks)
				results <- done{task: t.ID, res: res, err: terr}
			}()
		case d := <-results:
			running = nil
			if err := send(&fromWorker{Type: "result", Task: d.task, Result: d.res, Error: d.err}); err != nil {
				return err
			}
		case <-ticker.C:
			if running != nil {
				p := running.Progress.snapshot()
				if err := send(&fromWorker{Type: "progress", Task: runningID, Progress: &p}); err != nil {
					return err
				}
			}
		}
	}
}

// runTask runs one task, turns its error into a *TaskError and measures the
// task's peak RSS. With free set it gives freed memory back to the OS, so
// that the parent sees the idle size; without, the pages stay for the next
// task: a fresh page costs a fault (about half of a cluster's CPU time went
// to faults when every file started from a returned heap), and the Go
// scavenger still returns memory in the background and under GOMEMLIMIT.
func runTask(ctx context.Context, h Handler, env *TaskEnv, t *Task, free bool) (res *Result, terr *TaskError) {
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
	if free {
		runtime.GC()
		debug.FreeOSMemory()
	}
	res.PeakRSSBytes = procfs.PeakRSS()
	if err != nil {
		terr = toTaskError(t.Input, err)
		env.Logger.Debug("task failed", "file", t.Input, "error", terr.Error(), "seconds", time.Since(start).Seconds())
		return res, terr
	}
	return res, nil
}

// toTaskError says which user and line an error names, when it does.
func toTaskError(input string, err error) *TaskError {
	te := &TaskError{Input: input, Message: err.Error()}
	var ue *inram.UserError
	var fe *csvread.FileError
	var pe *feature.PanicError
	switch {
	case errors.As(err, &ue):
		te.User, te.Line, te.Message = ue.User, ue.Line, ue.Err.Error()
	case errors.As(err, &fe):
		te.Line, te.Message = fe.Line, fe.Err.Error()
	case errors.As(err, &te):
		return te
	}
	if errors.As(err, &pe) {
		te.Stack = pe.Stack
	}
	return te
}
