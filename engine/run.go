package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v3/process"

	"github.com/mce-engine/mce/internal/csvread"
)

// TaskStatus is where a task stands. The states are ordered: Done and
// Skipped are successes, Failed is the only failure.
type TaskStatus int

// Task states.
const (
	TaskPending TaskStatus = iota
	TaskRunning
	TaskSkipped // its output was already complete (--resume)
	TaskDone
	TaskFailed
)

var taskStatusNames = [...]string{"pending", "running", "skipped", "done", "failed"}

func (s TaskStatus) String() string {
	if s >= 0 && int(s) < len(taskStatusNames) {
		return taskStatusNames[s]
	}
	return fmt.Sprintf("TaskStatus(%d)", int(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s TaskStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *TaskStatus) UnmarshalText(b []byte) error {
	for i, n := range taskStatusNames {
		if n == string(b) {
			*s = TaskStatus(i)
			return nil
		}
	}
	return fmt.Errorf("unknown task status %q", b)
}

// Summary is the outcome of a run, also written to summary.json.
type Summary struct {
	Job           string        `json:"job"`
	RunDir        string        `json:"run_dir"`
	Feature       string        `json:"feature"`
	Started       time.Time     `json:"started"`
	Finished      time.Time     `json:"finished"`
	Seconds       float64       `json:"seconds"`
	Clusters      []int         `json:"clusters"`
	Queue         string        `json:"queue"`
	RAMLimitBytes int64         `json:"ram_limit_bytes"`
	PeakRSSBytes  int64         `json:"peak_rss_bytes"` // the largest total RSS of all clusters seen
	Files         int           `json:"files"`
	Done          int           `json:"done"`
	Skipped       int           `json:"skipped"` // complete before a --resume
	Failed        int           `json:"failed"`
	Bytes         int64         `json:"bytes"` // uncompressed bytes read by this run
	Rows          int64         `json:"rows"`
	BadRows       int64         `json:"bad_rows"`
	Restarts      int           `json:"restarts"`        // clusters started again (RAM kills, crashes, recycling)
	Interrupted   bool          `json:"interrupted"`     // by the context (Ctrl-C)
	Error         string        `json:"error,omitempty"` // what stopped the run early
	Tasks         []TaskSummary `json:"tasks"`
}

// TaskSummary is one task's outcome.
type TaskSummary struct {
	ID     int    `json:"id"`
	Input  string `json:"input"`
	Output string `json:"output"`
	// Phase is the task's phase (Task.Phase): the output of a task of an
	// earlier phase is an intermediate, removed once the last phase is done.
	Phase        int        `json:"phase,omitempty"`
	Size         int64      `json:"size"`
	Status       TaskStatus `json:"status"`
	Cluster      int        `json:"cluster"`
	Attempts     int        `json:"attempts"`
	Seconds      float64    `json:"seconds"`
	PeakRSSBytes int64      `json:"peak_rss_bytes"`
	Result       *Result    `json:"result,omitempty"`
	Error        *TaskError `json:"error,omitempty"`
}

// LastLine is the line `mce run` ends with: how many files failed.
func (s *Summary) LastLine() string {
	switch {
	case s.Interrupted:
		return fmt.Sprintf("interrupted: %d of %d files done, %d failed", s.Done+s.Skipped, s.Files, s.Failed)
	case s.Error != "":
		return fmt.Sprintf("stopped by an error: %d of %d files done, %d failed", s.Done+s.Skipped, s.Files, s.Failed)
	case s.Failed == 0:
		return fmt.Sprintf("all %d files ok", s.Files)
	}
	return fmt.Sprintf("%d of %d files failed", s.Failed, s.Files)
}

type clusterState int

const (
	csDown     clusterState = iota
	csStarting              // started, config sent, waiting for ready
	csIdle
	csBusy
	csStopping // stdin closed to recycle it
	csKilling  // killed over the RAM limit
	csShutdown // stdin closed at the end of the run
)

var clusterStateNames = [...]string{"stopped", "starting", "idle", "busy", "stopping", "killing", "shutdown"}

func (s clusterState) String() string { return clusterStateNames[s] }

type cluster struct {
	id, cpus   int
	memLimit   int64
	gen        int
	proc       *proc
	ps         *process.Process
	state      clusterState
	since      time.Time // of the current state
	task       *taskRun
	files      int // finished since the process started
	rss        int64
	prog       progressMsg
	stopReason string
	killReason string
	crashes    int // unexpected exits while not working, in a row
}

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
	stopErr  error
	overWarn time.Time
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
	r := &runner{o: o, logger: o.Logger, events: make(chan procEvent, 64)}
	if o.Resume != "" {
		err = r.resume()
	} else {
		err = r.create()
	}
	if err != nil {
		return nil, err
	}
	defer r.logs.close()
	r.view = newProgressView(o.Progress, o.ProgressEvery)
	if r.view.tty {
		r.logger = slog.New(&viewHandler{Handler: r.logger.Handler(), v: r.view})
	}
	return r.run(ctx)
}

func (r *runner) create() error {
	o := &r.o
	tasks := o.Tasks
	if len(tasks) == 0 {
		inputs := append([]csvread.Input(nil), o.Inputs...)
		if len(o.Paths) > 0 {
			listed, err := csvread.ListInputs(o.Paths)
			if err != nil {
				return err
			}
			inputs = append(inputs, listed...)
		}
		var err error
		if tasks, err = FileTasks(inputs); err != nil {
			return err
		}
	} else {
		tasks = append([]Task(nil), tasks...)
		sort.SliceStable(tasks, func(i, j int) bool {
			if tasks[i].Phase != tasks[j].Phase {
				return tasks[i].Phase < tasks[j].Phase
			}
			return tasks[i].Size > tasks[j].Size
		})
		for i := range tasks {
			tasks[i].ID = i
		}
	}
	if len(tasks) == 0 {
		return errors.New("no input files (want .csv, .tsv or .txt, optionally .gz or .zst)")
	}
	dir, err := CreateRunDir(o.Out, o.JobName)
	if err != nil {
		return err
	}
	r.dir = dir
	r.plan = &Plan{Job: o.JobName, Feature: o.FeatureName, Created: time.Now(), Params: o.Params, Reader: o.Reader, Tasks: tasks}
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
	o.JobName, o.Reader, o.Params = p.Job, p.Reader, p.Params
	if o.FeatureName != "" && p.Feature != "" && o.FeatureName != p.Feature {
		return fmt.Errorf("resume %s: the run computed features %q, not %q", o.Resume, p.Feature, o.FeatureName)
	}
	o.FeatureName = p.Feature
	removed, err := removeTemps(r.dir)
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
	var sumCPUs int
	for _, n := range o.Clusters {
		sumCPUs += n
	}
	for id, n := range o.Clusters {
		r.clusters = append(r.clusters, &cluster{
			id: id, cpus: n, memLimit: o.RAMLimitBytes * int64(n) / int64(sumCPUs),
		})
	}
	for _, t := range r.tasks {
		if t.status == TaskPending {
			r.pending = append(r.pending, t)
		}
	}
	r.logs.statusf("start job %s in %s: %d files (%d to do), clusters %v, queue %s, RAM limit %.0f MiB, features %s, worker %s",
		o.JobName, r.dir, len(r.tasks), len(r.pending), o.Clusters, o.Queue, mib(o.RAMLimitBytes), o.FeatureName, o.WorkerExe)
	r.logger.Info("run started", "dir", r.dir, "files", len(r.tasks), "to_do", len(r.pending), "clusters", fmt.Sprint(o.Clusters), "queue", o.Queue)
	r.writeSummary(false)

	if len(r.pending) > 0 {
		for _, c := range r.clusters {
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
	r.view.finish(r.progressLines())
	r.logs.statusf("finished: %s in %.1f s", s.LastLine(), s.Seconds)
	r.logger.Info("run finished", "dir", r.dir, "files", s.Files, "failed", s.Failed, "seconds", s.Seconds)
	if err := r.writeSummary(false); err != nil {
		return s, err
	}
	return s, nil
}

func (r *runner) finished() bool {
	if len(r.pending) > 0 || len(r.retry) > 0 {
		return false
	}
	for _, c := range r.clusters {
		if c.task != nil {
			return false
		}
	}
	return true
}

// workLeft reports whether any task still has to be handed out.
func (r *runner) workLeft() bool { return len(r.pending) > 0 || len(r.retry) > 0 }

// take removes the next task for cluster id from the queue: in deque order
// cluster 0 takes the largest file and every other cluster the smallest;
// in fifo order every cluster takes the largest. Only tasks of the lowest
// waiting phase are taken, and only once no task of a lower phase runs;
// nil means none may start now.
func (r *runner) take(id int) *taskRun {
	n := r.startable()
	if n == 0 {
		return nil
	}
	if r.o.Queue == QueueDeque && id != 0 {
		t := r.pending[n-1]
		r.pending = append(r.pending[:n-1], r.pending[n:]...)
		return t
	}
	t := r.pending[0]
	r.pending = r.pending[1:]
	return t
}

// startable returns how many tasks at the head of pending (sorted by
// phase, then largest first) may start now.
func (r *runner) startable() int {
	if len(r.pending) == 0 {
		return 0
	}
	ph := r.pending[0].Phase
	for _, t := range r.tasks {
		if t.Phase < ph && t.status == TaskRunning {
			return 0
		}
	}
	n := 1
	for n < len(r.pending) && r.pending[n].Phase == ph {
		n++
	}
	return n
}

// dispatch hands tasks to idle clusters. A task to retry alone waits until
// every cluster is idle and then runs with no other task beside it.
func (r *runner) dispatch() {
	if r.alone != nil {
		return
	}
	if len(r.retry) > 0 {
		for _, c := range r.clusters {
			if c.task != nil {
				return
			}
		}
		t := r.retry[0]
		c := r.clusters[t.retryCluster]
		if c.state != csIdle {
			return // still restarting
		}
		r.retry = r.retry[1:]
		r.assign(c, t, true)
		return
	}
	for _, c := range r.clusters {
		if c.state == csIdle && len(r.pending) > 0 {
			if t := r.take(c.id); t != nil {
				r.assign(c, t, false)
			}
		}
	}
}

func (r *runner) setState(c *cluster, s clusterState) {
	c.state, c.since = s, time.Now()
}

func (r *runner) assign(c *cluster, t *taskRun, alone bool) {
	t.attempts++
	t.status, t.cluster, t.alone = TaskRunning, c.id, alone
	t.start, t.peakRSS = time.Now(), 0
	c.task, c.prog = t, progressMsg{}
	r.setState(c, csBusy)
	if alone {
		r.alone = t
		r.logs.statusf("file %s (#%d) -> cluster %d (retry %d, alone)", t.Input, t.ID, c.id, t.attempts-1)
	} else {
		r.logs.statusf("file %s (#%d) -> cluster %d", t.Input, t.ID, c.id)
	}
	r.logger.Info("file started", "file", t.Input, "cluster", c.id, "size", t.Size, "attempt", t.attempts)
	if err := c.proc.send(&toWorker{Type: "task", Task: &t.Task}); err != nil {
		// The cluster is dying; its exit event will hand the task back.
		r.logger.Warn("send task", "cluster", c.id, "error", err)
	}
}

func (r *runner) startCluster(c *cluster, why string) {
	c.gen++
	p, err := startProc(procSpec{
		cluster: c.id, gen: c.gen, cpus: c.cpus, memLimit: c.memLimit,
		exe: r.o.WorkerExe, args: r.o.WorkerArgs, env: r.o.WorkerEnv, logger: r.logger,
	}, r.events)
	if err != nil {
		r.fatal = err
		return
	}
	c.proc, c.ps, c.files, c.rss = p, nil, 0, 0
	r.setState(c, csStarting)
	r.logs.statusf("cluster %d %s: pid %d, %d CPUs, GOMEMLIMIT %.0f MiB", c.id, why, p.pid, c.cpus, mib(c.memLimit))
	cfg := &workerConfig{
		Cluster: c.id, CPUs: c.cpus, RunDir: r.dir, Params: r.o.Params, Reader: r.o.Reader,
		ProgressEveryMS: 250, FreeBetweenTasks: r.o.RecycleRSSBytes > 0, Mode: r.o.Mode,
	}
	cfg.Reader.Schema = nil
	if err := p.send(&toWorker{Type: "config", Config: cfg}); err != nil {
		r.logger.Warn("send config", "cluster", c.id, "error", err)
	}
}

func (r *runner) handle(ev procEvent) {
	c := r.clusters[ev.cluster]
	if ev.gen != c.gen {
		return
	}
	if ev.exited {
		r.exited(c, ev)
		return
	}
	m := ev.msg
	switch m.Type {
	case "ready":
		if c.state == csStarting {
			r.setState(c, csIdle)
		}
	case "progress":
		if c.task != nil && m.Progress != nil && m.Task == c.task.ID {
			c.prog = *m.Progress
		}
	case "result":
		r.result(c, m)
	default:
		r.logger.Warn("unknown message from cluster", "cluster", c.id, "type", m.Type)
	}
}

func (r *runner) result(c *cluster, m *fromWorker) {
	t := c.task
	if t == nil || t.ID != m.Task || c.state != csBusy {
		if c.state != csKilling {
			r.logger.Warn("unexpected result", "cluster", c.id, "task", m.Task)
		}
		return
	}
	c.task = nil
	c.files++
	c.crashes = 0
	r.setState(c, csIdle)
	if t.alone {
		r.alone = nil
	}
	t.seconds = time.Since(t.start).Seconds()
	t.res = m.Result
	if t.res != nil && t.res.PeakRSSBytes > t.peakRSS {
		t.peakRSS = t.res.PeakRSSBytes
	}
	if m.Error != nil {
		t.status, t.err = TaskFailed, m.Error
		msg := m.Error.Message
		if m.Error.Line > 0 {
			msg = fmt.Sprintf("line %d: %s", m.Error.Line, msg)
		}
		r.logs.failuref(c.id, t.Input, m.Error.User, m.Error.Stack, "%s", msg)
		r.logs.statusf("file %s (#%d) failed on cluster %d: %s", t.Input, t.ID, c.id, oneLine(m.Error.Error()))
		r.logger.Error("file failed", "file", t.Input, "cluster", c.id, "user", m.Error.User, "error", msg)
	} else {
		t.status = TaskDone
		res := t.res
		if res == nil {
			res = &Result{}
			t.res = res
		}
		mode := ""
		if res.Mode != "" {
			mode = ", " + res.Mode
		}
		r.logs.statusf("file %s (#%d) done on cluster %d: %d rows, %d bad rows, %d users in %.2f s (map %.2f s, reduce %.2f s, skew %.2f%s)",
			t.Input, t.ID, c.id, res.Rows, res.BadRows, res.Users, t.seconds, res.MapSeconds, res.ReduceSeconds, res.Skew(), mode)
		r.logger.Info("file done", "file", t.Input, "cluster", c.id, "rows", res.Rows, "bad_rows", res.BadRows,
			"users", res.Users, "seconds", t.seconds, "peak_rss_mib", mib(t.peakRSS))
		for _, s := range res.BadRowSamples {
			r.logger.Warn("bad row", "file", t.Input, "sample", s)
			r.logs.statusf("bad row sample: %s", s) // kept in the run folder, not only on stderr
		}
	}
	r.logs.timingRow(t)
	r.writeSummary(false)
	r.maybeRecycle(c)
}

// maybeRecycle restarts a cluster after RecycleAfter files or when its RSS
// between files exceeds RecycleRSSBytes.
func (r *runner) maybeRecycle(c *cluster) {
	if !r.workLeft() || c.proc == nil {
		return
	}
	reason := ""
	if r.o.RecycleAfter > 0 && c.files >= r.o.RecycleAfter {
		reason = fmt.Sprintf("recycled after %d files", c.files)
	} else if r.o.RecycleRSSBytes > 0 {
		if rss, err := r.rssOf(c); err == nil && rss > r.o.RecycleRSSBytes {
			reason = fmt.Sprintf("recycled: RSS between files %.1f MiB > %.1f MiB", mib(rss), mib(r.o.RecycleRSSBytes))
		}
	}
	if reason == "" {
		return
	}
	c.stopReason = reason
	r.setState(c, csStopping)
	r.logs.statusf("cluster %d stopping (pid %d): %s", c.id, c.proc.pid, reason)
	c.proc.closeInput()
}

func (r *runner) exited(c *cluster, ev procEvent) {
	prev := c.state
	pid := 0
	if c.proc != nil {
		pid = c.proc.pid
		c.proc.stdin.Close()
	}
	c.proc, c.ps = nil, nil
	r.setState(c, csDown)
	how := exitString(ev.exitErr)
	switch prev {
	case csStopping:
		r.logs.statusf("cluster %d stopped (pid %d, %s)", c.id, pid, how)
		if r.workLeft() {
			r.restarts++
			r.startCluster(c, "restarted ("+c.stopReason+")")
		}
	case csKilling, csBusy:
		t := c.task
		c.task = nil
		reason := c.killReason
		if prev == csBusy {
			reason = "cluster crashed (" + how + ")"
			if len(ev.tail) > 0 {
				reason += ": " + strings.Join(ev.tail, "\n")
			}
			r.logs.failuref(c.id, t.Input, "", "", "%s", reason)
			r.logs.statusf("cluster %d crashed (pid %d, %s) on file %s", c.id, pid, how, t.Input)
		} else {
			r.logs.statusf("cluster %d is gone (pid %d, %s)", c.id, pid, how)
		}
		r.lost(c, t, prev == csKilling)
		if r.workLeft() {
			r.restarts++
			r.startCluster(c, "restarted (self-regeneration)")
		}
	case csShutdown:
	default:
		c.crashes++
		reason := fmt.Sprintf("cluster %d %s while %s", c.id, how, prev)
		if len(ev.tail) > 0 {
			reason += ": " + strings.Join(ev.tail, "\n")
		}
		r.logs.failuref(c.id, "", "", "", "%s", reason)
		r.logs.statusf("cluster %d %s while %s (pid %d)", c.id, how, prev, pid)
		if c.crashes >= 3 || (prev == csStarting && c.files == 0 && c.crashes >= 2) {
			r.fatal = fmt.Errorf("cluster %d cannot run: %s", c.id, oneLine(reason))
			return
		}
		if r.workLeft() {
			r.restarts++
			r.startCluster(c, "restarted")
		}
	}
}

// lost handles a task whose cluster died under it: the first time it is
// retried alone; the second time it fails.
func (r *runner) lost(c *cluster, t *taskRun, killedForRAM bool) {
	os.Remove(filepath.Join(r.dir, t.Output+TempSuffix))
	if t.alone {
		r.alone = nil
	}
	t.seconds = time.Since(t.start).Seconds()
	if !t.alone {
		t.status = TaskPending
		t.retryCluster = c.id
		r.retry = append(r.retry, t)
		r.logs.statusf("file %s (#%d) will be retried alone on cluster %d", t.Input, t.ID, c.id)
		r.logger.Warn("file lost with its cluster; retrying it alone", "file", t.Input, "cluster", c.id)
		return
	}
	why := "cluster crashed again"
	if killedForRAM {
		why = "killed over the RAM limit again"
	}
	t.status = TaskFailed
	t.err = &TaskError{Input: t.Input, Message: why + " while running alone: " + oneLine(c.killReason)}
	if !killedForRAM {
		t.err.Message = why + " while running alone"
	}
	r.logs.failuref(c.id, t.Input, "", "", "file failed: %s", t.err.Message)
	r.logs.statusf("file %s (#%d) failed on cluster %d: %s", t.Input, t.ID, c.id, t.err.Message)
	r.logger.Error("file failed", "file", t.Input, "cluster", c.id, "error", t.err.Message)
	r.logs.timingRow(t)
	r.writeSummary(false)
}

func (r *runner) rssOf(c *cluster) (int64, error) {
	if c.proc == nil {
		return 0, errors.New("no process")
	}
	if c.ps == nil {
		ps, err := process.NewProcess(int32(c.proc.pid))
		if err != nil {
			return 0, err
		}
		c.ps = ps
	}
	mi, err := c.ps.MemoryInfo()
	if err != nil {
		return 0, err
	}
	return int64(mi.RSS), nil
}

// monitor measures every cluster's RSS, logs it, and kills the busy
// cluster using the most when the total is over the limit.
func (r *runner) monitor() {
	var total int64
	live := r.clusters[:0:0]
	for _, c := range r.clusters {
		if c.proc == nil {
			continue
		}
		rss, err := r.rssOf(c)
		if err != nil {
			rss = 0 // exiting; its exit event follows
		}
		c.rss = rss
		total += rss
		if c.task != nil && rss > c.task.peakRSS {
			c.task.peakRSS = rss
		}
		live = append(live, c)
	}
	for _, c := range live {
		file := ""
		if c.task != nil {
			file = c.task.Input
		}
		r.logs.ramRow(c.id, c.proc.pid, file, c.rss, total)
	}
	r.peak = max(r.peak, total)
	if total <= r.o.RAMLimitBytes {
		return
	}
	var victim *cluster
	for _, c := range live {
		if c.state == csKilling {
			return // one kill at a time; its memory is on its way back
		}
		if c.state == csBusy && (victim == nil || c.rss > victim.rss) {
			victim = c
		}
	}
	if victim == nil {
		if time.Since(r.overWarn) > time.Minute {
			r.overWarn = time.Now()
			r.logger.Warn("clusters use more than the RAM limit between files", "total_mib", mib(total), "limit_mib", mib(r.o.RAMLimitBytes))
		}
		return
	}
	c := victim
	t := c.task
	c.killReason = fmt.Sprintf("killed over the RAM limit: cluster %d used %.1f MiB, all clusters %.1f MiB > limit %.1f MiB",
		c.id, mib(c.rss), mib(total), mib(r.o.RAMLimitBytes))
	r.logs.failuref(c.id, t.Input, "", "", "%s", c.killReason)
	r.logs.statusf("cluster %d killed (pid %d) on file %s: %s", c.id, c.proc.pid, t.Input, c.killReason)
	r.logger.Warn("cluster killed over the RAM limit", "cluster", c.id, "file", t.Input,
		"rss_mib", mib(c.rss), "total_mib", mib(total), "limit_mib", mib(r.o.RAMLimitBytes))
	r.setState(c, csKilling)
	c.proc.kill()
}

// checkTimeouts kills clusters that do not start or stop in time.
func (r *runner) checkTimeouts() {
	for _, c := range r.clusters {
		if c.proc == nil {
			continue
		}
		switch c.state {
		case csStarting:
			if time.Since(c.since) > r.o.StartTimeout {
				r.fatal = fmt.Errorf("cluster %d (%s) did not start within %s", c.id, r.o.WorkerExe, r.o.StartTimeout)
			}
		case csStopping, csShutdown:
			if time.Since(c.since) > 10*time.Second {
				c.proc.kill()
			}
		}
	}
}

// waitExits waits until every cluster process has exited, killing them
// all after grace.
func (r *runner) waitExits(grace time.Duration) {
	timer := time.NewTimer(grace)
	defer timer.Stop()
	for {
		live := 0
		for _, c := range r.clusters {
			if c.proc != nil {
				live++
			}
		}
		if live == 0 {
			return
		}
		select {
		case ev := <-r.events:
			c := r.clusters[ev.cluster]
			if ev.exited && ev.gen == c.gen && c.proc != nil {
				c.proc.stdin.Close()
				c.proc, c.ps = nil, nil
				r.setState(c, csDown)
			}
		case <-timer.C:
			for _, c := range r.clusters {
				if c.proc != nil {
					c.proc.kill()
				}
			}
			timer.Reset(time.Hour)
		}
	}
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
			os.Remove(filepath.Join(r.dir, t.Output+TempSuffix))
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
	r.view.finish(nil)
	r.stopErr = cause
	s := r.summary(interrupted)
	r.writeSummary(interrupted)
	return s, fmt.Errorf("run %s: %w", r.dir, cause)
}

func (r *runner) summary(interrupted bool) *Summary {
	s := &Summary{
		Job: r.o.JobName, RunDir: r.dir, Feature: r.o.FeatureName,
		Started: r.started, Finished: time.Now(), Seconds: time.Since(r.started).Seconds(),
		Clusters: r.o.Clusters, Queue: r.o.Queue, RAMLimitBytes: r.o.RAMLimitBytes,
		PeakRSSBytes: r.peak, Files: len(r.tasks), Restarts: r.restarts, Interrupted: interrupted,
	}
	if r.stopErr != nil {
		s.Error = r.stopErr.Error()
	}
	for _, t := range r.tasks {
		switch t.status {
		case TaskDone:
			s.Done++
		case TaskSkipped:
			s.Skipped++
		case TaskFailed:
			s.Failed++
		}
		if t.res != nil {
			s.Bytes += t.res.Bytes
			s.Rows += t.res.Rows
			s.BadRows += t.res.BadRows
		}
		s.Tasks = append(s.Tasks, TaskSummary{
			ID: t.ID, Input: t.Input, Output: t.Output, Phase: t.Phase, Size: t.Size, Status: t.status, Cluster: t.cluster,
			Attempts: t.attempts, Seconds: t.seconds, PeakRSSBytes: t.peakRSS, Result: t.res, Error: t.err,
		})
	}
	return s
}

func (r *runner) writeSummary(interrupted bool) error {
	b, err := json.MarshalIndent(r.summary(interrupted), "", "  ")
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(filepath.Join(r.dir, SummaryJSON), append(b, '\n')); err != nil {
		r.logger.Error("write summary", "error", err)
		return err
	}
	return nil
}
