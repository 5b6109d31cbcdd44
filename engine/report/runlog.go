package report

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The files of a run folder, as the engine names them. NB: this package
// must not import the engine (the engine may call it), so the names and
// formats below repeat engine/rundir.go, engine/run.go and engine/task.go.
const (
	statusLog   = "status.log"
	failureLog  = "failure.log"
	ramLog      = "ram_usage.log"
	timingsCSV  = "timings.csv"
	summaryJSON = "summary.json"
	planJSON    = "plan.json"
)

// recordedFiles are the files a report is drawn from, in the order the
// report lists them.
var recordedFiles = []string{statusLog, failureLog, ramLog, timingsCSV, summaryJSON, planJSON}

// stampLayout is the time stamp of status.log, failure.log and
// ram_usage.log lines.
const stampLayout = "2006-01-02T15:04:05.000Z07:00"

// Attempt outcomes: how one run of a file on a cluster ended.
const (
	outcomeDone        = "done"
	outcomeFailed      = "failed"      // the handler reported an error
	outcomeKilled      = "killed"      // over the RAM limit
	outcomeCrashed     = "crashed"     // the cluster died under it
	outcomeLost        = "lost"        // the cluster went away for another reason
	outcomeInterrupted = "interrupted" // the run was interrupted or stopped
	outcomeUnfinished  = "unfinished"  // no end recorded (the run may still go on)
)

// run is what a run folder records, parsed. Every part may be empty:
// missing lists the files that were not there, and bad counts the lines
// of each file that could not be read.
type run struct {
	dir     string
	missing []string
	bad     map[string]int

	summary  *summary
	plan     *plan
	sessions []session
	attempts []attempt
	events   []clusterEvent
	rss      []rssSample
	timings  []timing
	failures []failure
	samples  map[string][]string // bad row samples by file

	// first and last are the earliest and latest time stamps seen.
	first, last time.Time
}

// summary is summary.json (engine.Summary).
type summary struct {
	Job           string        `json:"job"`
	RunDir        string        `json:"run_dir"`
	Feature       string        `json:"feature"`
	Started       time.Time     `json:"started"`
	Finished      time.Time     `json:"finished"`
	Seconds       float64       `json:"seconds"`
	Clusters      []int         `json:"clusters"`
	Queue         string        `json:"queue"`
	RAMLimitBytes int64         `json:"ram_limit_bytes"`
	PeakRSSBytes  int64         `json:"peak_rss_bytes"`
	Files         int           `json:"files"`
	Done          int           `json:"done"`
	Skipped       int           `json:"skipped"`
	Failed        int           `json:"failed"`
	Bytes         int64         `json:"bytes"`
	Rows          int64         `json:"rows"`
	BadRows       int64         `json:"bad_rows"`
	Restarts      int           `json:"restarts"`
	Interrupted   bool          `json:"interrupted"`
	Error         string        `json:"error"`
	Tasks         []taskSummary `json:"tasks"`
}

// taskSummary is one task of summary.json (engine.TaskSummary).
type taskSummary struct {
	ID           int        `json:"id"`
	Input        string     `json:"input"`
	Output       string     `json:"output"`
	Phase        int        `json:"phase"`
	Size         int64      `json:"size"`
	Status       string     `json:"status"`
	Cluster      int        `json:"cluster"`
	Attempts     int        `json:"attempts"`
	Seconds      float64    `json:"seconds"`
	PeakRSSBytes int64      `json:"peak_rss_bytes"`
	Result       *result    `json:"result"`
	Error        *taskError `json:"error"`
}

// result is a task's result (engine.Result).
type result struct {
	Bytes             int64   `json:"bytes"`
	Rows              int64   `json:"rows"`
	BadRows           int64   `json:"bad_rows"`
	BadValues         int64   `json:"bad_values"`
	BadValuesEmptied  int64   `json:"bad_values_emptied"`
	DroppedRows       int64   `json:"dropped_rows"`
	Users             int64   `json:"users"`
	SplitUsers        int     `json:"split_users"`
	MapSeconds        float64 `json:"map_seconds"`
	ReduceSeconds     float64 `json:"reduce_seconds"`
	WorkerMaxSeconds  float64 `json:"worker_max_seconds"`
	WorkerMeanSeconds float64 `json:"worker_mean_seconds"`
	PeakRSSBytes      int64   `json:"peak_rss_bytes"`
	Mode              string  `json:"mode"`
	ModeReason        string  `json:"mode_reason"`
}

