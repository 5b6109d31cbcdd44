package engine

import "time"

func (r *runner) finished() bool {
	if len(r.pending) > 0 || len(r.retry) > 0 {
		return false
	}
	for _, c := range r.clusters {
		if c.task != nil || c.committing != nil {
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
		r.runAlone()
		return
	}
	for _, c := range r.clusters {
		if c.free() && len(r.pending) > 0 {
			if t := r.take(c.id); t != nil {
				r.assign(c, t, false)
			}
		}
	}
}

func (r *runner) assign(c *cluster, t *taskRun, alone bool) {
	t.attempts++
	t.status, t.cluster, t.alone = TaskRunning, c.id, alone
	t.start, t.peakRSS = time.Now(), 0
	c.task, c.prog, c.released = t, progressMsg{}, false
	r.setState(c, csBusy)
	if alone {
		how := ""
		if t.LowMemory {
			how = "; it takes its low-memory path"
		}
		r.logs.statusf("file %s (#%d) runs alone on cluster %d: the other clusters are stopped, it has the whole RAM limit (%.0f MiB, its GOMEMLIMIT)%s",
			t.Label(), t.ID, c.id, mib(c.memLimit), how)
		r.logs.statusf("file %s (#%d) -> cluster %d (retry %d, alone)", t.Label(), t.ID, c.id, t.attempts-1)
	} else {
		r.logs.statusf("file %s (#%d) -> cluster %d", t.Label(), t.ID, c.id)
	}
	r.logger.Info("file started", "file", t.Label(), "cluster", c.id, "size", t.Size, "attempt", t.attempts)
	if err := c.proc.send(&toWorker{Type: "task", Task: &t.Task}); err != nil {
		// The cluster is dying; its exit event will hand the task back.
		r.logger.Warn("send task", "cluster", c.id, "error", err)
	}
}
