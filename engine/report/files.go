package report

import (
	"cmp"
	"path/filepath"
	"sort"
	"time"
)

// fileRow is one task of the run as the report shows it, merged from
// plan.json, summary.json, timings.csv, status.log and ram_usage.log
// (whichever of them recorded it).
type fileRow struct {
	id       int // -1 when no log gave the task's number
	input    string
	kind     string
	phase    int
	size     int64 // the task's size: on-disk bytes of a raw file
	status   string
	cluster  int // of its last attempt; -1: never ran
	attempts int
	cpus     int // of the cluster of its last attempt; 0: unknown

	hasResult                   bool
	bytes, rows, badRows, users int64
	badValues, emptiedValues    int64 // amounts and dates that did not read; emptied in kept rows
	mapSeconds, reduceSeconds   float64
	seconds                     float64 // of its last attempt
	peakRSSMiB                  float64 // the largest RSS seen while it ran, over all attempts
	skew                        float64
	mode                        string
	modeReason                  string // why that mode ("" unknown)
	message                     string
}

// name is the input's base name.
func (f *fileRow) name() string {
	if f.input == "" {
		return "?"
	}
	return filepath.Base(f.input)
}

// mbPerSec is the throughput of its last attempt in uncompressed MB/s,
// 0 when unknown.
func (f *fileRow) mbPerSec() float64 {
	if f.seconds <= 0 || f.bytes <= 0 {
		return 0
	}
	return float64(f.bytes) / 1e6 / f.seconds
}

// fileIndex finds a task's row by id or by input, making it when new.
type fileIndex struct {
	rows    []*fileRow
	byID    map[int]*fileRow
	byInput map[string]*fileRow
}

func (x *fileIndex) get(id int, input string) *fileRow {
	if f, ok := x.byID[id]; ok && id >= 0 {
		return f
	}
	if f, ok := x.byInput[input]; ok && input != "" && (id < 0 || f.id < 0) {
		if id >= 0 {
			f.id = id
			x.byID[id] = f
		}
		return f
	}
	f := &fileRow{id: id, input: input, cluster: -1, status: "pending", skew: 0}
	x.rows = append(x.rows, f)
	if id >= 0 {
		x.byID[id] = f
	}
	if input != "" {
		x.byInput[input] = f
	}
	return f
}

// files merges what the run recorded per task, in plan order (largest
// first within a phase) when there is a plan.
func (r *run) files() []*fileRow {
	x := &fileIndex{byID: map[int]*fileRow{}, byInput: map[string]*fileRow{}}
	r.filesFromPlanAndSummary(x)
	r.filesFromTimings(x)
	r.filesFromAttempts(x)
	r.filesFinish(x)
	return x.rows
}

// filesFromPlanAndSummary takes the tasks of plan.json and summary.json.
func (r *run) filesFromPlanAndSummary(x *fileIndex) {
	if r.plan != nil {
		for _, t := range r.plan.Tasks {
			f := x.get(t.ID, cmp.Or(t.Name, t.Input))
			f.kind, f.phase, f.size = t.Kind, t.Phase, t.Size
		}
	}
	if r.summary != nil {
		for _, t := range r.summary.Tasks {
			f := x.get(t.ID, t.Input)
			// summary.json, timings.csv and status.log name a task as the
			// engine's logs do (quoted where the name has a control
			// character): the later files find its row by that name.
			if t.Input != "" {
				if f.input == "" {
					f.input = t.Input
				}
				x.byInput[t.Input] = f
			}
			f.phase, f.status, f.attempts, f.seconds = t.Phase, t.Status, t.Attempts, t.Seconds
			if f.size == 0 {
				f.size = t.Size
			}
			if t.Attempts > 0 {
				f.cluster = t.Cluster
			}
			f.peakRSSMiB = max(f.peakRSSMiB, mibOf(t.PeakRSSBytes))
			// A failed task's result holds zeros, not counts.
			if res := t.Result; res != nil && (t.Status == "done" || res.Rows > 0) {
				f.hasResult = true
				f.bytes, f.rows, f.badRows, f.users = res.Bytes, res.Rows, res.BadRows, res.Users
				f.badValues, f.emptiedValues = res.BadValues, res.BadValuesEmptied
				f.mapSeconds, f.reduceSeconds, f.mode, f.modeReason = res.MapSeconds, res.ReduceSeconds, res.Mode, res.ModeReason
				f.skew = 1
				if res.WorkerMeanSeconds > 0 {
					f.skew = res.WorkerMaxSeconds / res.WorkerMeanSeconds
				}
				f.peakRSSMiB = max(f.peakRSSMiB, mibOf(res.PeakRSSBytes))
			}
			if t.Error != nil {
				f.message = t.Error.Message
			}
		}
	}
}

