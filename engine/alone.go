package engine

import "fmt"

// A file whose cluster was killed (over the RAM limit, by the kernel, or
// in a crash) is retried alone: every other cluster is stopped first, so
// that no idle cluster's kept memory counts against it, and its cluster
// is started again with the whole RAM limit as its GOMEMLIMIT. When the
// file is done (or fails again) the other clusters start again and every
// cluster is back to its share.

// runAlone hands the first file to retry to its cluster once it may run
// alone; until then it stops what stands in the way and returns false.
func (r *runner) runAlone() bool {
	for _, c := range r.clusters {
		if c.task != nil || c.committing != nil {
			return false
		}
	}
	t := r.retry[0]
	c := r.clusters[t.retryCluster]
	waiting := false
	for _, o := range r.clusters {
		if o == c || o.proc == nil {
			continue
		}
		waiting = true
		if o.state == csIdle {
			o.parked = true
			r.stop(o, fmt.Sprintf("stopped while file %s runs alone", t.Label()))
		}
	}
	if waiting || c.state != csIdle {
		return false
	}
	if c.memLimit != r.o.RAMLimitBytes {
		c.memLimit = r.o.RAMLimitBytes
		r.stop(c, fmt.Sprintf("to run file %s alone with the whole RAM limit", t.Label()))
		return false
	}
	r.retry = r.retry[1:]
	r.alone = t
	r.assign(c, t, true)
	return true
}

// endAlone starts the parked clusters again once the file that ran alone
// on c is done, and gives c its share of the RAM limit back.
func (r *runner) endAlone(c *cluster, t *taskRun) {
	r.alone = nil
	if !r.workLeft() {
		c.memLimit = c.share
		return
	}
	for _, o := range r.clusters {
		if o.parked {
			o.parked = false
			if o.proc == nil {
				r.restarts++
				r.startCluster(o, fmt.Sprintf("restarted after file %s ran alone", t.Label()))
			}
		}
	}
	switch {
	case c.memLimit == c.share:
	case c.proc == nil: // lost: exited starts it again
		c.memLimit = c.share
	case c.state == csIdle:
		c.memLimit = c.share
		r.stop(c, "back to its share of the RAM limit")
	}
}

// stop closes an idle cluster's input so that it exits; exited starts it
// again (unless parked) while work is left.
func (r *runner) stop(c *cluster, reason string) {
	c.stopReason = reason
	r.setState(c, csStopping)
	r.logs.statusf("cluster %d stopping (pid %d): %s", c.id, c.proc.pid, reason)
	c.proc.closeInput()
}

// lowerPending puts the waiting tasks of t's kind at least half t's size
// on their low-memory path too: the file that was killed for memory says
// what files of its size need, and each would otherwise be killed once.
func (r *runner) lowerPending(t *taskRun) {
	n := 0
	for _, p := range r.pending {
		if p.Kind == t.Kind && !p.LowMemory && p.Size >= t.Size/2 {
			p.LowMemory = true
			n++
		}
	}
	if n > 0 {
		r.logs.statusf("%d waiting files of at least %.1f MiB will take their low-memory path first, as file %s (#%d) now does",
			n, mib(t.Size/2), t.Label(), t.ID)
	}
}
