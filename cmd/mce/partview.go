package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v3/process"

	"github.com/mce-engine/mce/internal/termview"
)

// partitionLog is the file of the store in which `mce partition` keeps its
// log records while its live view has the terminal.
const partitionLog = "partition.log"

// partitionView is `mce partition`'s live view on a terminal: one line per
// file being read, the phase after the reads (merging runs into tables
// and ingesting them, compacting) and a total with the ETA:
//
//	reading  invoices_2024_12.csv  12 MB  2s
//	reading  invoices_2024_09.csv   8 MB  1s
//	total    1/4 files read  ETA 3s  [█████░░░░░░░░░░░]  31%  35 MB/s  RSS 212 MiB  3s elapsed
//
// Package partition reports its progress through its log records only
// ("partition plan", "reading", "read", "ingested", ...), so the view is
// drawn from them: handler wraps the handler the records go to.
type partitionView struct {
	v       *termview.View
	mu      sync.Mutex
	started time.Time
	planned int // files to ingest, from "partition plan"; 0 before it
	reading map[string]partFile
	// Files read (or failed) and their megabytes, and the megabytes of
	// every file whose reading started.
	nRead, nFailed  int
	readMB, knownMB float64
	seen            int
	rows            int64
	// phase is what runs after the reads (merging, compacting), its
	// label the first column.
	phaseLabel, phase string
	phaseSince        time.Time
	proc              *process.Process
	stop, done        chan struct{}
}

type partFile struct {
	mb    float64
	since time.Time
}

// newPartitionView starts drawing on v (a terminal) four times a second
// until close.
func newPartitionView(v *termview.View) *partitionView {
	pv := &partitionView{v: v, started: time.Now(), reading: map[string]partFile{},
		stop: make(chan struct{}), done: make(chan struct{})}
	pv.proc, _ = process.NewProcess(int32(os.Getpid()))
	go func() {
		defer close(pv.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-pv.stop:
				return
			case <-tick.C:
				pv.v.Draw(pv.lines(pv.v.Width(), time.Now()))
			}
		}
	}()
	return pv
}

// close stops the view and erases it.
func (pv *partitionView) close() {
	close(pv.stop)
	<-pv.done
	pv.v.Clear()
}

// handler returns a handler that shows next's records in the view and
// hands them on to next.
func (pv *partitionView) handler(next slog.Handler) slog.Handler {
	return &watchHandler{next: next, see: pv.see}
}

// see takes in one record of package partition.
func (pv *partitionView) see(r slog.Record) {
	attrs := map[string]slog.Value{}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.Resolve()
		return true
	})
	file := attrs["file"].String()
	pv.mu.Lock()
	defer pv.mu.Unlock()
	switch r.Message {
	case "partition plan":
		pv.planned = int(num(attrs["files"]))
	case "reading":
		mb := num(attrs["mb"])
		pv.reading[file] = partFile{mb: mb, since: r.Time}
		pv.knownMB += mb
		pv.seen++
	case "read":
		pv.readMB += pv.reading[file].mb
		delete(pv.reading, file)
		pv.nRead++
		pv.rows += int64(num(attrs["rows"]))
	case "file failed; it is not ingested":
		pv.readMB += pv.reading[file].mb
		delete(pv.reading, file)
		pv.nFailed++
	case "compacting the store":
		pv.phaseLabel, pv.phase, pv.phaseSince = "compacting", "the store", r.Time
	case "ingested", "compacted", "partition done":
		pv.phase = ""
	}
	if pv.planned > 0 && pv.nRead+pv.nFailed == pv.planned && pv.phase == "" && r.Message == "read" {
		pv.phaseLabel, pv.phase, pv.phaseSince = "merging", thousands(pv.rows)+" rows into tables, then ingesting them", r.Time
	}
}

// num reads a numeric attribute, 0 when absent.
func num(v slog.Value) float64 {
	switch v.Kind() {
	case slog.KindInt64:
		return float64(v.Int64())
	case slog.KindUint64:
		return float64(v.Uint64())
	case slog.KindFloat64:
		return v.Float64()
	}
	return 0
}

