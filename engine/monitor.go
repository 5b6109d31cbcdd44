package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/shirou/gopsutil/v3/process"
)

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
			file = c.task.Label()
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