// taskError is why a task failed (engine.TaskError).
type taskError struct {
	Input   string `json:"input"`
	User    string `json:"user"`
	Line    int64  `json:"line"`
	Message string `json:"message"`
	Stack   string `json:"stack"`
}

// plan is plan.json (engine.Plan), without the tasks' handler arguments.
type plan struct {
	Version int               `json:"version"`
	Job     string            `json:"job"`
	Feature string            `json:"feature"`
	Created time.Time         `json:"created"`
	Params  map[string]string `json:"params"`
	// Settings are the mode's settings (version 2 on): `mce run`'s reader
	// options under "reader", its mode, its output's format.
	Settings map[string]any `json:"settings"`
	// Reader is version 1's reader options, which version 2 moved into
	// Settings.
	Reader map[string]any `json:"reader"`
	// Command is the command line that started the run (version 2 on).
	Command  []string        `json:"command"`
	Features *featuresSource `json:"features_source"`
	Tasks    []planTask      `json:"tasks"`
}

// featuresSource is the features file a run computes (engine.FeaturesSource).
type featuresSource struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// planTask is one task of plan.json (engine.Task).
type planTask struct {
	ID    int    `json:"id"`
	Kind  string `json:"kind"`
	Input string `json:"input"`
	// Name is how the logs name a task that has no input file (a store
	// range of `mce reduce`); they name the others by Input.
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Output string `json:"output"`
	Phase  int    `json:"phase"`
}

// session is one start of the run (a --resume starts another), from its
// "start job" line to the line that ends it.
type session struct {
	start       time.Time
	job, dir    string
	files, toDo int
	clusters    []int
	queue       string
	ramLimitMiB float64
	ramMeasure  string // what the limit was compared with: rss, pss or cgroup ("" not recorded)
	features    string
	worker      string
	resumed     bool      // a "resume" line came first
	end         time.Time // zero: no end recorded
	endLine     string    // "finished: …", "interrupted: …" or "stopped: …"
}

// attempt is one run of a task on a cluster: from its assignment to its
// result, kill or crash.
type attempt struct {
	task     int
	file     string
	cluster  int
	retry    int // 0 for the first attempt
	alone    bool
	start    time.Time
	end      time.Time // zero when outcome is unfinished
	outcome  string
	message  string // why it failed, was killed or crashed
	failedAt bool   // the file failed with this attempt (after a kill or crash too)

	// From the "done" line.
	rows, badRows, users                 int64
	seconds, mapSeconds, reduceSeconds   float64
	skew                                 float64
	mode                                 string
	killRSSMiB, killTotalMiB, killLimMiB float64 // from a kill's message

	// modeReason is why the file took its mode, from the line before
	// "done" ("took the … path: …").
	modeReason string
}

// Cluster event kinds.
const (
	eventStart   = "start"
	eventRestart = "restart"
	eventKill    = "kill"
	eventCrash   = "crash"
	eventRecycle = "recycle"
	eventRetry   = "retry"
	eventRelease = "release" // an idle cluster asked to give its memory back
)

// clusterEvent is a moment on one cluster's timeline.
type clusterEvent struct {
	time    time.Time
	cluster int
	kind    string
	pid     int
	cpus    int
	file    string
	text    string
}

// rssSample is one line of ram_usage.log.
type rssSample struct {
	time     time.Time
	cluster  int
	pid      int
	file     string
	rssMiB   float64
	totalMiB float64
}

// timing is one line of timings.csv.
type timing struct {
	file                             string
	cluster                          int
	bytes, rows, badRows, users      int64
	badValues                        int64
	mapSeconds, reduceSeconds        float64
	peakRSSMiB                       float64
	workerMaxSeconds, workerMeanSecs float64
	skew                             float64
	status, mode, modeReason         string
}

// failure is one entry of failure.log.
type failure struct {
	time    time.Time
	cluster int // -1: none named
	file    string
	user    string
	message string
	stack   string
}

