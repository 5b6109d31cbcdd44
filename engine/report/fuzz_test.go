package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzRender feeds arbitrary run folder files to the parsers, the advice
// and the page: no panic, one bar per attempt, a bounded page. Seeds are
// the run folders of testdata/runs.
func FuzzRender(f *testing.F) {
	dirs, _ := filepath.Glob("testdata/runs/*")
	for _, d := range dirs {
		read := func(name string) string {
			b, _ := os.ReadFile(filepath.Join(d, name))
			return string(b)
		}
		f.Add(read(statusLog), read(failureLog), read(ramLog), read(timingsCSV), read(summaryJSON), read(planJSON))
	}
	f.Add("2026-03-02T08:00:00.000Z cluster 1023 started: pid 1, 65536 CPUs, GOMEMLIMIT 1 MiB\n", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, status, failures, rss, timings, summ, pl string) {
		r := &run{dir: "fuzz", bad: map[string]int{}, samples: map[string][]string{}}
		if s := (&summary{}); json.Unmarshal([]byte(summ), s) == nil {
			r.summary = s
		}
		if p := (&plan{}); json.Unmarshal([]byte(pl), p) == nil {
			r.plan = p
		}
		r.parseStatus([]byte(status))
		r.parseFailures([]byte(failures))
		r.parseRSS([]byte(rss))
		r.parseTimings([]byte(timings))
		r.finish()
		var buf bytes.Buffer
		if err := render(&buf, r, time.Unix(0, 0)); err != nil {
			t.Fatalf("render: %v", err)
		}
		page := buf.String()
		if got := strings.Count(page, `<rect class="bar `); got != len(r.attempts) {
			t.Errorf("%d bars for %d attempts", got, len(r.attempts))
		}
		if limit := 200*(len(status)+len(failures)+len(rss)+len(timings)+len(summ)+len(pl)) + 1<<20; buf.Len() > limit {
			t.Errorf("a page of %d bytes from %d bytes of logs", buf.Len(), limit)
		}
		_ = advise(r, r.files()).String()
	})
}
