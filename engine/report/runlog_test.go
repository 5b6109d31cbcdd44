package report

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// The run folders under testdata/runs are real ones (paths rewritten):
//
//	ok           mce run, 6 files on --clusters 1,1, no RSS sample (shorter than --poll)
//	ramkill      --ram-limit 150MiB: a file killed, retried alone, killed again, failed
//	faults       the faulty features binary on --clusters 2,1: a panic on a user, a kill and a good retry
//	reduce       mce reduce: a phase 0 store-read task, then phase 1 merges
//	interrupted  SIGTERM one second into a run
//	resumed      the same run finished with --resume on --clusters 1
//
// and hand-made ones:
//
//	partial      only status.log, cut in the middle of a line
//	crash        crashes, a recycle, a crash while idle, odd file names and garbage lines
func runDirs(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("testdata/runs/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no run folders under testdata/runs: %v", err)
	}
	return dirs
}

// TestReadRun reads every run folder of testdata/runs and compares what it
// parsed, merged and advised with testdata/golden/<name>.txt (go test
// -run TestReadRun -update rewrites them).
func TestReadRun(t *testing.T) {
	for _, dir := range runDirs(t) {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			r, err := readRun(dir)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "golden", name+".txt"), dumpRun(r))
		})
	}
	t.Run("empty", func(t *testing.T) {
		r, err := readRun(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if len(r.missing) != len(recordedFiles) || len(r.files()) != 0 || len(r.attempts) != 0 {
			t.Errorf("empty folder: missing %v, %d files, %d attempts", r.missing, len(r.files()), len(r.attempts))
		}
		a := advise(r, r.files())
		if a.Best != nil || a.Reason == "" {
			t.Errorf("advice on an empty folder: %+v", a)
		}
	})
	t.Run("not a folder", func(t *testing.T) {
		if _, err := readRun(filepath.Join(t.TempDir(), "nope")); err == nil {
			t.Error("no error for a missing folder")
		}
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o644)
		if _, err := readRun(f); err == nil {
			t.Error("no error for a file")
		}
	})
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to rewrite it); got:\n%s", path, got)
	}
}