// readRun reads every file of a run folder that is there. It fails only
// when dir is not a readable folder; a missing, truncated or garbled log
// leaves its part empty or short and is noted in missing or bad.
func readRun(dir string) (*run, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("run folder: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("run folder %s: not a folder", dir)
	}
	r := &run{dir: dir, bad: map[string]int{}, samples: map[string][]string{}}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				r.missing = append(r.missing, name)
			} else {
				r.missing = append(r.missing, name+" ("+err.Error()+")")
			}
			return nil
		}
		return b
	}
	if b := read(summaryJSON); b != nil {
		s := &summary{}
		if err := json.Unmarshal(b, s); err != nil {
			r.bad[summaryJSON]++
		} else {
			r.summary = s
		}
	}
	if b := read(planJSON); b != nil {
		p := &plan{}
		if err := json.Unmarshal(b, p); err != nil {
			r.bad[planJSON]++
		} else {
			r.plan = p
		}
	}
	if b := read(statusLog); b != nil {
		r.parseStatus(b)
	}
	if b := read(failureLog); b != nil {
		r.parseFailures(b)
	}
	if b := read(ramLog); b != nil {
		r.parseRSS(b)
	}
	if b := read(timingsCSV); b != nil {
		r.parseTimings(b)
	}
	r.finish()
	return r, nil
}

