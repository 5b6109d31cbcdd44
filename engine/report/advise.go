package report

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// DefaultSerialShare is the serial share of a task's time that the
// advice assumes when the run cannot tell it (every measured file ran on
// clusters of one size): a file is read and decompressed by one goroutine
// while the cluster's other CPUs parse, group and reduce it.
const DefaultSerialShare = 0.1

// Bounds of the advice's search: at most maxLayouts layouts found by
// listing every split of the CPUs, at most maxAdviceClusters clusters, and
// at most replayBudget tasks replayed in all (a few seconds at most).
const (
	maxLayouts        = 4000
	maxAdviceClusters = 256
	replayBudget      = 2_000_000
)

// Advice is a suggested --clusters layout (and queue) for the next run
// over the same files, found by replaying this run's measured per-file
// times and RSS through the engine's scheduler for every layout of the
// same total CPUs.
type Advice struct {
	RunDir string
	// Tasks is how many tasks the replay runs; Measured how many of them
	// have a time this run measured (the others are estimated from their
	// size).
	Tasks, Measured int
	// LeftOut is how many tasks the replay leaves out: they have neither
	// a measured time nor a size (an interrupted run without plan.json).
	LeftOut int
	// Current is this run's layout; MeasuredSeconds its wall time and
	// CurrentSeconds the model's replay of it (with no kills or retries).
	Current         Layout
	MeasuredSeconds float64
	CurrentSeconds  float64
	// Best is the layout with the lowest predicted wall time that stays
	// under the RAM limit (or the lowest peak RAM when none does); nil
	// when there is nothing to advise on (Reason says why).
	Best   *Candidate
	Reason string
	// Ranked are the best layouts, Best first.
	Ranked []Candidate
	// SerialShare is the model's serial share: a task of one-CPU time w
	// takes w·(s + (1−s)/cpus). SerialFitted says it was fitted from this
	// run's files on clusters of different sizes; ModelNote says how.
	SerialShare  float64
	SerialFitted bool
	ModelNote    string
	// GapSeconds is the time between a result and a cluster's next file
	// that the replay adds to every task (the median of this run).
	GapSeconds float64
	// RAMLimitMiB is the run's --ram-limit (0: not recorded).
	RAMLimitMiB float64
	// Notes are further advice: --ram-limit, --mode, lost time.
	Notes []string
}

// Candidate is one replayed layout.
type Candidate struct {
	Layout
	PredictedSeconds float64
	// PeakRAMMiB is the largest sum of the clusters' RSS in the replay.
	PeakRAMMiB   float64
	OverRAMLimit bool
}

// Advise reads a run folder and advises a layout for the next run over
// the same files. It fails only when runDir cannot be read; a run with
// nothing measured gets an Advice whose Best is nil.
func Advise(runDir string) (*Advice, error) {
	r, err := readRun(runDir)
	if err != nil {
		return nil, err
	}
	return advise(r, r.files()), nil
}

