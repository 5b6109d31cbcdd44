package engine

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/mce-engine/mce/engine/output"
)

// TaskStatus is where a task stands. The states are ordered: Done and
// Skipped are successes, Failed is the only failure.
type TaskStatus int

// Task states.
const (
	TaskPending TaskStatus = iota
	TaskRunning
	TaskSkipped // its output was already complete (--resume)
	TaskDone
	TaskFailed
)

var taskStatusNames = [...]string{"pending", "running", "skipped", "done", "failed"}

func (s TaskStatus) String() string {
	if s >= 0 && int(s) < len(taskStatusNames) {
		return taskStatusNames[s]
	}
	return fmt.Sprintf("TaskStatus(%d)", int(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s TaskStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *TaskStatus) UnmarshalText(b []byte) error {
	for i, n := range taskStatusNames {
		if n == string(b) {
			*s = TaskStatus(i)
			return nil
		}
	}
	return fmt.Errorf("unknown task status %q", b)
}

// Summary is the outcome of a run, also written to summary.json.
type Summary struct {
	Job           string    `json:"job"`
	RunDir        string    `json:"run_dir"`
	Feature       string    `json:"feature"`
	Started       time.Time `json:"started"`
	Finished      time.Time `json:"finished"`
	Seconds       float64   `json:"seconds"`
	Clusters      []int     `json:"clusters"`
	Queue         string    `json:"queue"`
	RAMLimitBytes int64     `json:"ram_limit_bytes"`
	RAMMeasure    string    `json:"ram_measure"`    // what the limit was compared with: rss, pss or cgroup
	PeakRSSBytes  int64     `json:"peak_rss_bytes"` // the largest total RSS of all clusters seen
	Files         int       `json:"files"`
	Done          int       `json:"done"`
	Skipped       int       `json:"skipped"` // complete before a --resume
	Failed        int       `json:"failed"`
	Bytes         int64     `json:"bytes"` // uncompressed bytes read by this run
	Rows          int64     `json:"rows"`
	BadRows       int64     `json:"bad_rows"`
	BadValues     int64     `json:"bad_values"`
	// BadValuesEmptied counts the bad values emptied in kept rows
	// (--on-bad-value empty); the other bad values' rows were left out.
	BadValuesEmptied int64         `json:"bad_values_emptied,omitempty"`
	Restarts         int           `json:"restarts"`        // clusters started again (RAM kills, crashes, recycling)
	Interrupted      bool          `json:"interrupted"`     // by the context (Ctrl-C)
	Error            string        `json:"error,omitempty"` // what stopped the run early
	Tasks            []TaskSummary `json:"tasks"`
}

// TaskSummary is one task's outcome.
type TaskSummary struct {
	ID     int    `json:"id"`
	Input  string `json:"input"`
	Output string `json:"output"`
	// Phase is the task's phase (Task.Phase): the output of a task of an
	// earlier phase is an intermediate, removed once the last phase is done.
	Phase        int        `json:"phase,omitempty"`
	Size         int64      `json:"size"`
	Status       TaskStatus `json:"status"`
	Cluster      int        `json:"cluster"`
	Attempts     int        `json:"attempts"`
	Seconds      float64    `json:"seconds"`
	PeakRSSBytes int64      `json:"peak_rss_bytes"`
	Result       *Result    `json:"result,omitempty"`
	Error        *TaskError `json:"error,omitempty"`
}

// LastLine is the line `mce run` ends with: how many files failed.
func (s *Summary) LastLine() string {
	switch {
	case s.Interrupted:
		return fmt.Sprintf("interrupted: %d of %d files done, %d failed", s.Done+s.Skipped, s.Files, s.Failed)
	case s.Error != "":
		return fmt.Sprintf("stopped by an error: %d of %d files done, %d failed", s.Done+s.Skipped, s.Files, s.Failed)
	case s.Failed == 0:
		return fmt.Sprintf("all %d files ok", s.Files) + s.badValuesNote()
	}
	return fmt.Sprintf("%d of %d files failed", s.Failed, s.Files) + s.badValuesNote()
}

func (r *runner) summary(interrupted bool) *Summary {
	s := &Summary{
		Job: r.o.JobName, RunDir: r.dir, Feature: r.o.FeatureName,
		Started: r.started, Finished: time.Now(), Seconds: time.Since(r.started).Seconds(),
		Clusters: r.o.Clusters, Queue: r.o.Queue, RAMLimitBytes: r.o.RAMLimitBytes, RAMMeasure: r.o.RAMMeasure,
		PeakRSSBytes: r.peak, Files: len(r.tasks), Restarts: r.restarts, Interrupted: interrupted,
	}
	if r.stopErr != nil {
		s.Error = r.stopErr.Error()
	}
	for _, t := range r.tasks {
		switch t.status {
		case TaskDone:
			s.Done++
		case TaskSkipped:
			s.Skipped++
		case TaskFailed:
			s.Failed++
		}
		if t.res != nil {
			s.Bytes += t.res.Bytes
			s.Rows += t.res.Rows
			s.BadRows += t.res.BadRows
			s.BadValues += t.res.BadValues
			s.BadValuesEmptied += t.res.BadValuesEmptied
		}
		s.Tasks = append(s.Tasks, TaskSummary{
			ID: t.ID, Input: t.Label(), Output: t.Output, Phase: t.Phase, Size: t.Size, Status: t.status, Cluster: t.cluster,
			Attempts: t.attempts, Seconds: t.seconds, PeakRSSBytes: t.peakRSS, Result: t.res, Error: t.err,
		})
	}
	return s
}

// writeSummary writes summary.json now, after any write queueSummary
// left in progress, which it stops: it is for the run's last summary.
func (r *runner) writeSummary(interrupted bool) error {
	r.summaries.close()
	b, err := json.MarshalIndent(r.summary(interrupted), "", "  ")
	if err != nil {
		return err
	}
	if err := output.WriteFileAtomic(filepath.Join(r.dir, SummaryJSON), append(b, '\n')); err != nil {
		r.logger.Error("write summary", "error", err)
		return err
	}
	return nil
}

// summaryEvery is how often the run's loop rewrites summary.json while
// files end: each write encodes every file's entry, and with 500 files of
// a few milliseconds each, one per file took 0.8 s of the parent's CPU.
// A summary left stale goes out at the loop's next turn after that (the
// RAM poll's at the latest), and the last one when the run ends.
const summaryEvery = 100 * time.Millisecond

// queueSummary hands the summary as it stands to the summary writer,
// which writes it beside the loop.
func (r *runner) queueSummary() {
	r.summaryAt = time.Now()
	b, err := json.MarshalIndent(r.summary(false), "", "  ")
	if err != nil {
		r.logger.Error("summary", "error", err)
		return
	}
	if r.summaries == nil {
		r.summaries = newSummaryWriter(filepath.Join(r.dir, SummaryJSON), r.logger)
	}
	r.summaries.queue(append(b, '\n'))
}

// summaryWriter writes summary.json on its own goroutine, so that the
// run's loop does not wait for the file's two fsyncs (a few ms) before it
// reads the next message: a cluster whose task took less than that (a
// reduce merge task whose output the first one wrote) would wait for
// them. A summary queued while another is being written replaces any
// queued before it: the newest is written next.
type summaryWriter struct {
	path   string
	logger *slog.Logger

	mu      sync.Mutex
	pending []byte

	wake chan struct{} // a summary is pending (capacity 1)
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newSummaryWriter(path string, logger *slog.Logger) *summaryWriter {
	w := &summaryWriter{path: path, logger: logger,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *summaryWriter) queue(b []byte) {
	w.mu.Lock()
	w.pending = b
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // already woken: it takes the newest
	}
}

func (w *summaryWriter) loop() {
	defer close(w.done)
	for {
		select {
		case <-w.wake:
			w.write()
		case <-w.stop:
			w.write() // what was queued last
			return
		}
	}
}

func (w *summaryWriter) write() {
	w.mu.Lock()
	b := w.pending
	w.pending = nil
	w.mu.Unlock()
	if b == nil {
		return
	}
	if err := output.WriteFileAtomic(w.path, b); err != nil {
		w.logger.Error("write summary", "error", err)
	}
}

// close writes what is queued and returns when the writer is done; a
// nil writer (none queued) returns at once.
func (w *summaryWriter) close() {
	if w == nil {
		return
	}
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

// badValuesNote is what LastLine adds when values did not read: a user
// who reads only the last line learns that rows were left out, or values
// emptied.
func (s *Summary) badValuesNote() string {
	const see = "see timings.csv and status.log"
	switch kept := s.BadValuesEmptied; {
	case s.BadValues == 0:
		return ""
	case kept == 0:
		return fmt.Sprintf(" (%d bad values: their rows left out, %s)", s.BadValues, see)
	case kept == s.BadValues:
		return fmt.Sprintf(" (%d bad values: emptied, their rows kept, %s)", s.BadValues, see)
	}
	return fmt.Sprintf(" (%d bad values: %d emptied in kept rows, the others' rows left out, %s)", s.BadValues, s.BadValuesEmptied, see)
}
