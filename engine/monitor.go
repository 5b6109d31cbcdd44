package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/shirou/gopsutil/v3/process"

	"github.com/mce-engine/mce/internal/procfs"
)

// measureDoc says what each RAM measure counts, for status.log.
var measureDoc = map[string]string{
	MeasureRSS:    "the sum of the clusters' resident sets; a page two processes share counts twice",
	MeasurePSS:    "the sum of the clusters' proportional sets; a shared page counts once",
	MeasureCgroup: "this process's cgroup's memory less its inactive file cache, what the kernel's out-of-memory killer acts on",
}

// rssOf returns a cluster process's resident set size.
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

// measure returns a cluster's memory as Options.RAMMeasure counts it: its
// RSS, or its PSS (for cgroup, each cluster's RSS: the total is then the
// cgroup's).
func (r *runner) measure(c *cluster) (int64, error) {
	if r.o.RAMMeasure == MeasurePSS && c.proc != nil {
		return procfs.PSS(c.proc.pid)
	}
	return r.rssOf(c)
}

// monitor measures every cluster's memory, logs it, and over the limit
// reclaims: idle clusters give their kept memory back first, then idle
// clusters still holding memory are recycled, and only then is the busy
// cluster using the most killed.
func (r *runner) monitor() {
	var total int64
	live := r.clusters[:0:0]
	for _, c := range r.clusters {
		if c.proc == nil {
			continue
		}
		rss, err := r.measure(c)
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
	if r.cgroup != nil {
		if ws, err := r.cgroup.WorkingSet(); err == nil {
			total = ws
		}
	}
	for _, c := range live {
		file := ""
		if c.task != nil {
			file = c.task.Label()
		}
		r.logs.ramRow(c.id, c.proc.pid, file, c.rss, total)
	}
	r.peak = max(r.peak, total)
	if total <= r.o.RAMLimitBytes || r.reclaim(live, total) {
		return
	}
	var victim *cluster
	for _, c := range live {
		if c.state == csKilling {
			return // one kill at a time; its memory is on its way back
		}
		// A cluster that only commits a file is not the one to kill: its
		// file is computed.
		if c.state == csBusy && c.task != nil && (victim == nil || c.rss > victim.rss) {
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
	r.kill(victim, total)
}

// idleFloorBytes is what an idle cluster may keep after giving its memory
// back before it is recycled to free the rest: about a fresh process.
const idleFloorBytes = 48 << 20

// reclaim frees idle clusters' memory when the total is over the limit:
// each idle cluster is asked once (since its last file) to give back what
// it keeps between files, and one that still holds more than
// idleFloorBytes after that is recycled. It reports whether it acted, in
// which case the next poll sees the result before anything is killed.
func (r *runner) reclaim(live []*cluster, total int64) bool {
	acted := false
	for _, c := range live {
		if c.state != csIdle {
			continue
		}
		switch {
		case !c.released:
			c.released = true
			acted = true
			r.logs.statusf("cluster %d (idle, %.1f MiB) asked to give its memory back: all clusters %.1f MiB > limit %.1f MiB",
				c.id, mib(c.rss), mib(total), mib(r.o.RAMLimitBytes))
			if err := c.proc.send(&toWorker{Type: "release"}); err != nil {
				r.logger.Warn("send release", "cluster", c.id, "error", err)
			}
		case c.rss > idleFloorBytes:
			acted = true
			r.stop(c, fmt.Sprintf("recycled to free its %.1f MiB: all clusters %.1f MiB > limit %.1f MiB",
				mib(c.rss), mib(total), mib(r.o.RAMLimitBytes)))
		}
	}
	return acted
}

// kill kills a busy cluster over the RAM limit; its file is retried alone.
func (r *runner) kill(c *cluster, total int64) {
	t := c.task
	c.killReason = fmt.Sprintf("killed over the RAM limit: cluster %d used %.1f MiB, all clusters %.1f MiB > limit %.1f MiB",
		c.id, mib(c.rss), mib(total), mib(r.o.RAMLimitBytes))
	r.logs.failuref(c.id, t.Label(), "", "", "%s", c.killReason)
	r.logs.statusf("cluster %d killed (pid %d) on file %s: %s", c.id, c.proc.pid, t.Label(), c.killReason)
	r.logger.Warn("cluster killed over the RAM limit", "cluster", c.id, "file", t.Label(),
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
