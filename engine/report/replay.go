package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Queue orders, as the engine names them (engine.QueueDeque, QueueFIFO).
const (
	queueDeque = "deque"
	queueFIFO  = "fifo"
)

// Layout is a cluster layout: the CPUs of each cluster (cluster 0 first)
// and the queue order.
type Layout struct {
	Clusters []int
	Queue    string // "deque" or "fifo"
}

// CPUs returns the layout's total CPUs.
func (l Layout) CPUs() int {
	n := 0
	for _, c := range l.Clusters {
		n += c
	}
	return n
}

// ClustersFlag returns the layout as --clusters takes it: "3,2,1".
func (l Layout) ClustersFlag() string {
	s := make([]string, len(l.Clusters))
	for i, c := range l.Clusters {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// Flags returns the command line flags of the layout.
func (l Layout) Flags() string {
	return fmt.Sprintf("--clusters %s --queue %s", l.ClustersFlag(), l.Queue)
}

func (l Layout) String() string { return l.ClustersFlag() + " " + l.Queue }

func (l Layout) equal(m Layout) bool {
	if l.Queue != m.Queue || len(l.Clusters) != len(m.Clusters) {
		return false
	}
	for i := range l.Clusters {
		if l.Clusters[i] != m.Clusters[i] {
			return false
		}
	}
	return true
}

// replayTask is one task as the replay sees it.
type replayTask struct {
	id      int
	phase   int
	size    int64   // the scheduler's order: largest first
	work    float64 // seconds on one CPU (see model)
	peakMiB float64 // the cluster's RSS while it runs
}

// model is how long a task holds a cluster: Amdahl's law with one serial
// share for the whole run, plus the parent's bookkeeping between two
// files. A file is read and decompressed by one goroutine and parsed,
// grouped and reduced on all the cluster's CPUs, so a task of one-CPU
// time w takes w·(serial + (1−serial)/cpus) on a cluster of cpus CPUs;
// then the parent records its result (timings.csv, summary.json, synced)
// before the cluster gets its next file, which takes overhead seconds.
type model struct {
	serial   float64
	overhead float64
}

func (m model) seconds(work float64, cpus int) float64 {
	if cpus < 1 {
		cpus = 1
	}
	return work * (m.serial + (1-m.serial)/float64(cpus))
}

// work inverts seconds: the one-CPU time of a task measured on cpus CPUs.
func (m model) work(seconds float64, cpus int) float64 {
	return seconds / m.seconds(1, cpus)
}

// replayRun is where and when the replay ran one task.
type replayRun struct {
	task       int
	cluster    int
	start, end float64
}

// replayResult is the outcome of one replay.
type replayResult struct {
	seconds float64 // the wall time: when the last task ends
	peakMiB float64 // the largest sum of the clusters' RSS
	runs    []replayRun
}

// replay runs tasks through the engine's scheduler (engine/run.go
// dispatch, take and startable) on layout l with task times from m, and
// returns when the last one ends. It replays the engine's rules exactly:
//
//   - tasks wait sorted by phase, then largest first (ties by id, the
//     plan's order);
//   - a task starts only when no task of a lower phase waits or runs;
//   - whenever a cluster is free the clusters are visited in order, and
//     each free one takes a task: with deque cluster 0 takes the largest
//     waiting task of the lowest phase and every other cluster the
//     smallest; with fifo every cluster takes the largest;
//   - a task that ends frees its cluster at once; two that end at the same
//     time are handled in cluster order.
//
// Start-up, kills and retries are not replayed. A cluster's RSS is its
// task's peak while it runs, and stays so while it waits (a cluster keeps
// its memory for its next file); peakMiB is the largest sum over the
// clusters.
func replay(tasks []replayTask, l Layout, m model) replayResult {
	pending := append([]replayTask(nil), tasks...)
	sort.SliceStable(pending, func(i, j int) bool {
		a, b := pending[i], pending[j]
		if a.phase != b.phase {
			return a.phase < b.phase
		}
		if a.size != b.size {
			return a.size > b.size
		}
		return a.id < b.id
	})
	n := len(l.Clusters)
	running := make([]*replayTask, n)
	ends := make([]float64, n)
	rss := make([]float64, n)
	var res replayResult
	now := 0.0

	// startable is engine.runner.startable.
	startable := func() int {
		if len(pending) == 0 {
			return 0
		}
		ph := pending[0].phase
		for _, t := range running {
			if t != nil && t.phase < ph {
				return 0
			}
		}
		k := 1
		for k < len(pending) && pending[k].phase == ph {
			k++
		}
		return k
	}
	// take is engine.runner.take.
	take := func(c int) *replayTask {
		k := startable()
		if k == 0 {
			return nil
		}
		var t replayTask
		if l.Queue == queueDeque && c != 0 {
			t = pending[k-1]
			pending = append(pending[:k-1], pending[k:]...)
		} else {
			t = pending[0]
			pending = pending[1:]
		}
		return &t
	}
	// dispatch is engine.runner.dispatch without retries.
	dispatch := func() {
		for c := 0; c < n; c++ {
			if running[c] == nil && len(pending) > 0 {
				if t := take(c); t != nil {
					running[c] = t
					ends[c] = now + m.seconds(t.work, l.Clusters[c]) + m.overhead
					rss[c] = t.peakMiB
					var sum float64
					for _, x := range rss {
						sum += x
					}
					res.peakMiB = max(res.peakMiB, sum)
					res.runs = append(res.runs, replayRun{task: t.id, cluster: c, start: now, end: ends[c]})
				}
			}
		}
	}
	dispatch()
	for {
		c := -1
		for i, t := range running {
			if t != nil && (c < 0 || ends[i] < ends[c]) {
				c = i
			}
		}
		if c < 0 {
			break
		}
		now = ends[c]
		running[c] = nil
		dispatch()
	}
	res.seconds = now
	return res
}

// layouts returns the ways to split cpus CPUs into at most maxClusters
// clusters, each listed largest first (cluster 0 the largest: with deque
// it takes the largest files). When there are more than limit ways, the
// number of clusters is lowered until there are not.
func layouts(cpus, maxClusters, limit int) [][]int {
	maxClusters = min(maxClusters, cpus)
	for ; maxClusters >= 1; maxClusters-- {
		var out [][]int
		var part []int
		var rec func(left, most int) bool
		rec = func(left, most int) bool {
			if left == 0 {
				out = append(out, append([]int(nil), part...))
				return len(out) <= limit
			}
			if len(part) == maxClusters {
				return true
			}
			for c := min(left, most); c >= 1; c-- {
				part = append(part, c)
				ok := rec(left-c, c)
				part = part[:len(part)-1]
				if !ok {
					return false
				}
			}
			return true
		}
		if rec(cpus, cpus) {
			return out
		}
	}
	return nil
}