// dumpRun writes what readRun found as text, times in seconds from the
// run's first time stamp.
func dumpRun(r *run) string {
	var b strings.Builder
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return fmt.Sprintf("%.3f", t.Sub(r.first).Seconds())
	}
	fmt.Fprintf(&b, "missing: %v\n", r.missing)
	fmt.Fprintf(&b, "bad lines: %v\n", r.bad)
	fmt.Fprintf(&b, "span: %s s, wall %.3f s, clusters %v (%d lanes), queue %q, RAM limit %.0f MiB\n",
		at(r.last), r.wallSeconds(), r.clusterCPUs(), r.clusterCount(), r.queue(), r.ramLimitMiB())
	for _, s := range r.sessions {
		fmt.Fprintf(&b, "session %s-%s job=%q files=%d todo=%d clusters=%v queue=%s limit=%.0f features=%s resumed=%v end=%q\n",
			at(s.start), at(s.end), s.job, s.files, s.toDo, s.clusters, s.queue, s.ramLimitMiB, s.features, s.resumed, s.endLine)
		if s.ramMeasure != "" {
			fmt.Fprintf(&b, "  RAM measure %s\n", s.ramMeasure)
		}
	}
	for _, a := range r.attempts {
		fmt.Fprintf(&b, "attempt #%d %s cluster %d retry %d alone=%v %s-%s %s failed=%v", a.task, filepath.Base(a.file), a.cluster, a.retry, a.alone, at(a.start), at(a.end), a.outcome, a.failedAt)
		if a.outcome == outcomeDone {
			fmt.Fprintf(&b, " rows=%d bad=%d users=%d s=%.2f map=%.2f reduce=%.2f skew=%.2f mode=%q", a.rows, a.badRows, a.users, a.seconds, a.mapSeconds, a.reduceSeconds, a.skew, a.mode)
		}
		if a.killRSSMiB > 0 {
			fmt.Fprintf(&b, " kill=%.1f/%.1f/%.1f", a.killRSSMiB, a.killTotalMiB, a.killLimMiB)
		}
		if a.message != "" {
			fmt.Fprintf(&b, " msg=%q", a.message)
		}
		if a.modeReason != "" {
			fmt.Fprintf(&b, " why=%q", a.modeReason)
		}
		b.WriteString("\n")
	}
	for _, e := range r.events {
		fmt.Fprintf(&b, "event %s cluster %d %s pid=%d cpus=%d text=%q", at(e.time), e.cluster, e.kind, e.pid, e.cpus, e.text)
		if e.file != "" {
			fmt.Fprintf(&b, " file=%s", filepath.Base(e.file))
		}
		b.WriteString("\n")
	}
	perCluster := map[int]int{}
	for _, s := range r.rss {
		perCluster[s.cluster]++
	}
	fmt.Fprintf(&b, "rss samples: %d %v\n", len(r.rss), perCluster)
	fmt.Fprintf(&b, "timings: %d\n", len(r.timings))
	for _, f := range r.failures {
		fmt.Fprintf(&b, "failure %s cluster %d file=%q user=%q msg=%q stack lines=%d\n", at(f.time), f.cluster, f.file, f.user, f.message, strings.Count(f.stack, "\n"))
	}
	for _, s := range samples(r) {
		fmt.Fprintf(&b, "samples %s: %d\n", s.File, len(s.Samples))
	}
	for _, f := range r.files() {
		fmt.Fprintf(&b, "file #%d %s kind=%s phase=%d size=%d status=%s cluster=%d cpus=%d attempts=%d result=%v bytes=%d rows=%d bad=%d users=%d map=%.3f reduce=%.3f s=%.3f rss=%.1f skew=%.3f mode=%q msg=%q\n",
			f.id, f.name(), f.kind, f.phase, f.size, f.status, f.cluster, f.cpus, f.attempts, f.hasResult, f.bytes, f.rows, f.badRows, f.users,
			f.mapSeconds, f.reduceSeconds, f.seconds, f.peakRSSMiB, f.skew, f.mode, f.message)
	}
	st, class := status(r, r.files())
	fmt.Fprintf(&b, "status: %s (%s)\n", st, class)
	b.WriteString(advise(r, r.files()).String())
	return b.String()
}

func TestParseFailures(t *testing.T) {
	f := func(known []string, log string, want ...failure) {
		t.Helper()
		r := &run{bad: map[string]int{}}
		for _, k := range known {
			r.attempts = append(r.attempts, attempt{file: k})
		}
		r.parseFailures([]byte(log))
		if len(r.failures) != len(want) {
			t.Fatalf("%q: got %d failures %+v, want %d", log, len(r.failures), r.failures, len(want))
		}
		for i, w := range want {
			g := r.failures[i]
			g.time = time.Time{}
			if g != w {
				t.Errorf("%q: failure %d = %+v, want %+v", log, i, g, w)
			}
		}
	}
	const ts = "2026-03-02T08:00:00.000Z "
	f(nil, ts+"cluster 2 file /d/a.csv: killed over the RAM limit: x\n",
		failure{cluster: 2, file: "/d/a.csv", message: "killed over the RAM limit: x"})
	f(nil, ts+`cluster 0 file /d/a.csv user "u\"1": panic: boom`+"\n\tgoroutine 1\n\tmain.f()\n",
		failure{cluster: 0, file: "/d/a.csv", user: `u"1`, message: "panic: boom", stack: "goroutine 1\nmain.f()\n"})
	f(nil, ts+"cluster 1: cluster 1 killed by signal 9 while starting: x",
		failure{cluster: 1, message: "cluster 1 killed by signal 9 while starting: x"})
	f(nil, "2026-03-02T08:00:00.000Z: no cluster, no file", failure{cluster: -1, message: "no cluster, no file"})
	// A path with ": " in it is found when another log names it.
	f([]string{"/d/a: b.csv"}, ts+"cluster 0 file /d/a: b.csv: line 3: bad",
		failure{cluster: 0, file: "/d/a: b.csv", message: "line 3: bad"})
	f(nil, ts+"cluster 0 file /d/a: b.csv: line 3: bad",
		failure{cluster: 0, file: "/d/a", message: "b.csv: line 3: bad"})
	// Garbage is skipped, the rest kept; a -0700 time zone is read.
	f(nil, "junk\n\tstack with no failure\n2026-03-02T08:00:00.000-07:00 file x.csv: m\n",
		failure{cluster: -1, file: "x.csv", message: "m"})
	f(nil, ts+`cluster 3 file x.csv user "unterminated: m`)
}

