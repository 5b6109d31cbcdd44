package engine

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v3/process"

	"github.com/mce-engine/mce/engine/output"
)

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
	id, cpus int
	// memLimit is the GOMEMLIMIT it starts with: share, its part of the
	// RAM limit in proportion to its CPUs, or the whole limit while it
	// runs a file alone.
	memLimit, share int64
	gen             int
	proc            *proc
	ps              *process.Process
	state           clusterState
	since           time.Time // of the current state
	task            *taskRun
	// committing is a task that is computed and commits its output (the
	// worker said "computed") while task, if any, runs: until its result
	// it is running, and the cluster busy.
	committing *taskRun
	// committedProg is committing's last progress.
	committedProg progressMsg
	files         int // finished since the process started
	rss           int64
	prog          progressMsg
	stopReason    string
	killReason    string
	crashes       int // unexpected exits while not working, in a row
	// released says the cluster was asked to give its memory back since
	// its last task; parked that it was stopped so that another cluster
	// runs a file alone, and is started again when that file is done;
	// sigkilled that its last process died of a SIGKILL mce did not send.
	released, parked, sigkilled bool
}

func (r *runner) setState(c *cluster, s clusterState) {
	c.state, c.since = s, time.Now()
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
	r.began(c, p, why)
}

// began makes p cluster c's process, starting (startCluster's, or one
// that Run adopted from Options.Prestarted), and sends it its config.
func (r *runner) began(c *cluster, p *proc, why string) {
	c.proc, c.ps, c.files, c.rss = p, nil, 0, 0
	r.setState(c, csStarting)
	r.logs.statusf("cluster %d %s: pid %d, %d CPUs, GOMEMLIMIT %.0f MiB", c.id, why, p.pid, c.cpus, mib(c.memLimit))
	cfg := &workerConfig{
		Cluster: c.id, CPUs: c.cpus, RunDir: r.dir, Params: r.o.Params, Job: r.o.Job,
		ProgressEveryMS: 250, FreeBetweenTasks: r.o.RecycleRSSBytes > 0,
		// A cluster recycled between files has no next file beside the
		// last one.
		Overlap: r.o.RecycleAfter == 0 && r.o.RecycleRSSBytes == 0,
	}
	if err := p.send(&toWorker{Type: "config", Config: cfg}); err != nil {
		r.logger.Warn("send config", "cluster", c.id, "error", err)
	}
}

func (r *runner) handle(ev procEvent) {
	if ev.cluster >= len(r.clusters) {
		return // a prestarted process no cluster adopted
	}
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
	case "computed":
		r.computed(c, m)
	case "result":
		r.result(c, m)
	default:
		r.logger.Warn("unknown message from cluster", "cluster", c.id, "type", m.Type)
	}
}

// computed: c's task only commits its output now, and c may take the next
// task (dispatch) meanwhile. A file that runs alone keeps its cluster to
// itself.
func (r *runner) computed(c *cluster, m *fromWorker) {
	t := c.task
	if t == nil || t.ID != m.Task || c.state != csBusy || c.committing != nil || t.alone {
		return
	}
	c.committing, c.committedProg, c.task = t, c.prog, nil
}

// free reports whether c may take a task: idle, or busy with a commit only.
func (c *cluster) free() bool {
	return c.state == csIdle || c.state == csBusy && c.task == nil && c.committing != nil
}