// lines returns b's lines without their line ends; a last line with no
// newline (a write cut short) is kept.
func lines(b []byte) []string {
	s := strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// cutStamp splits a log line into its time stamp and the rest.
func cutStamp(line string) (time.Time, string, bool) {
	ts, rest, ok := strings.Cut(line, " ")
	if !ok {
		return time.Time{}, "", false
	}
	t, err := time.Parse(stampLayout, ts)
	if err != nil {
		return time.Time{}, "", false
	}
	return t, rest, true
}

func (r *run) seen(t time.Time) {
	if t.IsZero() {
		return
	}
	if r.first.IsZero() || t.Before(r.first) {
		r.first = t
	}
	if t.After(r.last) {
		r.last = t
	}
}

// The lines of status.log (engine/run.go writes them with statusf),
// compiled when a report is first made (lazyRegexp).
var (
	reStart     = lazyRE(`^start job (.*?) in (.*): (\d+) files \((\d+) to do\), clusters \[([\d ]*)\], queue (\S+), RAM limit ([\d.]+) MiB, features (.*), worker (.*)$`)
	reResume    = lazyRE(`^resume (.*?): (\d+) of (\d+) files already done`)
	reClStart   = lazyRE(`^cluster (\d+) (started|restarted(?: \((.*)\)| (after file .* ran alone))?): pid (\d+), (\d+) CPUs, GOMEMLIMIT ([\d.]+) MiB$`)
	reAssign    = lazyRE(`^file (.*) \(#(\d+)\) -> cluster (\d+)(?: \(retry (\d+), alone\))?$`)
	reDone      = lazyRE(`^file (.*) \(#(\d+)\) done on cluster (\d+): (\d+) rows, (\d+) bad rows, (\d+) users in ([\d.]+) s \(map ([\d.]+) s, reduce ([\d.]+) s, skew ([\d.]+)(?:, (\S+))?\)$`)
	reFailed    = lazyRE(`^file (.*) \(#(\d+)\) failed on cluster (\d+): (.*)$`)
	reRetry     = lazyRE(`^file (.*) \(#(\d+)\) will be retried alone on cluster (\d+)(?:, (.*))?$`)
	reKilled    = lazyRE(`^cluster (\d+) killed \(pid (\d+)\) on file (.*?): (killed over the RAM limit.*)$`)
	reKillNums  = lazyRE(`used ([\d.]+) MiB, all clusters ([\d.]+) MiB > limit ([\d.]+) MiB`)
	reGone      = lazyRE(`^cluster (\d+) is gone \(pid (\d+), (.*)\)$`)
	reCrashed   = lazyRE(`^cluster (\d+) crashed \(pid (\d+), (.*)\) on file (.*)$`)
	reStopping  = lazyRE(`^cluster (\d+) stopping \(pid (\d+)\): (.*)$`)
	reStopped   = lazyRE(`^cluster (\d+) stopped \(pid (\d+), (.*)\)$`)
	reIdleCrash = lazyRE(`^cluster (\d+) (.*) while (\S+) \(pid (\d+)\)$`)
	reCommitEnd = lazyRE(`^cluster (\d+) ended \(pid (\d+), (.*)\) while it committed file (.*)$`)
	reRelease   = lazyRE(`^cluster (\d+) \(idle, [\d.]+ MiB\) asked to give its memory back: (.*)$`)
	reMeasure   = lazyRE(`^RAM measure: (\S+) \(`)
	reModeLine  = lazyRE(`^file (.*) \(#(\d+)\) took the (\S+) path: (.*)$`)
	reBadValues = lazyRE(`^file (.*) \(#(\d+)\): (\d+) bad values \(`)
	reAlone     = lazyRE(`^file (.*) \(#(\d+)\) runs alone on cluster (\d+): `)
	reLowMemory = lazyRE(`^\d+ waiting files of at least [\d.]+ MiB will take their low-memory path first`)
)

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// atof reads a finite number, 0 for anything else (NaN, Inf, garbage).
func atof(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// parseStatus reads status.log into sessions, attempts and events.
// statusParse is the state of reading status.log.
type statusParse struct {
	r *run
	// open holds each cluster's attempts without an end, by index in
	// r.attempts, oldest first: the running one, and before it the one
	// whose output is still being committed (a cluster takes its next
	// file while the last one commits).
	open    map[int][]int
	killed  map[int]int // cluster -> index of the event of a kill not yet followed by "is gone"
	resumed bool
}

func (r *run) parseStatus(b []byte) {
	p := &statusParse{r: r, open: map[int][]int{}, killed: map[int]int{}}
	for _, ln := range lines(b) {
		t, msg, ok := cutStamp(ln)
		if !ok {
			r.bad[statusLog]++
			continue
		}
		r.seen(t)
		if !p.attemptLine(t, msg) && !p.clusterLine(t, msg) && !p.sessionLine(t, msg) {
			r.bad[statusLog]++
		}
	}
}

func (p *statusParse) closeAll(t time.Time, outcome, why string) {
	for c := range p.open {
		p.closeCluster(c, t, outcome, why)
	}
}

// closeOn ends task id's attempt open on cluster c, if there is one.
func (p *statusParse) closeOn(c, id int, t time.Time, outcome, why string) *attempt {
	open := p.open[c]
	for k, i := range open {
		if p.r.attempts[i].task != id {
			continue
		}
		p.open[c] = slices.Delete(open, k, k+1)
		a := &p.r.attempts[i]
		a.close(t, outcome, why)
		return a
	}
	return nil
}

// closeCluster ends every attempt open on cluster c: it went away with
// them.
func (p *statusParse) closeCluster(c int, t time.Time, outcome, why string) {
	for _, i := range p.open[c] {
		p.r.attempts[i].close(t, outcome, why)
	}
	delete(p.open, c)
}

// close ends the attempt at t with outcome, and why when one is given.
func (a *attempt) close(t time.Time, outcome, why string) {
	a.end, a.outcome = t, outcome
	if why != "" {
		a.message = why
	}
}

func (p *statusParse) endSession(t time.Time, line string) {
	if n := len(p.r.sessions); n > 0 && p.r.sessions[n-1].end.IsZero() {
		p.r.sessions[n-1].end, p.r.sessions[n-1].endLine = t, line
	}
}

// attemptLine reads a line about a file's attempt: assigned, done, failed.
func (p *statusParse) attemptLine(t time.Time, msg string) bool {
	if m := reAssign.FindStringSubmatch(msg); m != nil {
		c := atoi(m[3])
		if open := p.open[c]; len(open) >= 2 {
			// One running and one committing: the older one's end is
			// missing.
			p.r.attempts[open[0]].close(t, outcomeLost, "no end recorded before the next file")
			p.open[c] = open[1:]
		}
		p.r.attempts = append(p.r.attempts, attempt{
			task: atoi(m[2]), file: m[1], cluster: c, retry: atoi(m[4]), alone: m[4] != "",
			start: t, outcome: outcomeUnfinished,
		})
		p.open[c] = append(p.open[c], len(p.r.attempts)-1)
		return true
	}
	if m := reDone.FindStringSubmatch(msg); m != nil {
		a := p.closeOn(atoi(m[3]), atoi(m[2]), t, outcomeDone, "")
		if a == nil {
			a = p.r.lastAttempt(atoi(m[2]))
		}
		if a == nil {
			p.r.bad[statusLog]++
			return true
		}
		a.outcome = outcomeDone
		a.rows, a.badRows, a.users = atoi64(m[4]), atoi64(m[5]), atoi64(m[6])
		a.seconds, a.mapSeconds, a.reduceSeconds, a.skew = atof(m[7]), atof(m[8]), atof(m[9]), atof(m[10])
		a.mode = m[11]
		return true
	}
	if m := reModeLine.FindStringSubmatch(msg); m != nil {
		// It comes before the file's "done" line, its attempt still open.
		if a := p.r.lastAttempt(atoi(m[2])); a != nil {
			a.modeReason = m[4]
		}
		return true
	}
	if reBadValues.MatchString(msg) || reAlone.MatchString(msg) || reLowMemory.MatchString(msg) {
		// Said again by the lines that follow (the result, the
		// assignment) or by summary.json and timings.csv.
		return true
	}
	if m := reFailed.FindStringSubmatch(msg); m != nil {
		a := p.closeOn(atoi(m[3]), atoi(m[2]), t, outcomeFailed, m[4])
		if a == nil {
			// Killed or crashed again while alone: that attempt ended
			// with the cluster, and the file fails with it.
			if a = p.r.lastAttempt(atoi(m[2])); a != nil {
				a.message = m[4]
			}
		}
		if a == nil {
			p.r.bad[statusLog]++
			return true
		}
		a.failedAt = true
		return true
	}
	return false
}

// clusterLine reads a line about a cluster: started, killed, gone,
// crashed, stopping, a file to retry.
func (p *statusParse) clusterLine(t time.Time, msg string) bool {
	if m := reClStart.FindStringSubmatch(msg); m != nil {
		kind, text := eventStart, "started"
		if m[2] != "started" {
			kind, text = eventRestart, cmp.Or(m[3], m[4], "restarted")
		}
		p.r.events = append(p.r.events, clusterEvent{time: t, cluster: atoi(m[1]), kind: kind, pid: atoi(m[5]), cpus: atoi(m[6]), text: text})
		return true
	}
	if m := reKilled.FindStringSubmatch(msg); m != nil {
		c := atoi(m[1])
		p.r.events = append(p.r.events, clusterEvent{time: t, cluster: c, kind: eventKill, pid: atoi(m[2]), file: m[3], text: m[4]})
		p.killed[c] = len(p.r.events) - 1
		// The kill is the running file's: the last one open.
		if open := p.open[c]; len(open) > 0 {
			a := &p.r.attempts[open[len(open)-1]]
			a.message = m[4]
			if n := reKillNums.FindStringSubmatch(m[4]); n != nil {
				a.killRSSMiB, a.killTotalMiB, a.killLimMiB = atof(n[1]), atof(n[2]), atof(n[3])
			}
		}
		return true
	}
	if m := reGone.FindStringSubmatch(msg); m != nil {
		c := atoi(m[1])
		outcome := outcomeLost
		if _, ok := p.killed[c]; ok {
			outcome = outcomeKilled
			delete(p.killed, c)
		}
		p.closeCluster(c, t, outcome, "")
		return true
	}
	if m := reCrashed.FindStringSubmatch(msg); m != nil {
		c := atoi(m[1])
		p.r.events = append(p.r.events, clusterEvent{time: t, cluster: c, kind: eventCrash, pid: atoi(m[2]), file: m[4], text: "crashed (" + m[3] + ")"})
		p.closeCluster(c, t, outcomeCrashed, "cluster crashed ("+m[3]+")")
		return true
	}
	if m := reRetry.FindStringSubmatch(msg); m != nil {
		text := "will be retried alone"
		if m[4] != "" {
			text += ", " + m[4] // on its low-memory path
		}
		p.r.events = append(p.r.events, clusterEvent{time: t, cluster: atoi(m[3]), kind: eventRetry, file: m[1], text: text})
		return true
	}
	if m := reStopping.FindStringSubmatch(msg); m != nil {
		p.r.events = append(p.r.events, clusterEvent{time: t, cluster: atoi(m[1]), kind: eventRecycle, pid: atoi(m[2]), text: m[3]})
		return true
	}
	if reStopped.MatchString(msg) {
		return true
	}
	if m := reCommitEnd.FindStringSubmatch(msg); m != nil {
		// Its result was in; its output was not committed, and the file
		// is retried.
		p.r.events = append(p.r.events, clusterEvent{time: t, cluster: atoi(m[1]), kind: eventCrash, pid: atoi(m[2]), file: m[4], text: "ended (" + m[3] + ") while it committed the output"})
		return true
	}
	if m := reRelease.FindStringSubmatch(msg); m != nil {
		p.r.events = append(p.r.events, clusterEvent{time: t, cluster: atoi(m[1]), kind: eventRelease, text: "asked to give its memory back: " + m[2]})
		return true
	}
	if m := reIdleCrash.FindStringSubmatch(msg); m != nil {
		p.r.events = append(p.r.events, clusterEvent{time: t, cluster: atoi(m[1]), kind: eventCrash, pid: atoi(m[4]), text: m[2] + " while " + m[3]})
		return true
	}
	return false
}

// sessionLine reads a line about the run: its start, a resume, its end, a
// bad row sample.
func (p *statusParse) sessionLine(t time.Time, msg string) bool {
	if m := reBadSample.FindStringSubmatch(msg); m != nil {
		f := sampleFile(m[1])
		p.r.samples[f] = append(p.r.samples[f], m[1])
		return true
	}
	if m := reStart.FindStringSubmatch(msg); m != nil {
		p.closeAll(t, outcomeInterrupted, "the run was started again")
		p.endSession(t, "")
		s := session{
			start: t, job: m[1], dir: m[2], files: atoi(m[3]), toDo: atoi(m[4]), queue: m[6],
			ramLimitMiB: atof(m[7]), features: m[8], worker: m[9], resumed: p.resumed,
		}
		for _, f := range strings.Fields(m[5]) {
			s.clusters = append(s.clusters, atoi(f))
		}
		p.r.sessions = append(p.r.sessions, s)
		p.resumed = false
		return true
	}
	if reResume.MatchString(msg) {
		p.resumed = true
		return true
	}
	if m := reMeasure.FindStringSubmatch(msg); m != nil {
		if n := len(p.r.sessions); n > 0 {
			p.r.sessions[n-1].ramMeasure = m[1]
		}
		return true
	}
	switch {
	case strings.HasPrefix(msg, "finished: "):
		p.closeAll(t, outcomeInterrupted, "no end recorded")
		p.endSession(t, msg)
		return true
	case strings.HasPrefix(msg, "interrupted: "), strings.HasPrefix(msg, "stopped: "):
		p.closeAll(t, outcomeInterrupted, msg)
		p.endSession(t, msg)
		return true
	case msg == "all clusters stopped":
		return true
	case strings.HasPrefix(msg, "level="):
		// A log record (a cluster's own, a warning, a debug record), as
		// the engine's text handler writes it: kept for people to read.
		return true
	}
	return false
}

var reBadSample = lazyRE(`^bad row sample: (.*)$`)

// lazyRegexp is a regular expression compiled on its first use: every mce
// process links this package, a cluster too, and compiling the status
// lines' patterns when the package was initialised took about 1.5 ms of
// each process's start.
type lazyRegexp func() *regexp.Regexp

// lazyREs are the package's lazyRegexps, for Warm.
var lazyREs []lazyRegexp

func lazyRE(pattern string) lazyRegexp {
	re := lazyRegexp(sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) }))
	lazyREs = append(lazyREs, re)
	return re
}

