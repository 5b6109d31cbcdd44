package engine

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/mce-engine/mce/internal/bytesize"
	"github.com/mce-engine/mce/internal/termview"
)

// progressView shows the run's progress. On a terminal it is a live view
// (package termview): one line per cluster (its file, phase, progress bar,
// MB/s and RSS) and a total with the ETA, redrawn in place four times a
// second and erased at the end, so that what the command prints next (its
// summary) takes its place. Elsewhere it is one plain line every
// Options.ProgressEvery. A nil writer shows nothing.
type progressView struct {
	w     io.Writer
	tty   *termview.View // nil off a terminal
	every time.Duration

	// What the view learns as it watches, used by the run loop's
	// goroutine only. A running task's share of its work is estimated
	// from the tasks of its kind that finished: how much of their time
	// went to reading their input (phases other than reduce and write)
	// and how much to what comes after.
	seen      map[int]bool      // task IDs seen running
	pastRead  map[int]time.Time // task ID -> when it was first seen past its reading
	readRate  map[int]float64   // task ID -> its reading's bytes per second
	learned   map[int]bool      // finished task IDs already counted
	kindRead  map[string]float64
	kindTotal map[string]float64
}

func newProgressView(w io.Writer, every time.Duration) *progressView {
	v := &progressView{w: w, every: every,
		seen: map[int]bool{}, pastRead: map[int]time.Time{}, readRate: map[int]float64{}, learned: map[int]bool{},
		kindRead: map[string]float64{}, kindTotal: map[string]float64{}}
	if w == nil {
		v.every = time.Hour
		return v
	}
	if tv := termview.New(w); tv.TTY() {
		v.tty = tv
		v.every = 250 * time.Millisecond
	}
	return v
}

// handler returns h wrapped so that its records print above the live
// view; h itself off a terminal.
func (v *progressView) handler(h slog.Handler) slog.Handler {
	if v.tty == nil {
		return h
	}
	return v.tty.Handler(h)
}

func (v *progressView) draw(lines []string) {
	switch {
	case v.w == nil:
	case v.tty != nil:
		v.tty.Draw(lines)
	default:
		fmt.Fprintln(v.w, "progress: "+strings.Join(lines, "; "))
	}
}

// finish erases the live view.
func (v *progressView) finish() {
	if v.tty != nil {
		v.tty.Clear()
	}
}

// progressLines describes every cluster and the whole run: the live
// view's lines on a terminal, else the plain ones.
func (r *runner) progressLines() []string {
	now := time.Now()
	r.view.watch(r, now)
	if r.view.tty != nil {
		return r.liveLines(r.view.tty.Width(), now)
	}
	return r.plainLines(now)
}

// postRead reports whether a phase comes after a task's reading of its
// input: the reduce of `mce run`, the write (merge) of `mce reduce`.
func postRead(phase string) bool { return phase == "reduce" || phase == "write" }

// watch notes what the running tasks do and learns from the finished ones.
func (v *progressView) watch(r *runner, now time.Time) {
	for _, c := range r.clusters {
		t := c.task
		if t == nil {
			continue
		}
		v.seen[t.ID] = true
		if postRead(c.prog.Phase) {
			if _, ok := v.pastRead[t.ID]; !ok {
				v.pastRead[t.ID] = now
			}
			continue
		}
		if read := readBytes(c.prog); read > 0 && now.Sub(t.start) > 200*time.Millisecond {
			v.readRate[t.ID] = float64(read) / now.Sub(t.start).Seconds()
		}
	}
	for _, t := range r.tasks {
		if t.status != TaskDone || v.learned[t.ID] {
			continue
		}
		v.learned[t.ID] = true
		var read, total float64
		switch at, past := v.pastRead[t.ID]; {
		case t.res != nil && t.res.MapSeconds > 0:
			read, total = t.res.MapSeconds, t.res.MapSeconds+t.res.ReduceSeconds
		case past:
			read, total = at.Sub(t.start).Seconds(), t.seconds
		case v.seen[t.ID]:
			read, total = t.seconds, t.seconds // it only read
		default:
			continue // too quick to be seen
		}
		v.kindRead[t.Kind] += max(min(read, total), 0)
		v.kindTotal[t.Kind] += total
	}
}

