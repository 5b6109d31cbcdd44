package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progressView shows the run's progress: on a terminal a block of lines
// redrawn in place (one per cluster and a total with ETA), elsewhere one
// plain line every so often. A nil writer shows nothing.
type progressView struct {
	w     io.Writer
	tty   bool
	every time.Duration
	mu    sync.Mutex
	lines []string // drawn now (tty)
	drawn int
}

func newProgressView(w io.Writer, every time.Duration) *progressView {
	v := &progressView{w: w, every: every}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		v.tty = true
		v.every = 250 * time.Millisecond
	}
	if w == nil {
		v.every = time.Hour
	}
	return v
}

func (v *progressView) draw(lines []string) {
	if v.w == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.tty {
		fmt.Fprintln(v.w, "progress: "+strings.Join(lines, "; "))
		return
	}
	v.eraseLocked()
	v.lines = lines
	v.redrawLocked()
}

// finish draws the last state and leaves it on the terminal.
func (v *progressView) finish(lines []string) {
	if v.w == nil || !v.tty {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.eraseLocked()
	if lines != nil {
		v.lines = lines
		v.redrawLocked()
	}
	v.lines, v.drawn = nil, 0
}

func (v *progressView) eraseLocked() {
	if v.drawn > 0 {
		fmt.Fprintf(v.w, "\x1b[%dA\x1b[J", v.drawn)
		v.drawn = 0
	}
}

func (v *progressView) redrawLocked() {
	width := 0
	if f, ok := v.w.(*os.File); ok {
		width, _, _ = term.GetSize(int(f.Fd()))
	}
	var b strings.Builder
	for _, ln := range v.lines {
		if width > 1 && len(ln) >= width {
			ln = ln[:width-1]
		}
		b.WriteString(ln)
		b.WriteString("\x1b[K\n")
	}
	io.WriteString(v.w, b.String())
	v.drawn = len(v.lines)
}

// viewHandler clears the live view around every log record so that logs
// and the view share a terminal.
type viewHandler struct {
	slog.Handler
	v *progressView
}

func (h *viewHandler) Handle(ctx context.Context, r slog.Record) error {
	h.v.mu.Lock()
	defer h.v.mu.Unlock()
	h.v.eraseLocked()
	err := h.Handler.Handle(ctx, r)
	h.v.redrawLocked()
	return err
}

func (h *viewHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &viewHandler{Handler: h.Handler.WithAttrs(as), v: h.v}
}

func (h *viewHandler) WithGroup(name string) slog.Handler {
	return &viewHandler{Handler: h.Handler.WithGroup(name), v: h.v}
}

// progressLines describes every cluster and the whole run.
func (r *runner) progressLines() []string {
	var lines []string
	var total, done int64
	var nDone, nFailed, nSkipped int
	for _, t := range r.tasks {
		switch t.status {
		case TaskSkipped:
			nSkipped++
			continue
		case TaskDone:
			nDone++
			done += t.Size
		case TaskFailed:
			nFailed++
			done += t.Size
		}
		total += t.Size
	}
	for _, c := range r.clusters {
		var b strings.Builder
		fmt.Fprintf(&b, "cluster %d (%d CPU): ", c.id, c.cpus)
		t := c.task
		if t == nil {
			b.WriteString(c.state.String())
		} else {
			p := c.prog
			fmt.Fprintf(&b, "%s", t.ShortLabel())
			if t.alone {
				b.WriteString(" (alone)")
			}
			read := min(p.DiskBytes, t.Size)
			switch p.Phase {
			case "reduce", "write":
				read = t.Size
				fmt.Fprintf(&b, " reduce: users %d/%d", p.UsersDone, p.UsersTotal)
			default:
				fmt.Fprintf(&b, " map: %s/%s", sizeString(read), sizeString(t.Size))
			}
			fmt.Fprintf(&b, ", %.0f MiB, %s", mib(c.rss), time.Since(t.start).Round(time.Second))
			done += read
		}
		lines = append(lines, b.String())
	}
	el := time.Since(r.started)
	eta := "?"
	if done > 0 && el > time.Second {
		rate := float64(done) / el.Seconds()
		eta = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	summary := fmt.Sprintf("total: %d/%d files done", nDone, len(r.tasks)-nSkipped)
	if nFailed > 0 {
		summary += fmt.Sprintf(", %d failed", nFailed)
	}
	if nSkipped > 0 {
		summary += fmt.Sprintf(" (%d done before resume)", nSkipped)
	}
	summary += fmt.Sprintf(", %.0f%% of %s, %s elapsed, ETA %s", pct, sizeString(total), el.Round(time.Second), eta)
	return append(lines, summary)
}

func sizeString(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