// advise replays the run's tasks over every layout of its total CPUs.
func advise(r *run, files []*fileRow) *Advice {
	a := &Advice{
		RunDir: r.dir, Current: Layout{Clusters: r.clusterCPUs(), Queue: r.queue()},
		MeasuredSeconds: r.wallSeconds(), RAMLimitMiB: r.ramLimitMiB(),
	}
	if a.Current.Queue == "" {
		a.Current.Queue = queueDeque
	}
	cpus := a.Current.CPUs()
	switch {
	case cpus == 0:
		a.Reason = "the run's cluster layout was not recorded"
		return a
	case cpus > 4096:
		a.Reason = fmt.Sprintf("the run's layout has %d CPUs, more than the advice replays", cpus)
		return a
	}
	m, note, fitted := fitModel(files)
	a.SerialShare, a.ModelNote, a.SerialFitted = m.serial, note, fitted
	m.overhead = dispatchGap(r)
	a.GapSeconds = m.overhead
	if m.overhead > 0 {
		a.ModelNote += fmt.Sprintf("; a cluster gets its next file %.0f ms after a result (the parent's bookkeeping, the median of this run)", 1000*m.overhead)
	}
	tasks, measured, leftOut := replayTasks(files, m)
	a.LeftOut = leftOut
	sort.SliceStable(tasks, func(i, j int) bool { return queueOrder(&tasks[i], &tasks[j]) }) // once, not per replay
	a.Tasks, a.Measured = len(tasks), measured
	if measured == 0 {
		a.Reason = "no file finished in this run, so there is no time to replay"
		return a
	}
	over := func(peak float64) bool { return a.RAMLimitMiB > 0 && peak > a.RAMLimitMiB }
	cur := replay(tasks, a.Current, m)
	a.CurrentSeconds = cur.seconds

	// More clusters than the tasks of the largest phase would idle.
	perPhase := map[int]int{}
	maxClusters := 0
	for _, t := range tasks {
		perPhase[t.phase]++
		maxClusters = max(maxClusters, perPhase[t.phase])
	}
	maxClusters = min(max(maxClusters, len(a.Current.Clusters)), maxAdviceClusters)
	var cands []Candidate
	seen := false
	tried := map[string]bool{}
	budget := replayBudget
	for _, cl := range append(families(cpus, maxClusters), layouts(cpus, maxClusters, maxLayouts)...) {
		key := Layout{Clusters: cl}.ClustersFlag()
		if cost := 2 * len(tasks); tried[key] || cost > budget {
			continue
		} else {
			budget -= cost
		}
		tried[key] = true
		for _, q := range []string{queueDeque, queueFIFO} {
			l := Layout{Clusters: cl, Queue: q}
			res := replay(tasks, l, m)
			cands = append(cands, Candidate{Layout: l, PredictedSeconds: res.seconds, PeakRAMMiB: res.peakMiB, OverRAMLimit: over(res.peakMiB)})
			seen = seen || l.equal(a.Current)
		}
	}
	if !seen {
		cands = append(cands, Candidate{Layout: a.Current, PredictedSeconds: cur.seconds, PeakRAMMiB: cur.peakMiB, OverRAMLimit: over(cur.peakMiB)})
	}
	sort.SliceStable(cands, func(i, j int) bool { return better(cands[i], cands[j], a.Current) })
	best := cands[0]
	a.Best = &best
	for i, c := range cands {
		if i >= 8 && !c.equal(a.Current) {
			continue
		}
		a.Ranked = append(a.Ranked, c)
	}
	a.Notes = notes(r, files, a, cur.peakMiB)
	return a
}

// better orders candidates: under the RAM limit first, then by predicted
// time (within 1%, the current layout, then fewer clusters, then deque),
// and over the limit by peak RAM.
func better(x, y Candidate, current Layout) bool {
	if x.OverRAMLimit != y.OverRAMLimit {
		return !x.OverRAMLimit
	}
	if x.OverRAMLimit && x.PeakRAMMiB != y.PeakRAMMiB {
		return x.PeakRAMMiB < y.PeakRAMMiB
	}
	tx, ty := x.PredictedSeconds, y.PredictedSeconds
	if math.Abs(tx-ty) > 0.01*math.Max(tx, ty) {
		return tx < ty
	}
	if cx, cy := x.equal(current), y.equal(current); cx != cy {
		return cx
	}
	if len(x.Clusters) != len(y.Clusters) {
		return len(x.Clusters) < len(y.Clusters)
	}
	if x.Queue != y.Queue {
		return x.Queue == queueDeque
	}
	return tx < ty
}

