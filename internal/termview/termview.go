// Package termview draws a live view on a terminal: a block of status
// lines redrawn in place a few times a second, that log records (when
// there are any) print above. `mce run` and `mce reduce` draw one line per
// cluster and a total through it (package engine), `mce partition` one line
// per file being read (cmd/mce).
//
// It is drawn by hand rather than with a progress-bar library such as
// vbauerster/mpb v8, which was weighed for it. mpb's unit is a bar with a
// total that completes once: a cluster's line instead cycles through
// files, phases (map, reduce, write) and states (starting, idle, killed),
// and every field of it (the file, MB/s, RSS, the run's ETA from the
// scheduler's sizes) is the engine's, so mpb would have been fed whole
// lines through its decorators from its own render goroutine, taking five
// more modules for the ~100 lines below. What it does that these lines do
// not (display-width measurement of wide runes, resize handling between
// frames) costs a wrapped line at worst: every frame is cut to the
// terminal's width at draw time.
package termview

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// View is a block of lines redrawn in place on a terminal. Its methods are
// safe for concurrent use.
type View struct {
	w     io.Writer
	fd    int // the terminal's descriptor; -1 when w is not a terminal
	mu    sync.Mutex
	lines []string // drawn now
	drawn int      // lines on the screen that belong to the view
}

// New returns a View on w. Only a w that is an *os.File open on a
// terminal gets a live view (TTY reports it); on anything else Draw and
// Clear write nothing.
func New(w io.Writer) *View {
	v := &View{w: w, fd: -1}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		v.fd = int(f.Fd())
	}
	return v
}

// IsTerminal reports whether w is an *os.File open on a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && f != nil && term.IsTerminal(int(f.Fd()))
}

// TTY reports whether the view is drawn (its writer is a terminal).
func (v *View) TTY() bool { return v.fd >= 0 }

// Width returns the terminal's width in columns, 0 when unknown.
func (v *View) Width() int {
	if v.fd < 0 {
		return 0
	}
	w, _, err := term.GetSize(v.fd)
	if err != nil {
		return 0
	}
	return w
}

// Draw replaces the view's lines with lines.
func (v *View) Draw(lines []string) {
	if !v.TTY() {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lines = append(v.lines[:0], lines...)
	v.eraseLocked()
	v.redrawLocked()
}

// Clear erases the view from the screen and forgets its lines, so that
// what is written next starts where the view was.
func (v *View) Clear() {
	if !v.TTY() {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.eraseLocked()
	v.lines = nil
}

// eraseLocked moves the cursor up to the view's first line and clears
// from there to the end of the screen.
func (v *View) eraseLocked() {
	if v.drawn > 0 {
		io.WriteString(v.w, "\x1b["+strconv.Itoa(v.drawn)+"A\x1b[J")
		v.drawn = 0
	}
}

// redrawLocked writes the lines in one write, each cut to the terminal's
// width so that none wraps (a wrapped line would throw off the count of
// lines to go back up next time).
func (v *View) redrawLocked() {
	if len(v.lines) == 0 {
		return
	}
	width := v.Width()
	var b strings.Builder
	for _, ln := range v.lines {
		if width > 1 {
			ln = Cut(ln, width-1)
		}
		b.WriteString(ln)
		b.WriteString("\x1b[K\n")
	}
	io.WriteString(v.w, b.String())
	v.drawn = len(v.lines)
}

// Write writes p above the view: the view is erased, p written and the
// view drawn again below it. It is how log records share the terminal.
func (v *View) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.eraseLocked()
	n, err := v.w.Write(p)
	v.redrawLocked()
	return n, err
}

// Handler returns h wrapped so that each record it handles is written
// above the view (h must write to the view's terminal).
func (v *View) Handler(h slog.Handler) slog.Handler {
	if !v.TTY() {
		return h
	}
	return &aboveHandler{Handler: h, v: v}
}

type aboveHandler struct {
	slog.Handler
	v *View
}

func (h *aboveHandler) Handle(ctx context.Context, r slog.Record) error {
	h.v.mu.Lock()
	defer h.v.mu.Unlock()
	h.v.eraseLocked()
	err := h.Handler.Handle(ctx, r)
	h.v.redrawLocked()
	return err
}

func (h *aboveHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &aboveHandler{Handler: h.Handler.WithAttrs(as), v: h.v}
}

func (h *aboveHandler) WithGroup(name string) slog.Handler {
	return &aboveHandler{Handler: h.Handler.WithGroup(name), v: h.v}
}

// Bar draws a progress bar of width cells (brackets included) filled to
// frac (0 to 1); a negative frac draws an empty frame (progress unknown).
func Bar(frac float64, width int) string {
	inner := max(width-2, 1)
	var b strings.Builder
	b.Grow(inner*3 + 2)
	b.WriteByte('[')
	full := 0
	if frac >= 0 {
		full = int(min(frac, 1)*float64(inner) + 0.5)
	}
	for i := 0; i < inner; i++ {
		switch {
		case i < full:
			b.WriteString("█")
		case frac < 0:
			b.WriteByte(' ')
		default:
			b.WriteString("░")
		}
	}
	b.WriteByte(']')
	return b.String()
}

// Cut shortens s to at most n runes.
func Cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for k := range s {
		if i == n {
			return s[:k]
		}
		i++
	}
	return s
}

// Middle shortens s to at most n runes by replacing its middle with "…",
// so that both ends of a file name stay readable.
func Middle(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n < 3 {
		return string(r[:n])
	}
	head := (n - 1) / 2
	tail := n - 1 - head
	return string(r[:head]) + "…" + string(r[len(r)-tail:])
}

// Pad pads s with spaces on the right to n runes.
func Pad(s string, n int) string {
	if k := utf8.RuneCountInString(s); k < n {
		return s + strings.Repeat(" ", n-k)
	}
	return s
}

// PadLeft pads s with spaces on the left to n runes.
func PadLeft(s string, n int) string {
	if k := utf8.RuneCountInString(s); k < n {
		return strings.Repeat(" ", n-k) + s
	}
	return s
}

// Duration is a duration rounded for people: 9s, 1m05s, 2h03m.
func Duration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
