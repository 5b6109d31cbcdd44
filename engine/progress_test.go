package engine

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// testRunner is a runner in the middle of a run of four files on two
// clusters: one done, cluster 0 mapping the largest, cluster 1 reducing
// with its users not counted yet, one waiting.
func testRunner(now time.Time) *runner {
	tasks := []*taskRun{
		{Task: Task{ID: 0, Kind: "file", Input: "/data/invoices_2024_12.csv", Size: 400e6}, status: TaskRunning, start: now.Add(-4 * time.Second), attempts: 1},
		{Task: Task{ID: 1, Kind: "file", Input: "/data/invoices_2024_11.csv", Size: 300e6}, status: TaskPending},
		{Task: Task{ID: 2, Kind: "file", Input: "/data/invoices_2024_10.csv", Size: 200e6}, status: TaskRunning, start: now.Add(-3 * time.Second), attempts: 1},
		{Task: Task{ID: 3, Kind: "file", Input: "/data/invoices_2024_09.csv", Size: 100e6}, status: TaskDone, seconds: 2,
			res: &Result{Bytes: 100e6, MapSeconds: 1.5, ReduceSeconds: 0.5}},
	}
	r := &runner{tasks: tasks, started: now.Add(-6 * time.Second), view: newProgressView(nil, 0)}
	r.clusters = []*cluster{
		{id: 0, cpus: 2, state: csBusy, task: tasks[0], rss: 300 << 20, prog: progressMsg{Phase: "map", Bytes: 200e6, DiskBytes: 200e6}},
		{id: 1, cpus: 1, state: csBusy, task: tasks[2], rss: 150 << 20, prog: progressMsg{Phase: "reduce", Bytes: 200e6, DiskBytes: 200e6}},
	}
	return r
}

// TestRunner_liveLines checks the live view's lines: one per cluster (its
// file, phase, bar, MB/s, RSS) and the total with an ETA, aligned, none
// wider than the terminal, and no "users 0/0" before the users are counted.
func TestRunner_liveLines(t *testing.T) {
	now := time.Now()
	r := testRunner(now)
	r.view.watch(r, now)
	r.view.readRate[2] = 200e6 / 3.0 // seen while it read
	for _, width := range []int{0, 80, 100, 160} {
		lines := r.liveLines(width, now)
		if len(lines) != 3 {
			t.Fatalf("width %d: %d lines, want 3:\n%s", width, len(lines), strings.Join(lines, "\n"))
		}
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`^cluster 0  invoices_2024_12\.csv  map     \[█+░+\]  50%   50 MB/s  RSS 300 MiB$`),
			regexp.MustCompile(`^cluster 1  invoices_2024_10\.csv  reduce  \[ +\]    …   67 MB/s  RSS 150 MiB$`),
			regexp.MustCompile(`^total      1/4 files, ETA 9s +\[█+░+\]  40%   83 MB/s  RSS 450 MiB  6s so far$`),
		} {
			found := false
			for _, ln := range lines {
				found = found || want.MatchString(ln)
			}
			if !found {
				t.Errorf("width %d: no line matches %s:\n%s", width, want, strings.Join(lines, "\n"))
			}
		}
		// The bars start in the same column.
		col := strings.Index(lines[0], "[")
		for _, ln := range lines {
			if strings.Index(ln, "[") != col {
				t.Errorf("width %d: bars not aligned:\n%s", width, strings.Join(lines, "\n"))
				break
			}
			if width > 0 && utf8.RuneCountInString(ln) > width-1 && width >= 100 {
				t.Errorf("width %d: line of %d runes: %q", width, utf8.RuneCountInString(ln), ln)
			}
			if strings.Contains(ln, "users 0/0") {
				t.Errorf("users 0/0 shown: %q", ln)
			}
		}
	}

	// Once the users are counted, the reduce has its bar and counts.
	r.clusters[1].prog.UsersDone, r.clusters[1].prog.UsersTotal = 1200, 5700
	lines := r.liveLines(120, now)
	if !regexp.MustCompile(`^cluster 1 .* reduce  \[█+░+\]  21%   67 MB/s  RSS 150 MiB  users 1\.2k/5\.7k$`).MatchString(lines[1]) {
		t.Errorf("reduce with users: %q", lines[1])
	}
}

// TestRunner_progress checks how the total counts a running file: its
// reading for the share its kind's reading took (learned from the files
// done: 1.5 s of 2 s), its users reduced for the rest.
func TestRunner_progress(t *testing.T) {
	now := time.Now()
	r := testRunner(now)
	r.view.watch(r, now)
	if got := r.view.readShare("file", "map"); got != 0.75 {
		t.Errorf("read share %.2f, want 0.75 (1.5 s of 2 s)", got)
	}
	p := r.progress(now)
	// Done: 100 MB finished, half of 400 MB read (0.75*0.5), 200 MB
	// read and none of its users reduced (0.75).
	want := int64(100e6 + 400e6*0.75*0.5 + 200e6*0.75)
	if p.total != 1000e6 || p.done != want || p.nDone != 1 || p.files != 4 {
		t.Errorf("progress: total %d, done %d (want %d), %d done of %d", p.total, p.done, want, p.nDone, p.files)
	}
	if p.readBytes != 500e6 {
		t.Errorf("read %d bytes, want 500e6 (100e6 done, 200e6 and 200e6 running)", p.readBytes)
	}
	if p.eta <= 0 {
		t.Errorf("no ETA after 6 s with %d bytes done", p.done)
	}
	// Before any file of a kind is done, reading counts for half, or
	// the whole of a task that reads and reduces in one phase.
	if got := r.view.readShare("other", "map"); got != 0.5 {
		t.Errorf("read share of an unseen kind %.2f, want 0.5", got)
	}
	if got := r.view.readShare("other", "read"); got != 1 {
		t.Errorf("read share of an unseen kind in phase read %.2f, want 1", got)
	}
}

