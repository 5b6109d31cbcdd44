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
	if order := func(i, j int) bool { return queueOrder(&pending[i], &pending[j]) }; !sort.SliceIsSorted(pending, order) {
		sort.SliceStable(pending, order)
	}
	n := len(l.Clusters)
	var res replayResult
	if n == 0 {
		return res
	}
	// The waiting tasks of the lowest phase are pending[lo:hi]; the next
	// phase starts at next. Tasks leave from either end only.
	lo, hi, next := 0, 0, 0
	group := func() {
		for lo == hi && next < len(pending) {
			lo, hi = next, next
			for hi < len(pending) && pending[hi].phase == pending[lo].phase {
				hi++
			}
			next = hi
		}
	}
	group()
	running := make([]*replayTask, n)
	rss := make([]float64, n)
	var rssSum, now float64
	// Free clusters lowest number first (dispatch visits them in order);
	// busy ones earliest end first, and of two that end at once the lower
	// number first.
	idle := &minHeap[int]{less: func(a, b int) bool { return a < b }}
	for c := range n {
		idle.push(c)
	}
	busy := &minHeap[clusterEnd]{less: func(a, b clusterEnd) bool {
		if a.end != b.end {
			return a.end < b.end
		}
		return a.cluster < b.cluster
	}}
	res.runs = make([]replayRun, 0, len(tasks))

	// startable is engine.runner.startable: are there waiting tasks of the
	// lowest phase, and no running task of a lower one?
	runningPhases := map[int]int{} // running tasks by phase
	startable := func() bool {
		if lo == hi {
			return false
		}
		for ph, k := range runningPhases {
			if k > 0 && ph < pending[lo].phase {
				return false
			}
		}
		return true
	}
	// take is engine.runner.take.
	take := func(c int) *replayTask {
		var t *replayTask
		if l.Queue == queueDeque && c != 0 {
			hi--
			t = &pending[hi]
		} else {
			t = &pending[lo]
			lo++
		}
		group()
		return t
	}
	// dispatch is engine.runner.dispatch without retries: the free clusters
	// in order each take a task while one may start.
	dispatch := func() {
		for idle.len() > 0 && startable() {
			c := idle.pop()
			t := take(c)
			running[c] = t
			runningPhases[t.phase]++
			end := now + m.seconds(t.work, l.Clusters[c]) + m.overhead
			busy.push(clusterEnd{end: end, cluster: c})
			rssSum += t.peakMiB - rss[c]
			rss[c] = t.peakMiB
			res.peakMiB = max(res.peakMiB, rssSum)
			res.runs = append(res.runs, replayRun{task: t.id, cluster: c, start: now, end: end})
		}
	}
	dispatch()
	for busy.len() > 0 {
		e := busy.pop()
		now = e.end
		runningPhases[running[e.cluster].phase]--
		running[e.cluster] = nil
		idle.push(e.cluster)
		dispatch()
	}
	res.seconds = now
	return res
}

// minHeap is a binary heap ordered by less: the free clusters by number,
// the busy ones by end (see replay).
type minHeap[T any] struct {
	items []T
	less  func(a, b T) bool
}

func (h *minHeap[T]) len() int { return len(h.items) }

func (h *minHeap[T]) push(x T) {
	h.items = append(h.items, x)
	for i := len(h.items) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(h.items[i], h.items[p]) {
			break
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

func (h *minHeap[T]) pop() T {
	top := h.items[0]
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && h.less(h.items[l], h.items[m]) {
			m = l
		}
		if r < last && h.less(h.items[r], h.items[m]) {
			m = r
		}
		if m == i {
			break
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
	return top
}

// queueOrder is the engine's order of waiting tasks: by phase, then
// largest first, then in plan order.
func queueOrder(a, b *replayTask) bool {
	if a.phase != b.phase {
		return a.phase < b.phase
	}
	if a.size != b.size {
		return a.size > b.size
	}
	return a.id < b.id
}

// clusterEnd is when a busy cluster's task ends.
type clusterEnd struct {
	end     float64
	cluster int
}

// layouts returns the ways to split cpus CPUs into at most maxClusters
// clusters, each listed largest first (cluster 0 the largest: with deque
// it takes the largest files). When there are more than limit ways, the
// number of clusters is lowered until there are not.
func layouts(cpus, maxClusters, limit int) [][]int {
	maxClusters = min(maxClusters, cpus)
	for maxClusters > 1 && partitions(cpus, maxClusters, limit) > limit {
		maxClusters--
	}
	if maxClusters < 1 {
		return nil
	}
	var out [][]int
	var part []int
	var rec func(left, most int)
	rec = func(left, most int) {
		if left == 0 {
			out = append(out, append([]int(nil), part...))
			return
		}
		if len(part) == maxClusters {
			return
		}
		for c := min(left, most); c >= 1; c-- {
			part = append(part, c)
			rec(left-c, c)
			part = part[:len(part)-1]
		}
	}
	rec(cpus, cpus)
	return out
}

// partitions counts the ways to split n into at most k parts, stopping
// at limit+1.
func partitions(n, k, limit int) int {
	// p[i] is the count for i with parts of at most j (the same as at
	// most j parts), for j = 1, 2, … k in turn.
	p := make([]int, n+1)
	p[0] = 1
	for j := 1; j <= k; j++ {
		for i := j; i <= n; i++ {
			p[i] = min(p[i]+p[i-j], limit+1)
		}
	}
	return p[n]
}

// families returns layouts of cpus CPUs that a person would try, for any
// number of clusters up to maxClusters: k clusters of (about) equal size,
// and one larger cluster 0 with k−1 equal ones after it. They cover the
// many-cluster layouts that layouts leaves out on a large machine.
func families(cpus, maxClusters int) [][]int {
	maxClusters = min(maxClusters, cpus)
	var out [][]int
	seen := map[string]bool{}
	add := func(l []int) {
		if k := (Layout{Clusters: l}).ClustersFlag(); !seen[k] {
			seen[k] = true
			out = append(out, l)
		}
	}
	for k := 1; k <= maxClusters; k++ {
		l := make([]int, k)
		for i := range l {
			l[i] = cpus / k
			if i < cpus%k {
				l[i]++
			}
		}
		add(l)
		if k == 1 {
			continue
		}
		// Cluster 0 with about 1.5, 2, 3 and 4 times the others' share.
		for _, m := range []float64{1.5, 2, 3, 4} {
			rest := int(float64(cpus) / (m + float64(k-1)))
			big := cpus - rest*(k-1)
			if rest < 1 || big <= rest {
				continue
			}
			l := []int{big}
			for range k - 1 {
				l = append(l, rest)
			}
			add(l)
		}
	}
	return out
}