func (r *runner) result(c *cluster, m *fromWorker) {
	t := c.task
	switch {
	case c.committing != nil && c.committing.ID == m.Task && c.state == csBusy:
		t, c.committing = c.committing, nil
	case t == nil || t.ID != m.Task || c.state != csBusy:
		if c.state != csKilling {
			r.logger.Warn("unexpected result", "cluster", c.id, "task", m.Task)
		}
		return
	default:
		c.task = nil
	}
	c.files++
	c.crashes = 0
	if c.task == nil && c.committing == nil {
		r.setState(c, csIdle)
		c.released = false
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
		r.logs.failuref(c.id, t.Label(), m.Error.User, m.Error.Stack, "%s", msg)
		r.logs.statusf("file %s (#%d) failed on cluster %d: %s", t.Label(), t.ID, c.id, oneLine(m.Error.Error()))
		r.logger.Error("file failed", "file", t.Label(), "cluster", c.id, "user", m.Error.User, "error", msg)
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
		if res.ModeReason != "" {
			r.logs.statusf("file %s (#%d) took the %s path: %s", t.Label(), t.ID, res.Mode, res.ModeReason)
		}
		r.logs.statusf("file %s (#%d) done on cluster %d: %d rows, %d bad rows, %d users in %.2f s (map %.2f s, reduce %.2f s, skew %.2f%s)",
			t.Label(), t.ID, c.id, res.Rows, res.BadRows, res.Users, t.seconds, res.MapSeconds, res.ReduceSeconds, res.Skew(), mode)
		if res.BadValues > 0 {
			r.logs.statusf("file %s (#%d): %d bad values (amounts or dates that did not read; samples below)", t.Label(), t.ID, res.BadValues)
		}
		r.logger.Info("file done", "file", t.Label(), "cluster", c.id, "rows", res.Rows, "bad_rows", res.BadRows,
			"users", res.Users, "seconds", t.seconds, "peak_rss_mib", mib(t.peakRSS))
		for _, s := range res.BadRowSamples {
			r.logger.Warn("bad row", "file", t.Label(), "sample", s)
			r.logs.statusf("bad row sample: %s", s) // kept in the run folder, not only on stderr
		}
	}
	r.logs.timingRow(t)
	// summary.json is written once the next file is handed out: its
	// fsyncs took 2 ms between one file and the next.
	r.summaryStale = true
	if t.alone {
		r.endAlone(c, t)
		return
	}
	if c.state == csIdle {
		r.maybeRecycle(c)
	}
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
	if reason != "" {
		r.stop(c, reason)
	}
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
	if t := c.committing; t != nil {
		// Its output was not committed: the file goes the way of a file
		// whose cluster crashed under it (retried alone, once).
		c.committing = nil
		c.sigkilled = false // its compute is done: no reason for its low-memory path
		r.logs.failuref(c.id, t.Label(), "", "", "cluster ended (%s) while it committed the output", how)
		r.logs.statusf("cluster %d ended (pid %d, %s) while it committed file %s", c.id, pid, how, t.Label())
		r.lost(c, t, false)
		if prev == csBusy && c.task == nil {
			if r.workLeft() {
				r.restarts++
				r.startCluster(c, "restarted (self-regeneration)")
			}
			return
		}
	}
	switch prev {
	case csStopping:
		r.logs.statusf("cluster %d stopped (pid %d, %s)", c.id, pid, how)
		if !c.parked && r.workLeft() {
			r.restarts++
			r.startCluster(c, "restarted ("+c.stopReason+")")
		}
	case csKilling, csBusy:
		t := c.task
		c.task = nil
		c.sigkilled = prev == csBusy && sigkilled(ev.exitErr)
		if prev == csBusy {
			reason := "cluster crashed (" + how + ")"
			if c.sigkilled {
				reason += ", a SIGKILL mce did not send: the kernel's out-of-memory killer, or a kill -9"
			}
			if len(ev.tail) > 0 {
				reason += ": " + strings.Join(ev.tail, "\n")
			}
			r.logs.failuref(c.id, t.Label(), "", "", "%s", reason)
			r.logs.statusf("cluster %d crashed (pid %d, %s) on file %s", c.id, pid, how, t.Label())
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
	output.RemoveOf(filepath.Join(r.dir, t.Output))
	t.seconds = time.Since(t.start).Seconds()
	if !t.alone {
		t.status = TaskPending
		t.retryCluster = c.id
		// Killed for memory (by the monitor, or by the kernel: a SIGKILL
		// nobody here sent), it runs again on its low-memory path.
		t.LowMemory = t.LowMemory || killedForRAM || c.sigkilled
		if t.LowMemory {
			r.lowerPending(t)
		}
		r.retry = append(r.retry, t)
		c.memLimit = r.o.RAMLimitBytes // restarted below for the retry alone
		how := ""
		if t.LowMemory {
			how = ", on its low-memory path"
		}
		r.logs.statusf("file %s (#%d) will be retried alone on cluster %d%s", t.Label(), t.ID, c.id, how)
		r.logger.Warn("file lost with its cluster; retrying it alone", "file", t.Label(), "cluster", c.id, "low_memory", t.LowMemory)
		return
	}
	why := "cluster crashed again"
	if killedForRAM {
		why = "killed over the RAM limit again"
	}
	t.status = TaskFailed
	t.err = &TaskError{Input: t.Label(), Message: why + " while running alone: " + oneLine(c.killReason)}
	if !killedForRAM {
		t.err.Message = why + " while running alone"
	}
	r.logs.failuref(c.id, t.Label(), "", "", "file failed: %s", t.err.Message)
	r.logs.statusf("file %s (#%d) failed on cluster %d: %s", t.Label(), t.ID, c.id, t.err.Message)
	r.logger.Error("file failed", "file", t.Label(), "cluster", c.id, "error", t.err.Message)
	r.logs.timingRow(t)
	r.summaryStale = true
	r.endAlone(c, t)
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
			if ev.cluster >= len(r.clusters) {
				continue // a prestarted process no cluster adopted
			}
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