func (re lazyRegexp) FindStringSubmatch(s string) []string { return re().FindStringSubmatch(s) }
func (re lazyRegexp) MatchString(s string) bool            { return re().MatchString(s) }

// sampleFile returns the file a bad row sample names ("FILE:LINE: …").
func sampleFile(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			continue
		}
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j > i+1 && j < len(s) && s[j] == ':' {
			return s[:i]
		}
	}
	return ""
}

// lastAttempt returns the latest attempt of task id, or nil.
func (r *run) lastAttempt(id int) *attempt {
	for i := len(r.attempts) - 1; i >= 0; i-- {
		if r.attempts[i].task == id {
			return &r.attempts[i]
		}
	}
	return nil
}

// knownInputs returns the inputs that plan.json and summary.json name,
// longest first, to find a file name in free text.
func (r *run) knownInputs() []string {
	seen := map[string]bool{}
	var in []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			in = append(in, s)
		}
	}
	if r.plan != nil {
		for _, t := range r.plan.Tasks {
			add(t.Input)
		}
	}
	if r.summary != nil {
		for _, t := range r.summary.Tasks {
			add(t.Input)
		}
	}
	for _, a := range r.attempts {
		add(a.file)
	}
	sort.Slice(in, func(i, j int) bool { return len(in[i]) > len(in[j]) })
	return in
}