func TestSampleFile(t *testing.T) {
	f := func(sample, want string) {
		t.Helper()
		if got := sampleFile(sample); got != want {
			t.Errorf("sampleFile(%q) = %q, want %q", sample, got, want)
		}
	}
	f("/d/a.csv:1079: wrong number of fields: 9", "/d/a.csv")
	f("/d/a:b.csv:12: x", "/d/a:b.csv")
	f("no line number: x", "")
}

func TestParseStatus_Lines(t *testing.T) {
	// Each line alone: what it becomes.
	f := func(line string, attempts, events, sessions, bad int) {
		t.Helper()
		r := &run{bad: map[string]int{}, samples: map[string][]string{}}
		r.parseStatus([]byte("2026-03-02T08:00:00.000Z " + line + "\n"))
		if len(r.attempts) != attempts || len(r.events) != events || len(r.sessions) != sessions || r.bad[statusLog] != bad {
			t.Errorf("%q: %d attempts, %d events, %d sessions, %d bad; want %d, %d, %d, %d",
				line, len(r.attempts), len(r.events), len(r.sessions), r.bad[statusLog], attempts, events, sessions, bad)
		}
	}
	f("start job j in /r/j0: 3 files (2 to do), clusters [3 2 1], queue deque, RAM limit 100 MiB, features invoice, worker /bin/mce", 0, 0, 1, 0)
	f("file /d/a b (#3) -> cluster 1", 1, 0, 0, 0)
	f("file /d/a (#3) -> cluster 1 (retry 1, alone)", 1, 0, 0, 0)
	f("cluster 0 started: pid 5, 3 CPUs, GOMEMLIMIT 50 MiB", 0, 1, 0, 0)
	f("cluster 0 restarted (recycled: RSS between files 1.0 MiB > 0.5 MiB): pid 5, 3 CPUs, GOMEMLIMIT 50 MiB", 0, 1, 0, 0)
	f("cluster 1 restarted after file /d/a (1).csv ran alone: pid 6, 1 CPUs, GOMEMLIMIT 67 MiB", 0, 1, 0, 0)
	f("cluster 1 restarted: pid 6, 1 CPUs, GOMEMLIMIT 67 MiB", 0, 1, 0, 0)
	f("cluster 0 killed (pid 5) on file /d/a: killed over the RAM limit: cluster 0 used 1.0 MiB, all clusters 2.0 MiB > limit 1.0 MiB", 0, 1, 0, 0)
	f("cluster 0 stopping (pid 5): recycled after 3 files", 0, 1, 0, 0)
	f("cluster 0 killed by signal 9 while starting (pid 5)", 0, 1, 0, 0)
	f("bad row sample: /d/a.csv:3: x", 0, 0, 0, 0)
	f("resume /r/j0: 1 of 3 files already done; removed 0 temporary files []", 0, 0, 0, 0)
	f("file /d/a (#3) done on cluster 1: 1 rows, 0 bad rows, 1 users in 0.01 s (map 0.00 s, reduce 0.00 s, skew 1.00)", 0, 0, 0, 1) // no attempt to close
	f("file /d/a (#3) will be retried alone on cluster 0", 0, 1, 0, 0)
	f("file /d/a (#3) will be retried alone on cluster 0, on its low-memory path", 0, 1, 0, 0)
	f("RAM measure: pss (shared pages counted once)", 0, 0, 0, 0)
	f("file /d/a (#3) took the stream path: one pass: mergeable feature set", 0, 0, 0, 0)
	f("file /d/a (#3): 2 bad values (amounts or dates that did not read; samples below)", 0, 0, 0, 0)
	f("file /d/a (#3) runs alone on cluster 0: the other clusters are stopped, it has the whole RAM limit (100 MiB, its GOMEMLIMIT)", 0, 0, 0, 0)
	f("2 waiting files of at least 1.5 MiB will take their low-memory path first, as file /d/a (#3) now does", 0, 0, 0, 0)
	f("cluster 1 (idle, 40.2 MiB) asked to give its memory back: all clusters 120.0 MiB > limit 100.0 MiB", 0, 1, 0, 0)
	f("cluster 1 ended (pid 7, signal: killed) while it committed file /d/a", 0, 1, 0, 0)
	f(`level=WARN msg="cluster stderr" cluster=1 pid=4242 line="x"`, 0, 0, 0, 0)
	f("something new", 0, 0, 0, 1)

	// The lines that say more than their kind: the RAM measure goes to
	// its session, the mode's reason to the file's attempt.
	r := &run{bad: map[string]int{}, samples: map[string][]string{}}
	r.parseStatus([]byte(`2026-03-02T08:00:00.000Z start job j in /r/j0: 1 files (1 to do), clusters [2], queue deque, RAM limit 100 MiB, features invoice, worker /bin/mce
2026-03-02T08:00:00.000Z RAM measure: cgroup (this process's cgroup's working set)
2026-03-02T08:00:00.001Z file /d/a (#0) -> cluster 0
2026-03-02T08:00:01.000Z file /d/a (#0) took the group path: one pass outgrew 40% of the cluster's share
2026-03-02T08:00:01.000Z file /d/a (#0) done on cluster 0: 1 rows, 0 bad rows, 1 users in 1.00 s (map 0.50 s, reduce 0.50 s, skew 1.00, group)
`))
	switch {
	case len(r.sessions) != 1 || r.sessions[0].ramMeasure != "cgroup":
		t.Errorf("sessions %+v: want one, its RAM measure cgroup", r.sessions)
	case len(r.attempts) != 1 || r.attempts[0].modeReason != "one pass outgrew 40% of the cluster's share" || r.attempts[0].outcome != outcomeDone:
		t.Errorf("attempts %+v: want one, done, with the mode's reason", r.attempts)
	case r.bad[statusLog] != 0:
		t.Errorf("%d lines not understood", r.bad[statusLog])
	}

	// A cluster takes its next file while the last one commits its
	// output: that one ends at its own "done". A third file handed out
	// while two are open means the oldest one's end is missing.
	r = &run{bad: map[string]int{}, samples: map[string][]string{}}
	r.parseStatus([]byte(`2026-03-02T08:00:00.000Z file /d/a (#0) -> cluster 0
2026-03-02T08:00:01.000Z file /d/b (#1) -> cluster 0
2026-03-02T08:00:01.100Z file /d/a (#0) done on cluster 0: 1 rows, 0 bad rows, 1 users in 1.10 s (map 0.50 s, reduce 0.50 s, skew 1.00)
2026-03-02T08:00:02.000Z file /d/c (#2) -> cluster 0
2026-03-02T08:00:03.000Z file /d/d (#3) -> cluster 0
2026-03-02T08:00:03.100Z file /d/d (#3) done on cluster 0: 1 rows, 0 bad rows, 1 users in 1.10 s (map 0.50 s, reduce 0.50 s, skew 1.00)
2026-03-02T08:00:04.000Z finished: 2 of 4 files failed in 4.0 s
`))
	ms := func(a attempt) int64 { return a.end.Sub(a.start).Milliseconds() }
	if a := r.attempts; len(a) != 4 || r.bad[statusLog] != 0 {
		t.Fatalf("%d attempts, %d bad lines", len(a), r.bad[statusLog])
	}
	for i, want := range []struct {
		outcome, message string
		ms               int64
	}{
		{outcomeDone, "", 1100},
		{outcomeLost, "no end recorded before the next file", 2000},
		{outcomeInterrupted, "no end recorded", 2000},
		{outcomeDone, "", 100},
	} {
		if a := r.attempts[i]; a.outcome != want.outcome || a.message != want.message || ms(a) != want.ms {
			t.Errorf("attempt %d: %s %q %d ms; want %s %q %d ms", i, a.outcome, a.message, ms(a), want.outcome, want.message, want.ms)
		}
	}
}