// filesFromTimings takes timings.csv.
func (r *run) filesFromTimings(x *fileIndex) {
	// timings.csv has one line per finished task: the last one is its end.
	for _, tm := range r.timings {
		f := x.get(-1, tm.file)
		if tm.cluster >= 0 {
			f.cluster = tm.cluster
		}
		if tm.status != "" && (r.summary == nil || f.status == "pending") {
			f.status = tm.status
		}
		if tm.status == "done" || !f.hasResult {
			f.hasResult = tm.status == "done" || tm.rows > 0
			f.bytes, f.rows, f.badRows, f.users = tm.bytes, tm.rows, tm.badRows, tm.users
			if f.badValues == 0 {
				f.badValues = tm.badValues // timings.csv does not say which were emptied
			}
			f.mapSeconds, f.reduceSeconds, f.skew, f.mode = tm.mapSeconds, tm.reduceSeconds, tm.skew, tm.mode
			if tm.modeReason != "" {
				f.modeReason = tm.modeReason
			}
		}
		f.peakRSSMiB = max(f.peakRSSMiB, tm.peakRSSMiB)
	}
}

// filesFromAttempts takes status.log's attempts.
func (r *run) filesFromAttempts(x *fileIndex) {
	// status.log: attempts, and everything else when the rest is missing.
	attempts := map[*fileRow]int{}
	for i := range r.attempts {
		a := &r.attempts[i]
		f := x.get(a.task, a.file)
		attempts[f]++
		f.cluster = a.cluster
		if a.killRSSMiB > 0 {
			f.peakRSSMiB = max(f.peakRSSMiB, a.killRSSMiB)
		}
		if a.outcome == outcomeDone && !f.hasResult {
			f.hasResult = true
			f.rows, f.badRows, f.users = a.rows, a.badRows, a.users
			f.mapSeconds, f.reduceSeconds, f.skew, f.mode = a.mapSeconds, a.reduceSeconds, a.skew, a.mode
		}
		if a.outcome == outcomeDone && f.modeReason == "" {
			f.modeReason = a.modeReason
		}
		if a.outcome == outcomeDone && (r.summary == nil || f.seconds == 0) {
			f.seconds = a.seconds
		}
		if r.summary == nil || f.status == "pending" {
			switch {
			case a.outcome == outcomeDone:
				f.status = "done"
			case a.failedAt || a.outcome == outcomeFailed:
				f.status = "failed"
			case a.outcome == outcomeUnfinished:
				f.status = "running"
			case a.outcome == outcomeInterrupted:
				f.status = "pending"
			default:
				f.status = a.outcome
			}
		}
		if f.message == "" && (a.failedAt || a.outcome == outcomeFailed) {
			f.message = a.message
		}
	}
	for f, n := range attempts {
		f.attempts = max(f.attempts, n)
	}
}