// parseFailures reads failure.log: "STAMP[ cluster N][ file PATH][ user
// "QUOTED"]: MESSAGE", then the lines of a panic's stack, each indented by
// a tab.
func (r *run) parseFailures(b []byte) {
	known := r.knownInputs()
	for _, ln := range lines(b) {
		if strings.HasPrefix(ln, "\t") {
			if n := len(r.failures); n > 0 {
				r.failures[n-1].stack += strings.TrimPrefix(ln, "\t") + "\n"
			} else {
				r.bad[failureLog]++
			}
			continue
		}
		// "STAMP: message" has no space after the stamp.
		ts, _, _ := strings.Cut(ln, " ")
		ts = strings.TrimSuffix(ts, ":")
		t, err := time.Parse(stampLayout, ts)
		if err != nil {
			r.bad[failureLog]++
			continue
		}
		r.seen(t)
		rest := ln[len(ts):]
		f := failure{time: t, cluster: -1}
		if s, ok := strings.CutPrefix(rest, " cluster "); ok {
			i := 0
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			if i == 0 {
				r.bad[failureLog]++
				continue
			}
			f.cluster, rest = atoi(s[:i]), s[i:]
		}
		if s, ok := strings.CutPrefix(rest, " file "); ok {
			f.file, rest = cutFile(s, known)
		}
		if s, ok := strings.CutPrefix(rest, " user "); ok {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				r.bad[failureLog]++
				continue
			}
			f.user, _ = strconv.Unquote(q)
			rest = s[len(q):]
		}
		msg, ok := strings.CutPrefix(rest, ": ")
		if !ok {
			r.bad[failureLog]++
			continue
		}
		f.message = msg
		r.failures = append(r.failures, f)
	}
}