// readShare is the share of a task's time that its reading takes, as
// learned from the finished tasks of its kind. Before any, it is half, or
// all of it for a task in phase "read": `mce reduce` reads the store and
// reduces the users as it goes, in that one phase.
func (v *progressView) readShare(kind, phase string) float64 {
	switch {
	case v.kindTotal[kind] > 0:
		return v.kindRead[kind] / v.kindTotal[kind]
	case phase == "read":
		return 1
	}
	return 0.5
}

// readBytes is what a task has read: its uncompressed bytes, or its
// on-disk bytes when the handler counts only those.
func readBytes(p progressMsg) int64 {
	if p.Bytes > 0 {
		return p.Bytes
	}
	return p.DiskBytes
}

// runProgress is how far the run is, in the tasks' sizes.
type runProgress struct {
	total, done              int64 // bytes of the tasks to do, and of their work done
	files                    int   // tasks to do in this run (not those done before a resume)
	nDone, nFailed, nSkipped int
	elapsed                  time.Duration
	eta                      time.Duration // -1: not known yet
	readBytes                int64         // read by this run's tasks (uncompressed where known)
	bytesPerSec              float64       // readBytes per second
	rssBytes                 int64         // of all clusters, at the last poll
}

// progress adds up the tasks: a finished task counts its whole size, and
// so does one that only syncs its output (cluster.committing), a running
// one the share of its work done (taskDone).
func (r *runner) progress(now time.Time) runProgress {
	var p runProgress
	for _, t := range r.tasks {
		switch t.status {
		case TaskSkipped:
			p.nSkipped++
			continue
		case TaskDone:
			p.nDone++
			p.done += t.Size
		case TaskFailed:
			p.nFailed++
			p.done += t.Size
		}
		if t.status != TaskRunning && t.res != nil {
			p.readBytes += t.res.Bytes
		}
		p.total += t.Size
	}
	p.files = len(r.tasks) - p.nSkipped
	for _, c := range r.clusters {
		p.rssBytes += c.rss
		if t := c.task; t != nil {
			p.done += int64(float64(t.Size) * r.view.taskDone(t, c.prog))
			p.readBytes += readBytes(c.prog)
		}
		if t := c.committing; t != nil { // computed: only its output's sync is left
			p.done += t.Size
			p.readBytes += readBytes(c.committedProg)
		}
	}
	p.elapsed = now.Sub(r.started)
	p.eta = -1
	if p.elapsed > time.Second {
		p.bytesPerSec = float64(p.readBytes) / p.elapsed.Seconds()
		if p.done > 0 {
			p.eta = time.Duration(float64(p.total-p.done) / (float64(p.done) / p.elapsed.Seconds()) * float64(time.Second))
		}
	}
	return p
}

// taskDone is the share of a running task's work behind it: its reading
// counts for the share its kind's reading takes, the users reduced or
// written for the rest.
func (v *progressView) taskDone(t *taskRun, p progressMsg) float64 {
	share := v.readShare(t.Kind, p.Phase)
	if !postRead(p.Phase) {
		if t.Size <= 0 {
			return 0
		}
		return share * min(float64(p.DiskBytes)/float64(t.Size), 1)
	}
	f := 0.0
	if p.UsersTotal > 0 {
		f = min(float64(p.UsersDone)/float64(p.UsersTotal), 1)
	}
	return share + (1-share)*f
}

// A bar's fraction in liveLines that is not one: unknownBar draws an
// empty frame (a phase whose end is not known), noBar leaves its place
// blank (a cluster without a task).
const (
	unknownBar = -1.0
	noBar      = -2.0
)

// Fixed widths of the live view's columns, so that the lines do not
// shift as numbers grow; tailRoom is kept for the text after them.
const (
	wPhase   = 6  // "reduce"
	wPct     = 4  // "100%"
	wRate    = 8  // "999 MB/s"
	wRSS     = 11 // "RSS 999 MiB"
	tailRoom = 15 // "users 1.3k/5.7k"
	maxName  = 28
)

