package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/internal/procfs"
)

type taskRun struct {
	Task
	status       TaskStatus
	attempts     int
	cluster      int
	retryCluster int
	alone        bool
	start        time.Time
	seconds      float64
	peakRSS      int64
	res          *Result
	err          *TaskError
}

type runner struct {
	o        Options
	dir      string
	plan     *Plan
	logs     *runLogs
	logger   *slog.Logger
	tasks    []*taskRun
	pending  []*taskRun // largest first
	retry    []*taskRun
	alone    *taskRun
	clusters []*cluster
	events   chan procEvent
	view     *progressView
	started  time.Time
	peak     int64
	restarts int
	fatal    error
	// summaryStale: a file ended since summary.json was written; the
	// loop queues it once the next file is handed out, at most every
	// summaryEvery (summaryAt: when it last did).
	summaryStale bool
	summaryAt    time.Time
	// summaries writes summary.json during the run (queueSummary).
	summaries *summaryWriter
	stopErr   error
	overWarn  time.Time
	// cgroup is this process's memory cgroup, with RAMMeasure cgroup.
	cgroup *procfs.Cgroup
	// lock is the run folder's lock, held while the run runs.
	lock *os.File
}

// Run runs a job: it plans one task per input file (or takes
// opts.Tasks), makes the run directory, starts the clusters, hands the
// tasks out in deque or fifo order, watches RAM and returns the summary.
// A failed file does not fail the run: Summary.Failed counts them. Run
// returns an error when the run itself cannot go on (no inputs, a cluster
// that cannot start) or ctx is cancelled; every cluster process is gone
// when it returns.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	defer o.Prestarted.Close() // the processes Run did not adopt
	r := &runner{o: o, logger: o.Logger, events: make(chan procEvent, 64)}
	if o.RAMMeasure == MeasureCgroup {
		if r.cgroup, err = procfs.OwnCgroup(); err != nil {
			return nil, fmt.Errorf("RAM measure cgroup: %w", err)
		}
	}
	if o.Resume != "" {
		err = r.resume()
	} else {
		err = r.create()
	}
	if err != nil {
		if r.lock != nil {
			r.lock.Close()
		}
		return nil, err
	}
	defer r.lock.Close()
	defer r.logs.close()
	r.view = newProgressView(o.Progress, o.ProgressEvery)
	// Records go to the caller's handler (above the live view on a
	// terminal) and to status.log.
	r.logger = slog.New(newStatusHandler(r.view.handler(r.logger.Handler()), r.logs))
	return r.run(ctx)
}

func (r *runner) create() error {
	o := &r.o
	tasks := append([]Task(nil), o.Tasks...)
	sort.SliceStable(tasks, func(i, j int) bool {
		if tasks[i].Phase != tasks[j].Phase {
			return tasks[i].Phase < tasks[j].Phase
		}
		return tasks[i].Size > tasks[j].Size
	})
	for i := range tasks {
		tasks[i].ID = i
	}
	if len(tasks) == 0 {
		return errors.New("nothing to do: no tasks")
	}
	dir, err := CreateRunDir(o.Out, o.JobName)
	if err != nil {
		return err
	}
	r.dir = dir
	if r.lock, err = lockRunDir(dir); err != nil {
		return err
	}
	r.plan = &Plan{Job: o.JobName, Feature: o.FeatureName, Created: time.Now(), Params: o.Params, Settings: o.Job,
		Command: o.Command, Resources: o.Given, Tasks: tasks}
	if o.FeaturesFile != "" {
		if r.plan.Features, err = keepFeatures(dir, o.FeaturesFile); err != nil {
			return err
		}
	}
	if err := writePlan(dir, r.plan); err != nil {
		return err
	}
	if r.logs, err = openRunLogs(dir); err != nil {
		return err
	}
	for _, t := range tasks {
		r.tasks = append(r.tasks, &taskRun{Task: t, cluster: -1})
	}
	return nil
}

func (r *runner) resume() error {
	o := &r.o
	p, err := ReadPlan(o.Resume)
	if err != nil {
		return err
	}
	r.dir, r.plan = o.Resume, p
	if r.lock, err = lockRunDir(r.dir); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	o.JobName, o.Job, o.Params = p.Job, p.Settings, p.Params
	if o.FeatureName != "" && p.Feature != "" && o.FeatureName != p.Feature {
		return fmt.Errorf("resume %s: the run computed features %q, not %q", o.Resume, p.Feature, o.FeatureName)
	}
	o.FeatureName = p.Feature
	removed, err := output.RemoveTemps(r.dir)
	if err != nil {
		return fmt.Errorf("resume %s: %w", r.dir, err)
	}
	if r.logs, err = openRunLogs(r.dir); err != nil {
		return err
	}
	done := 0
	for _, t := range p.Tasks {
		tr := &taskRun{Task: t, cluster: -1}
		if _, err := os.Stat(filepath.Join(r.dir, t.Output)); err == nil {
			tr.status = TaskSkipped
			done++
		}
		r.tasks = append(r.tasks, tr)
	}
	// A task whose output is gone is complete when every task of a higher
	// phase is: what it wrote was consumed.
	for _, tr := range r.tasks {
		if tr.status == TaskSkipped {
			continue
		}
		consumed, later := true, false
		for _, u := range r.tasks {
			if u.Phase > tr.Phase {
				later = true
				consumed = consumed && u.status == TaskSkipped
			}
		}
		if later && consumed {
			tr.status = TaskSkipped
			done++
		}
	}
	r.logs.statusf("resume %s: %d of %d files already done; removed %d temporary files %v",
		r.dir, done, len(p.Tasks), len(removed), removed)
	return nil
}