// cutFile splits "PATH[ user …]: message" after PATH, preferring a path
// the run folder names elsewhere (a path may hold ": ").
func cutFile(s string, known []string) (file, rest string) {
	for _, k := range known {
		if after, ok := strings.CutPrefix(s, k); ok && (strings.HasPrefix(after, ": ") || strings.HasPrefix(after, ` user "`)) {
			return k, after
		}
	}
	i := strings.Index(s, ": ")
	if j := strings.Index(s, ` user "`); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// csvRecords reads CSV text and returns its header and records; a record
// that cannot be read is counted as bad.
func (r *run) csvRecords(name string, b []byte) (map[string]int, [][]string) {
	cr := csv.NewReader(bytes.NewReader(b))
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = false
	var head map[string]int
	var recs [][]string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			r.bad[name]++
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				continue
			}
			break
		}
		if head == nil {
			head = map[string]int{}
			for i, h := range rec {
				head[strings.TrimSpace(h)] = i
			}
			continue
		}
		recs = append(recs, rec)
	}
	return head, recs
}

// field returns the named column of rec, "" when there is none.
func field(head map[string]int, rec []string, name string) string {
	if i, ok := head[name]; ok && i < len(rec) {
		return rec[i]
	}
	return ""
}

// parseRSS reads ram_usage.log: time,cluster,pid,file,rss_mib,total_mib.
func (r *run) parseRSS(b []byte) {
	head, recs := r.csvRecords(ramLog, b)
	for _, rec := range recs {
		t, err := time.Parse(stampLayout, field(head, rec, "time"))
		c, err2 := strconv.Atoi(field(head, rec, "cluster"))
		rss, err3 := strconv.ParseFloat(field(head, rec, "rss_mib"), 64)
		if err != nil || err2 != nil || err3 != nil || !(rss >= 0 && rss < 1<<40) {
			r.bad[ramLog]++
			continue
		}
		r.seen(t)
		r.rss = append(r.rss, rssSample{
			time: t, cluster: c, pid: atoi(field(head, rec, "pid")), file: field(head, rec, "file"),
			rssMiB: rss, totalMiB: atof(field(head, rec, "total_mib")),
		})
	}
}

