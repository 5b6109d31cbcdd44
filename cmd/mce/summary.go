package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/report"
	"github.com/mce-engine/mce/internal/termview"
)

// maxFailuresShown is how many failed files the summary names; failure.log
// has them all.
const maxFailuresShown = 3

// printSummary writes the short summary a run ends with, before its last
// line:
//
//	4 files ok, 0 failed; 289,056 rows, 0 bad
//	40.1 MB in 1.2 s, 33 MB/s; peak RSS 110 MiB
//	failed: data/b.csv:12: user "X": ... (up to three; then where the rest are)
//	report: runs/job0/report.html
func printSummary(w io.Writer, s *engine.Summary, files func(*engine.Summary) (ok, failed int)) {
	ok, failed := files(s)
	line := fmt.Sprintf("%d files ok, %d failed", ok, failed)
	if s.Skipped > 0 {
		line += fmt.Sprintf(" (%d done before --resume)", s.Skipped)
	}
	line += fmt.Sprintf("; %s rows, %s bad", thousands(s.Rows), thousands(s.BadRows))
	fmt.Fprintln(w, line)
	line = fmt.Sprintf("%s in %s", mbString(s.Bytes), wallString(s.Seconds))
	if s.Seconds > 0 && s.Bytes > 0 {
		line += fmt.Sprintf(", %.0f MB/s", float64(s.Bytes)/1e6/s.Seconds)
	}
	if s.PeakRSSBytes > 0 {
		line += fmt.Sprintf("; peak RSS %d MiB", s.PeakRSSBytes>>20)
	}
	fmt.Fprintln(w, line)
	n := 0
	for _, t := range s.Tasks {
		if t.Status != engine.TaskFailed {
			continue
		}
		if n < maxFailuresShown {
			msg := t.Input + ": failed"
			if t.Error != nil {
				msg = t.Error.Error()
			}
			fmt.Fprintln(w, "failed: "+termview.Cut(msg, 200))
		}
		n++
	}
	if n > 0 {
		more := ""
		if n > maxFailuresShown {
			more = fmt.Sprintf("%d more; ", n-maxFailuresShown)
		}
		fmt.Fprintf(w, "failures: %severy one in %s\n", more, filepath.Join(s.RunDir, engine.FailureLog))
	}
	if rep := filepath.Join(s.RunDir, report.FileName); fileExists(rep) {
		fmt.Fprintf(w, "report: %s\n", rep)
	}
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// thousands writes n with thousands separators: 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// mbString is a size in decimal units, as MB/s is: 40.1 MB, 1.00 GB.
func mbString(b int64) string {
	if b >= 1e9 {
		return fmt.Sprintf("%.2f GB", float64(b)/1e9)
	}
	return fmt.Sprintf("%.1f MB", float64(b)/1e6)
}

// wallString is a wall time: 1.2 s under a minute, else 3m05s or 2h03m.
func wallString(sec float64) string {
	switch {
	case sec < 60:
		return fmt.Sprintf("%.1f s", sec)
	case sec < 3600:
		return fmt.Sprintf("%dm%02ds", int(sec)/60, int(sec)%60)
	}
	return fmt.Sprintf("%dh%02dm", int(sec)/3600, int(sec)%3600/60)
}