// liveLines are the live view's lines for a terminal of width columns (0:
// unknown), in columns: the cluster, its file, its phase, a bar of the
// phase's progress (bytes read, then users reduced), MB/s of the file's
// reading, the cluster's RSS; and the total (files, a bar of the run's
// work by the files' sizes, MB/s read, all clusters' RSS, the ETA):
//
//	cluster 0  invoices_2024_12.csv  map     [████████░░░░░░░░]  52%   85 MB/s  RSS 165 MiB
//	cluster 1  invoices_2024_09.csv  reduce  [███░░░░░░░░░░░░░]  20%   60 MB/s  RSS 120 MiB  users 1.2k/5.7k
//	total      1/4 files, ETA 6s             [██████░░░░░░░░░░]  38%  141 MB/s  RSS 285 MiB  12s so far
func (r *runner) liveLines(width int, now time.Time) []string {
	type row struct {
		label, name, phase, rate, rss, tail string
		frac                                float64
	}
	var rows []row
	longest := 0
	for _, t := range r.tasks {
		longest = max(longest, len([]rune(t.ShortLabel())))
	}
	wName := min(max(longest, len("starting")), maxName)
	for _, c := range r.clusters {
		rw := row{label: fmt.Sprintf("cluster %d", c.id), frac: noBar}
		t := c.task
		if t == nil {
			rw.name = c.state.String()
			if ct := c.committing; ct != nil {
				rw.name, rw.phase = ct.ShortLabel(), "sync" // its output, before the next file
			}
			if c.proc != nil {
				rw.rss = rssString(c.rss)
			}
			rows = append(rows, rw)
			continue
		}
		p := c.prog
		rw.name, rw.phase, rw.rss = t.ShortLabel(), p.Phase, rssString(c.rss)
		if rw.phase == "" {
			rw.phase = "start"
		}
		if rate := r.view.readRate[t.ID]; rate > 0 {
			rw.rate = mbpsString(rate)
		}
		switch {
		case postRead(p.Phase) && p.UsersTotal > 0:
			rw.frac = float64(p.UsersDone) / float64(p.UsersTotal)
			rw.tail = fmt.Sprintf("users %s/%s", countString(p.UsersDone), countString(p.UsersTotal))
		case postRead(p.Phase):
			rw.frac = unknownBar
			if p.UsersDone > 0 {
				rw.tail = "users " + countString(p.UsersDone)
			}
		case t.Size > 0:
			rw.frac = min(float64(p.DiskBytes)/float64(t.Size), 1)
		default:
			rw.frac = unknownBar
		}
		if t.alone {
			rw.tail = strings.TrimSpace(rw.tail + " alone")
		}
		if t.attempts > 1 {
			rw.tail = strings.TrimSpace(rw.tail + fmt.Sprintf(" retry %d", t.attempts-1))
		}
		rows = append(rows, rw)
	}
	pr := r.progress(now)
	tot := row{label: "total", name: fmt.Sprintf("%d/%d files", pr.nDone+pr.nFailed, pr.files), rss: rssString(pr.rssBytes), frac: 1}
	if pr.nFailed > 0 {
		tot.name += fmt.Sprintf(", %d failed", pr.nFailed)
	}
	if pr.total > 0 {
		tot.frac = float64(pr.done) / float64(pr.total)
	}
	if pr.bytesPerSec > 0 {
		tot.rate = mbpsString(pr.bytesPerSec)
	}
	if pr.eta >= 0 {
		tot.name += ", ETA " + termview.Duration(pr.eta)
	} else {
		tot.name += ", ETA ?"
	}
	tot.tail = termview.Duration(pr.elapsed) + " so far"
	if pr.nSkipped > 0 {
		tot.tail += fmt.Sprintf(", %d done before resume", pr.nSkipped)
	}
	rows = append(rows, tot)

	wLabel := 0
	for _, rw := range rows {
		wLabel = max(wLabel, len(rw.label))
		if rw.label == "total" {
			wName = max(wName, len(rw.name))
		}
	}
	bar := 20
	if width > 0 {
		fixed := wLabel + 2 + wName + 2 + wPhase + 2 + 1 + wPct + 2 + wRate + 2 + wRSS + 2 + tailRoom
		bar = min(max(width-1-fixed, 10), 30)
	}
	lines := make([]string, len(rows))
	for i, rw := range rows {
		var b strings.Builder
		b.WriteString(termview.Pad(rw.label, wLabel+2))
		b.WriteString(termview.Pad(termview.Middle(rw.name, wName), wName+2))
		b.WriteString(termview.Pad(rw.phase, wPhase+2))
		switch {
		case rw.frac >= 0:
			b.WriteString(termview.Bar(rw.frac, bar))
			b.WriteString(termview.PadLeft(fmt.Sprintf("%.0f%%", 100*min(rw.frac, 1)), 1+wPct))
		case rw.frac == unknownBar:
			b.WriteString(termview.Bar(-1, bar))
			b.WriteString(termview.PadLeft("…", 1+wPct))
		default:
			b.WriteString(strings.Repeat(" ", bar+1+wPct))
		}
		b.WriteString("  " + termview.PadLeft(rw.rate, wRate))
		b.WriteString("  " + termview.PadLeft(rw.rss, wRSS))
		if rw.tail != "" {
			b.WriteString("  " + rw.tail)
		}
		lines[i] = strings.TrimRight(b.String(), " ")
	}
	return lines
}