// parseTimings reads timings.csv by its header's names, so that a column
// added later or missing from an older run does no harm.
func (r *run) parseTimings(b []byte) {
	head, recs := r.csvRecords(timingsCSV, b)
	for _, rec := range recs {
		g := func(name string) string { return field(head, rec, name) }
		if g("file") == "" {
			r.bad[timingsCSV]++
			continue
		}
		r.timings = append(r.timings, timing{
			file: g("file"), cluster: atoi(g("cluster")),
			bytes: atoi64(g("bytes")), rows: atoi64(g("rows")), badRows: atoi64(g("bad_rows")), users: atoi64(g("users")),
			badValues:  atoi64(g("bad_values")),
			mapSeconds: atof(g("map_seconds")), reduceSeconds: atof(g("reduce_seconds")), peakRSSMiB: atof(g("peak_rss_mib")),
			workerMaxSeconds: atof(g("worker_max_seconds")), workerMeanSecs: atof(g("worker_mean_seconds")),
			skew: atof(g("skew")), status: g("status"), mode: g("mode"), modeReason: g("mode_reason"),
		})
	}
}

// maxClusters bounds cluster numbers and counts: a larger one comes from a
// garbled line (no machine has that many CPUs), and would draw that many
// lanes.
const maxClusters = 1024

// finish drops what names an impossible cluster, closes what the logs left
// open and takes in summary.json's times.
func (r *run) finish() {
	keepA := r.attempts[:0]
	for _, a := range r.attempts {
		if a.cluster < maxClusters {
			keepA = append(keepA, a)
		} else {
			r.bad[statusLog]++
		}
	}
	r.attempts = keepA
	keepE := r.events[:0]
	for _, e := range r.events {
		if e.cluster < maxClusters && e.cpus <= 1<<16 {
			keepE = append(keepE, e)
		} else {
			r.bad[statusLog]++
		}
	}
	r.events = keepE
	keepR := r.rss[:0]
	for _, x := range r.rss {
		if x.cluster >= 0 && x.cluster < maxClusters {
			keepR = append(keepR, x)
		} else {
			r.bad[ramLog]++
		}
	}
	r.rss = keepR
	for i := range r.timings {
		if c := r.timings[i].cluster; c < 0 || c >= maxClusters {
			r.timings[i].cluster = -1
		}
	}
	for i := range r.sessions {
		s := &r.sessions[i]
		if len(s.clusters) > maxClusters {
			s.clusters = nil
			r.bad[statusLog]++
		}
		for _, c := range s.clusters {
			if c < 0 || c > 1<<16 {
				s.clusters = nil
				r.bad[statusLog]++
				break
			}
		}
	}
	if s := r.summary; s != nil && (len(s.Clusters) > maxClusters || slices.ContainsFunc(s.Clusters, func(c int) bool { return c < 0 || c > 1<<16 })) {
		s.Clusters = nil
		r.bad[summaryJSON]++
	}
	if r.summary != nil {
		r.seen(r.summary.Started)
		r.seen(r.summary.Finished)
	}
	for i := range r.attempts {
		a := &r.attempts[i]
		if a.outcome == outcomeUnfinished {
			a.end = r.last
		}
	}
	for i := range r.sessions {
		if s := &r.sessions[i]; s.end.IsZero() && i == len(r.sessions)-1 && r.summary != nil && !r.summary.Finished.Before(s.start) {
			s.end = r.summary.Finished
		}
	}
	sort.SliceStable(r.rss, func(i, j int) bool { return r.rss[i].time.Before(r.rss[j].time) })
}