// fitModel picks the model's serial share. When at least two files each
// ran on clusters of two different sizes, it is the share that makes
// their one-CPU times per byte agree best (the least variance of their
// logarithms); otherwise DefaultSerialShare.
func fitModel(files []*fileRow) (model, string, bool) {
	type point struct {
		seconds, bytes float64
		cpus           int
	}
	var pts []point
	byCPUs := map[int]int{}
	for _, f := range files {
		b := float64(f.bytes)
		if b <= 0 {
			b = float64(f.size)
		}
		if f.status != "done" || f.seconds <= 0 || f.cpus <= 0 || b <= 0 {
			continue
		}
		pts = append(pts, point{f.seconds, b, f.cpus})
		byCPUs[f.cpus]++
	}
	groups := 0
	var sizes []string
	for c, n := range byCPUs {
		if n >= 2 {
			groups++
		}
		sizes = append(sizes, fmt.Sprint(c))
	}
	sort.Strings(sizes)
	cpuWord := "CPUs"
	if len(sizes) == 1 && sizes[0] == "1" {
		cpuWord = "CPU"
	}
	if groups < 2 {
		why := "no finished file of known size"
		if len(pts) > 0 {
			why = fmt.Sprintf("the finished files ran on clusters of %s %s only", strings.Join(sizes, " and "), cpuWord)
			if len(byCPUs) > 1 {
				why = fmt.Sprintf("too few finished files on clusters of %s CPUs to tell", strings.Join(sizes, " and "))
			}
		}
		return model{serial: DefaultSerialShare}, fmt.Sprintf("serial share %.2f assumed (%s)", DefaultSerialShare, why), false
	}
	bestS, bestCost := 0.0, math.Inf(1)
	for i := 0; i <= 90; i++ {
		m := model{serial: float64(i) / 100}
		var sum, sum2 float64
		for _, p := range pts {
			x := math.Log(m.work(p.seconds, p.cpus) / p.bytes)
			sum += x
			sum2 += x * x
		}
		n := float64(len(pts))
		cost := sum2/n - (sum/n)*(sum/n)
		if cost < bestCost-1e-12 {
			bestS, bestCost = m.serial, cost
		}
	}
	return model{serial: bestS}, fmt.Sprintf("serial share %.2f fitted from %d finished files on clusters of %s CPUs", bestS, len(pts), strings.Join(sizes, ", ")), true
}

// dispatchGap returns the median time a cluster waited between the result
// of one file and its next one while files were waiting: the parent's
// bookkeeping per file, which matters for many small files.
func dispatchGap(r *run) float64 {
	// A gap with a kill, crash, restart or retry in it, or longer than a
	// second, waited for something else (a retry alone, a phase).
	quiet := func(from, to time.Time) bool {
		if to.Sub(from) > time.Second {
			return false
		}
		for _, e := range r.events {
			if !e.time.Before(from) && !e.time.After(to) && e.kind != eventStart {
				return false
			}
		}
		return true
	}
	var gaps []float64
	prev := map[int]*attempt{}
	for i := range r.attempts {
		a := &r.attempts[i]
		// A file handed out before the last one's result (while that one
		// commits its output) waited for nothing: a gap of 0.
		if p := prev[a.cluster]; p != nil && p.outcome == outcomeDone && !a.alone && quiet(p.end, a.start) {
			gaps = append(gaps, max(0, a.start.Sub(p.end).Seconds()))
		}
		prev[a.cluster] = a
	}
	if len(gaps) == 0 {
		return 0
	}
	return median(gaps)
}