func (r *runner) run(ctx context.Context) (*Summary, error) {
	o := &r.o
	r.started = time.Now()
	shares := clusterShares(*o)
	for id, n := range o.Clusters {
		r.clusters = append(r.clusters, &cluster{id: id, cpus: n, share: shares[id], memLimit: shares[id]})
	}
	for _, t := range r.tasks {
		if t.status == TaskPending {
			r.pending = append(r.pending, t)
		}
	}
	r.logs.statusf("start job %s in %s: %d files (%d to do), clusters %v, queue %s, RAM limit %.0f MiB, features %s, worker %s",
		o.JobName, r.dir, len(r.tasks), len(r.pending), o.Clusters, o.Queue, mib(o.RAMLimitBytes), o.FeatureName, o.WorkerExe)
	r.logs.statusf("RAM measure: %s (%s)", o.RAMMeasure, measureDoc[o.RAMMeasure])
	r.logger.Info("run started", "dir", r.dir, "files", len(r.tasks), "to_do", len(r.pending), "clusters", fmt.Sprint(o.Clusters), "queue", o.Queue)
	r.queueSummary()

	var prestarted []*proc
	if o.Prestarted != nil {
		// Its processes are generation 1 of their clusters: one started
		// here is 2 or more, so that a killed one's exit is not taken for
		// its cluster's.
		var events chan procEvent
		if events, prestarted = o.Prestarted.take(*o); events != nil {
			r.events = events
			for _, c := range r.clusters {
				c.gen = 1
			}
		}
	}
	for _, c := range r.clusters {
		p := (*proc)(nil)
		if c.id < len(prestarted) {
			p = prestarted[c.id]
		}
		switch {
		case len(r.pending) == 0:
			if p != nil {
				p.kill()
			}
		case p != nil:
			p.adoptLogger(r.logger.With("cluster", c.id, "pid", p.pid))
			r.began(c, p, "started")
		default:
			r.startCluster(c, "started")
		}
	}
	poll := time.NewTicker(o.Poll)
	defer poll.Stop()
	draw := time.NewTicker(r.view.every)
	defer draw.Stop()
	ready := false
	for {
		if r.fatal != nil {
			return r.abort(r.fatal)
		}
		if !ready {
			ready = true
			for _, c := range r.clusters {
				ready = ready && c.state == csIdle
			}
		}
		if ready {
			r.dispatch()
		}
		if r.summaryStale && time.Since(r.summaryAt) >= summaryEvery {
			r.summaryStale = false
			r.queueSummary()
		}
		if r.finished() {
			break
		}
		select {
		case ev := <-r.events:
			r.handle(ev)
		case <-poll.C:
			r.monitor()
			r.checkTimeouts()
		case <-draw.C:
			r.view.draw(r.progressLines())
		case <-ctx.Done():
			return r.abort(ctx.Err())
		}
	}
	r.shutdown()
	s := r.summary(false)
	r.view.finish()
	r.logs.statusf("finished: %s in %.1f s", s.LastLine(), s.Seconds)
	r.logger.Info("run finished", "dir", r.dir, "files", s.Files, "failed", s.Failed, "seconds", s.Seconds)
	if err := r.writeSummary(false); err != nil {
		return s, err
	}
	return s, nil
}

func (r *runner) shutdown() {
	for _, c := range r.clusters {
		if c.proc != nil {
			r.setState(c, csShutdown)
			c.proc.closeInput()
		}
	}
	r.waitExits(10 * time.Second)
	r.logs.statusf("all clusters stopped")
}

// abort kills every cluster and records the interrupted run.
func (r *runner) abort(cause error) (*Summary, error) {
	for _, c := range r.clusters {
		if c.proc != nil {
			c.proc.kill()
			r.setState(c, csShutdown)
		}
	}
	r.waitExits(0)
	for _, t := range r.tasks {
		if t.status == TaskRunning {
			output.RemoveOf(filepath.Join(r.dir, t.Output))
			t.status = TaskPending
		}
	}
	interrupted := errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded)
	if interrupted {
		r.logs.statusf("interrupted: %v; all clusters killed", cause)
		r.logger.Warn("run interrupted", "dir", r.dir, "error", cause)
	} else {
		r.logs.statusf("stopped: %v; all clusters killed", cause)
		r.logger.Error("run stopped", "dir", r.dir, "error", cause)
	}
	r.view.finish()
	r.stopErr = cause
	s := r.summary(interrupted)
	r.writeSummary(interrupted)
	return s, fmt.Errorf("run %s: %w", r.dir, cause)
}