// filesFinish adds the RSS samples, the CPUs, and orders the rows.
func (r *run) filesFinish(x *fileIndex) {
	// The RSS of a cluster while it held the file.
	for _, s := range r.rss {
		if s.file != "" {
			if f, ok := x.byInput[s.file]; ok {
				f.peakRSSMiB = max(f.peakRSSMiB, s.rssMiB)
			}
		}
	}
	cpus := r.clusterCPUs()
	for _, f := range x.rows {
		if f.cluster >= 0 && f.cluster < len(cpus) {
			f.cpus = cpus[f.cluster]
		}
		if f.seconds == 0 && f.hasResult && f.status == "done" {
			f.seconds = f.mapSeconds + f.reduceSeconds
		}
		if f.kind == "" {
			f.kind = "file"
		}
	}
	if r.plan == nil {
		sort.SliceStable(x.rows, func(i, j int) bool {
			a, b := x.rows[i], x.rows[j]
			if a.phase != b.phase {
				return a.phase < b.phase
			}
			if a.id >= 0 && b.id >= 0 {
				return a.id < b.id
			}
			return a.size > b.size
		})
	}
}

func mibOf(b int64) float64 { return float64(b) / (1 << 20) }

// clusterCPUs returns the CPUs of each cluster of the last session, from
// its start line, summary.json or the clusters' start lines.
func (r *run) clusterCPUs() []int {
	if n := len(r.sessions); n > 0 && len(r.sessions[n-1].clusters) > 0 {
		return r.sessions[n-1].clusters
	}
	if r.summary != nil && len(r.summary.Clusters) > 0 {
		return r.summary.Clusters
	}
	var cpus []int
	for _, e := range r.events {
		if e.kind != eventStart && e.kind != eventRestart {
			continue
		}
		for len(cpus) <= e.cluster {
			cpus = append(cpus, 0)
		}
		cpus[e.cluster] = e.cpus
	}
	return cpus
}

// queue returns the run's queue order, "" when not recorded.
func (r *run) queue() string {
	if n := len(r.sessions); n > 0 {
		return r.sessions[n-1].queue
	}
	if r.summary != nil {
		return r.summary.Queue
	}
	return ""
}

// ramLimitMiB returns the run's --ram-limit in MiB, 0 when not recorded.
func (r *run) ramLimitMiB() float64 {
	if r.summary != nil && r.summary.RAMLimitBytes > 0 {
		return mibOf(r.summary.RAMLimitBytes)
	}
	if n := len(r.sessions); n > 0 {
		return r.sessions[n-1].ramLimitMiB
	}
	return 0
}

// clusterCount returns how many clusters the timeline and the RSS chart
// need: the layout's, or more when the logs name more.
func (r *run) clusterCount() int {
	n := len(r.clusterCPUs())
	for _, s := range r.sessions {
		n = max(n, len(s.clusters))
	}
	for _, a := range r.attempts {
		n = max(n, a.cluster+1)
	}
	for _, e := range r.events {
		n = max(n, e.cluster+1)
	}
	for _, s := range r.rss {
		n = max(n, s.cluster+1)
	}
	return n
}

// wallSeconds returns how long the run took: the sum of its sessions (a
// resumed run has several), else summary.json's seconds, else the span of
// its logs.
func (r *run) wallSeconds() float64 {
	var sum float64
	for _, s := range r.sessions {
		if !s.end.IsZero() {
			sum += s.end.Sub(s.start).Seconds()
		} else if !r.last.IsZero() {
			sum += r.last.Sub(s.start).Seconds()
		}
	}
	if sum > 0 {
		return sum
	}
	if r.summary != nil && r.summary.Seconds > 0 {
		return r.summary.Seconds
	}
	if !r.first.IsZero() {
		return r.last.Sub(r.first).Seconds()
	}
	return 0
}

// started returns when the run started, zero when not recorded.
func (r *run) started() time.Time {
	if len(r.sessions) > 0 {
		return r.sessions[0].start
	}
	if r.summary != nil && !r.summary.Started.IsZero() {
		return r.summary.Started
	}
	return r.first
}