// plainLines are the progress lines off a terminal, joined into one.
func (r *runner) plainLines(now time.Time) []string {
	var lines []string
	for _, c := range r.clusters {
		var b strings.Builder
		fmt.Fprintf(&b, "cluster %d (%d CPU): ", c.id, c.cpus)
		t := c.task
		switch {
		case t == nil && c.committing != nil:
			fmt.Fprintf(&b, "%s sync", c.committing.ShortLabel())
		case t == nil:
			b.WriteString(c.state.String())
		default:
			p := c.prog
			b.WriteString(t.ShortLabel())
			if t.alone {
				b.WriteString(" (alone)")
			}
			switch p.Phase {
			case "reduce", "write":
				if p.UsersTotal > 0 {
					fmt.Fprintf(&b, " %s: users %d/%d", p.Phase, p.UsersDone, p.UsersTotal)
				} else {
					fmt.Fprintf(&b, " %s", p.Phase)
				}
			default:
				fmt.Fprintf(&b, " map: %s/%s", bytesize.Format(min(p.DiskBytes, t.Size)), bytesize.Format(t.Size))
			}
			fmt.Fprintf(&b, ", %.0f MiB, %s", mib(c.rss), now.Sub(t.start).Round(time.Second))
		}
		lines = append(lines, b.String())
	}
	pr := r.progress(now)
	eta := "?"
	if pr.eta >= 0 {
		eta = pr.eta.Round(time.Second).String()
	}
	pct := 100.0
	if pr.total > 0 {
		pct = 100 * float64(pr.done) / float64(pr.total)
	}
	summary := fmt.Sprintf("total: %d/%d files done", pr.nDone, pr.files)
	if pr.nFailed > 0 {
		summary += fmt.Sprintf(", %d failed", pr.nFailed)
	}
	if pr.nSkipped > 0 {
		summary += fmt.Sprintf(" (%d done before resume)", pr.nSkipped)
	}
	summary += fmt.Sprintf(", %.0f%% of %s, %s elapsed, ETA %s", pct, bytesize.Format(pr.total), pr.elapsed.Round(time.Second), eta)
	return append(lines, summary)
}

// rssString is a resident set for the live view, "RSS 165 MiB".
func rssString(b int64) string {
	if b <= 0 {
		return ""
	}
	if b >= 10<<30 {
		return fmt.Sprintf("RSS %.1f GiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("RSS %.0f MiB", mib(b))
}

// mbpsString is a rate in decimal megabytes per second, as the summary
// and the benchmark give it.
func mbpsString(bytesPerSec float64) string {
	return fmt.Sprintf("%.0f MB/s", bytesPerSec/1e6)
}

// countString is a count in few characters: 950, 12.3k, 4.1M.
func countString(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