// replayTasks turns the run's tasks into replay tasks: a task's one-CPU
// time comes from its last attempt's time and its cluster's CPUs, or, for
// a task with no measured time, from its size at the median time per byte
// of the measured tasks of its kind. It returns how many were measured.
func replayTasks(files []*fileRow, m model) (tasks []replayTask, measured, leftOut int) {
	perByte := map[string][]float64{}
	var all []float64
	for _, f := range files {
		if f.seconds > 0 && f.cpus > 0 && f.size > 0 {
			x := m.work(f.seconds, f.cpus) / float64(f.size)
			perByte[f.kind] = append(perByte[f.kind], x)
			all = append(all, x)
		}
	}
	for i, f := range files {
		t := replayTask{id: f.id, phase: f.phase, size: f.size, peakMiB: f.peakRSSMiB}
		if t.id < 0 {
			t.id = 1<<20 + i
		}
		switch {
		case f.seconds > 0 && f.cpus > 0:
			t.work = m.work(f.seconds, f.cpus)
			measured++
		case len(perByte[f.kind]) > 0 && f.size > 0:
			t.work = median(perByte[f.kind]) * float64(f.size)
		case len(all) > 0 && f.size > 0:
			t.work = median(all) * float64(f.size)
		default:
			leftOut++ // neither a time nor a size to estimate one from
			continue
		}
		tasks = append(tasks, t)
	}
	return tasks, measured, leftOut
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// notes says what else the run suggests: kills and the RAM limit, the
// mode, time lost to retries, estimated tasks.
func notes(r *run, files []*fileRow, a *Advice, currentPeakMiB float64) []string {
	var out []string
	kills := 0
	var killed []string
	var lost float64
	for _, at := range r.attempts {
		switch at.outcome {
		case outcomeKilled, outcomeCrashed, outcomeLost:
			lost += at.end.Sub(at.start).Seconds()
			if at.outcome == outcomeKilled {
				kills++
				killed = appendUnique(killed, filepath.Base(at.file))
			}
		}
	}
	if kills > 0 {
		out = append(out, fmt.Sprintf("%s over the RAM limit (%s) cost %.1f s of work that was redone; the layouts are replayed with each file's largest RSS seen, kills included",
			count(kills, "cluster kill"), strings.Join(killed, ", "), lost))
	} else if lost > 0 {
		out = append(out, fmt.Sprintf("clusters that crashed cost %.1f s of work that was redone", lost))
	}
	var biggest *fileRow
	for _, f := range files {
		if biggest == nil || f.peakRSSMiB > biggest.peakRSSMiB {
			biggest = f
		}
	}
	if a.RAMLimitMiB > 0 && a.Best != nil && a.Best.OverRAMLimit {
		need := math.Ceil(a.Best.PeakRAMMiB*1.2/64) * 64
		out = append(out, fmt.Sprintf("no layout stays under the RAM limit of %.0f MiB: %s alone reached %.0f MiB; give --ram-limit %.0fMiB if the machine has it, or --mode stream (RAM grows with users, not rows; mergeable feature sets only)",
			a.RAMLimitMiB, biggest.name(), biggest.peakRSSMiB, need))
	} else if kills > 0 && a.Best != nil {
		need := math.Ceil(currentPeakMiB*1.2/64) * 64
		if need > a.RAMLimitMiB {
			out = append(out, fmt.Sprintf("to keep this run's layout instead, give --ram-limit %.0fMiB if the machine has it", need))
		}
	}
	groupKilled := false
	for _, at := range r.attempts {
		if at.outcome == outcomeKilled {
			for _, f := range files {
				if f.input == at.file && f.mode == "group" {
					groupKilled = true
				}
			}
		}
	}
	if groupKilled {
		out = append(out, "a file grouped in RAM was killed: --mode stream (auto's choice for a mergeable set) holds the users' aggregates, not the rows; a Reduce feature set can take --mode disk")
	}
	if a.Best != nil && a.Best.Queue != a.Current.Queue {
		out = append(out, fmt.Sprintf("the suggestion changes the queue from %s to %s", a.Current.Queue, a.Best.Queue))
	}
	if !a.SerialFitted && a.Current.CPUs() >= 3 && a.Measured > 0 {
		out = append(out, fmt.Sprintf("this run cannot tell how a file's time scales with CPUs, so the model assumes a serial share of %.2f; a run on clusters of different sizes (e.g. --clusters %s) lets the next advice measure it",
			a.SerialShare, mixedLayout(a.Current.CPUs())))
	}
	if a.Measured < a.Tasks {
		out = append(out, fmt.Sprintf("%s of %d have no measured time; the replay estimates them from their size", count(a.Tasks-a.Measured, "task"), a.Tasks))
	}
	if a.LeftOut > 0 {
		out = append(out, fmt.Sprintf("%s neither a measured time nor a size: the replay leaves them out, and compares with this run's layout replayed", count(a.LeftOut, "task has", "tasks have")))
	}
	return out
}

// mixedLayout returns a layout of cpus CPUs with clusters of different
// sizes: about half, then halves of the rest.
func mixedLayout(cpus int) string {
	var cl []int
	for left := cpus; left > 0; {
		c := max(1, (left+1)/2)
		if len(cl) > 0 && c >= cl[len(cl)-1] && c > 1 {
			c = cl[len(cl)-1] - 1
		}
		cl = append(cl, c)
		left -= c
	}
	return Layout{Clusters: cl}.ClustersFlag()
}

func appendUnique(s []string, x string) []string {
	for _, y := range s {
		if y == x {
			return s
		}
	}
	return append(s, x)
}

// Gain returns how much lower the suggestion's predicted wall time is than
// this run's measured one, as a share (0.25: 25% lower); 0 when unknown.
// When the replay left tasks out, the measured time is not comparable, and
// the base is the replay of this run's layout.
func (a *Advice) Gain() float64 {
	base := a.MeasuredSeconds
	if a.LeftOut > 0 {
		base = a.CurrentSeconds
	}
	if a.Best == nil || base <= 0 {
		return 0
	}
	return 1 - a.Best.PredictedSeconds/base
}

// gainBase names what Gain compares with.
func (a *Advice) gainBase() string {
	if a.LeftOut > 0 {
		return "this run's layout replayed"
	}
	return "this run"
}

// String returns the advice as text for a terminal.
func (a *Advice) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "advice for the next run over the files of %s\n", a.RunDir)
	if a.Best == nil {
		fmt.Fprintf(&b, "  no advice: %s\n", a.Reason)
		return b.String()
	}
	w := len(a.Current.Flags())
	for _, c := range a.Ranked {
		w = max(w, len(c.Flags()))
	}
	fmt.Fprintf(&b, "  this run:   %-*s  %s measured, %s replayed (%s, %s)\n",
		w, a.Current.Flags(), seconds(a.MeasuredSeconds), seconds(a.CurrentSeconds), count(a.Tasks, "task"), cpusString(a.Current.CPUs()))
	if a.Best.equal(a.Current) {
		fmt.Fprintf(&b, "  suggestion: keep %s: no layout of %s is predicted faster\n", a.Current.Flags(), cpusString(a.Current.CPUs()))
	} else {
		fmt.Fprintf(&b, "  suggestion: %-*s  %s predicted", w, a.Best.Flags(), seconds(a.Best.PredictedSeconds))
		if g := a.Gain(); g > 0 {
			fmt.Fprintf(&b, ", %.0f%% less than %s", 100*g, a.gainBase())
		}
		b.WriteString("\n")
	}
	if a.RAMLimitMiB > 0 && a.Best.PeakRAMMiB > 0 {
		fmt.Fprintf(&b, "  peak RAM:   %.0f MiB predicted, limit %.0f MiB\n", a.Best.PeakRAMMiB, a.RAMLimitMiB)
	}
	fmt.Fprintf(&b, "  model:      a task of one-CPU time w takes w·(s + (1−s)/cpus); %s\n", a.ModelNote)
	b.WriteString("  layouts:\n")
	for _, c := range a.Ranked {
		mark := " "
		if c.equal(a.Current) {
			mark = "*"
		}
		ram := ""
		if c.OverRAMLimit {
			ram = " over the RAM limit"
		}
		peak := "peak RSS not recorded"
		if c.PeakRAMMiB > 0 {
			peak = fmt.Sprintf("peak %6.0f MiB", c.PeakRAMMiB)
		}
		fmt.Fprintf(&b, "   %s %-*s  %8s  %s%s\n", mark, w+1, c.Flags(), seconds(c.PredictedSeconds), peak, ram)
	}
	for _, n := range a.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

// count writes n and a noun: count(1, "task") is "1 task", count(2,
// "task") "2 tasks"; an irregular plural comes third.
func count(n int, one string, many ...string) string {
	switch {
	case n == 1:
		return "1 " + one
	case len(many) > 0:
		return fmt.Sprintf("%d %s", n, many[0])
	}
	return fmt.Sprintf("%d %ss", n, one)
}

func cpusString(n int) string {
	if n == 1 {
		return "1 CPU"
	}
	return fmt.Sprintf("%d CPUs", n)
}

// seconds formats a duration in seconds for people.
func seconds(s float64) string {
	switch {
	case s >= 3600:
		return fmt.Sprintf("%dh%02dm", int(s)/3600, int(s)%3600/60)
	case s >= 60:
		return fmt.Sprintf("%dm%02ds", int(s)/60, int(s)%60)
	case s >= 10:
		return fmt.Sprintf("%.0f s", s)
	}
	return fmt.Sprintf("%.2f s", s)
}