// lines are the view's lines for a terminal of width columns (0: unknown).
func (pv *partitionView) lines(width int, now time.Time) []string {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	type row struct{ label, name, size, tail string }
	var rows []row
	names := make([]string, 0, len(pv.reading))
	for f := range pv.reading {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		pf := pv.reading[f]
		rows = append(rows, row{"reading", filepath.Base(f), fmt.Sprintf("%.0f MB", pf.mb), termview.Duration(now.Sub(pf.since))})
	}
	if pv.phase != "" {
		rows = append(rows, row{label: pv.phaseLabel, name: pv.phase, tail: termview.Duration(now.Sub(pv.phaseSince))})
	}
	if len(rows) == 0 && pv.planned == 0 {
		rows = append(rows, row{label: "opening", name: "the store and the input files"})
	}
	// The total: megabytes of the files read against those of all the
	// planned files, the ones not started yet guessed at the average.
	total := pv.knownMB
	if pv.seen > 0 && pv.planned > pv.seen {
		total += pv.knownMB / float64(pv.seen) * float64(pv.planned-pv.seen)
	}
	frac := 0.0
	if total > 0 {
		frac = pv.readMB / total
	}
	el := now.Sub(pv.started)
	files := fmt.Sprintf("%d/%d files read", pv.nRead, pv.planned)
	if pv.nFailed > 0 {
		files += fmt.Sprintf(", %d failed", pv.nFailed)
	}
	eta, rate := "ETA ?", ""
	readTime := el
	if pv.phase != "" {
		readTime = pv.phaseSince.Sub(pv.started) // the rate of the reads, once they are over
	}
	if pv.readMB > 0 && readTime > time.Second {
		mbps := pv.readMB / readTime.Seconds()
		rate = fmt.Sprintf("%.0f MB/s", mbps)
		if pv.phase == "" {
			eta = "ETA " + termview.Duration(time.Duration((total-pv.readMB)/mbps*float64(time.Second)))
		} else {
			eta = ""
		}
	}
	rss := ""
	if pv.proc != nil {
		if mi, err := pv.proc.MemoryInfo(); err == nil {
			rss = fmt.Sprintf("RSS %d MiB", mi.RSS>>20)
		}
	}
	wl, wn := len("compacting"), 0
	for _, r := range rows {
		wl = max(wl, len(r.label))
		wn = max(wn, min(len([]rune(r.name)), 48))
	}
	out := make([]string, 0, len(rows)+1)
	for _, r := range rows {
		ln := termview.Pad(r.label, wl+2) + termview.Pad(termview.Middle(r.name, wn), wn+2) +
			termview.PadLeft(r.size, 6) + "  " + r.tail
		out = append(out, strings.TrimRight(ln, " "))
	}
	// The total's columns have fixed widths, so that it does not shift
	// as its numbers change.
	files = termview.Pad(files, len("100/100 files read"))
	eta = termview.Pad(eta, len("ETA 1m05s"))
	rate = termview.PadLeft(rate, len("999 MB/s"))
	rss = termview.PadLeft(rss, len("RSS 999 MiB"))
	fixed := wl + 2 + len(files) + 2 + len(eta) + 2 + 1 + 4 + 2 + len(rate) + 2 + len(rss) + 2 + len("1m05s elapsed")
	bar := 20
	if width > 0 {
		bar = min(max(width-1-fixed, 10), 30)
	}
	tot := termview.Pad("total", wl+2) + files + "  " + eta + "  " + termview.Bar(frac, bar) +
		termview.PadLeft(fmt.Sprintf("%.0f%%", 100*min(frac, 1)), 5) + "  " + rate + "  " + rss + "  " + termview.Duration(el) + " elapsed"
	return append(out, tot)
}

// watchHandler shows every record of Info and above to see, then hands
// it to next if next takes it.
type watchHandler struct {
	next slog.Handler
	see  func(slog.Record)
}

func (h *watchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *watchHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		h.see(r)
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

// WithAttrs keeps the view's attributes out of its sight: partition's
// records carry theirs on the record.
func (h *watchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &watchHandler{next: h.next.WithAttrs(as), see: h.see}
}

func (h *watchHandler) WithGroup(name string) slog.Handler {
	return &watchHandler{next: h.next.WithGroup(name), see: func(slog.Record) {}}
}

// storeLog is the store's partition.log. A store is only created in an
// empty folder, so records are kept in memory until the store exists (its
// MANIFEST.json is written), then appended to the file.
type storeLog struct {
	dir string
	mu  sync.Mutex
	f   *os.File
	buf bytes.Buffer
}

func (l *storeLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		l.openLocked()
	}
	if l.f != nil {
		return l.f.Write(p)
	}
	return l.buf.Write(p)
}

func (l *storeLog) openLocked() {
	// NB: MANIFEST.json is package store's manifest, the last file it
	// writes when it creates a store.
	if _, err := os.Stat(filepath.Join(l.dir, "MANIFEST.json")); err != nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(l.dir, partitionLog), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	f.Write(l.buf.Bytes())
	l.buf.Reset()
	l.f = f
}

// close writes what is still held to the file if the store exists now and
// returns the path it wrote to; else it returns "" and the records, which
// went nowhere (the run failed before the store was made).
func (l *storeLog) close() (path string, unwritten []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		l.openLocked()
	}
	if l.f == nil {
		return "", l.buf.Bytes()
	}
	l.f.Close()
	return l.f.Name(), nil
}