// TestRunner_plainLines checks the progress line off a terminal.
func TestRunner_plainLines(t *testing.T) {
	now := time.Now()
	r := testRunner(now)
	got := strings.Join(r.plainLines(now), "; ")
	for _, want := range []string{
		"cluster 0 (2 CPU): invoices_2024_12.csv map: 190.7 MiB/381.5 MiB, 300 MiB, 4s",
		"cluster 1 (1 CPU): invoices_2024_10.csv reduce, 150 MiB, 3s",
		"total: 1/4 files done, ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plain line lacks %q:\n%s", want, got)
		}
	}
}

// TestStatusHandler checks that every log record reaches status.log as
// well as the caller's handler, but for the engine's own records that
// status.log tells in its words, and that a cluster's records always do.
func TestStatusHandler(t *testing.T) {
	dir := t.TempDir()
	logs, err := openRunLogs(dir)
	if err != nil {
		t.Fatal(err)
	}
	var inner bytes.Buffer
	l := slog.New(newStatusHandler(slog.NewTextHandler(&inner, &slog.HandlerOptions{Level: slog.LevelWarn}), logs))
	l.Info("file done", "file", "a.csv")                      // status.log has its own line
	l.Info("reducing again", "part", "p1")                    // only in status.log (inner is at warn)
	l.Warn("send task", "cluster", 1, "error", "broken")      // both
	l.Debug("spilled run", "run", 3)                          // neither
	l.With("cluster", 0, "pid", 42).Info("file done", "x", 1) // a cluster's: status.log
	logs.close()
	b, err := os.ReadFile(filepath.Join(dir, StatusLog))
	if err != nil {
		t.Fatal(err)
	}
	status := string(b)
	for _, want := range []string{
		`Z level=INFO msg="reducing again" part=p1` + "\n",
		`Z level=WARN msg="send task" cluster=1 error=broken` + "\n",
		`Z level=INFO msg="file done" cluster=0 pid=42 x=1` + "\n",
	} {
		if !strings.Contains(status, want) {
			t.Errorf("status.log lacks %q:\n%s", want, status)
		}
	}
	if strings.Contains(status, "file=a.csv") || strings.Contains(status, "spilled") || strings.Contains(status, "time=") {
		t.Errorf("status.log has a record it should not:\n%s", status)
	}
	if got := inner.String(); !strings.Contains(got, `msg="send task"`) || strings.Contains(got, "reducing") || strings.Contains(got, "file done") {
		t.Errorf("the caller's handler got:\n%s", got)
	}
	if n := strings.Count(status, "\n"); n != 3 {
		t.Errorf("status.log has %d lines, want 3:\n%s", n, status)
	}
}

// TestRunner_committingLines: a cluster whose last file only syncs its
// output (it said "computed") shows that file and "sync" instead of an
// idle state, and the total counts the file as done but for the sync,
// with the bytes it read.
func TestRunner_committingLines(t *testing.T) {
	now := time.Now()
	r := testRunner(now)
	before := r.progress(now)
	c := r.clusters[1]
	c.prog = progressMsg{Phase: "reduce", Bytes: 200e6, DiskBytes: 200e6, UsersDone: 10, UsersTotal: 10}
	r.computed(c, &fromWorker{Type: "computed", Task: 2})
	if c.task != nil || c.committing == nil || !c.free() {
		t.Fatalf("after computed: task %v, committing %v, free %v", c.task, c.committing, c.free())
	}
	if got := strings.Join(r.plainLines(now), "; "); !strings.Contains(got, "cluster 1 (1 CPU): invoices_2024_10.csv sync") {
		t.Errorf("plain lines: %s", got)
	}
	lines := r.liveLines(120, now)
	if !regexp.MustCompile(`^cluster 1  invoices_2024_10\.csv  sync\b`).MatchString(lines[1]) {
		t.Errorf("live line: %q", lines[1])
	}
	// Before, its read counted for half of it (no file of its kind was
	// done to learn the share from), its users none: 100 of its 200 MB.
	after := r.progress(now)
	if after.done != before.done+100e6 || after.readBytes != before.readBytes {
		t.Errorf("progress: done %d → %d, read %d → %d; want done +100e6 (the half left of its work), read the same",
			before.done, after.done, before.readBytes, after.readBytes)
	}
}
