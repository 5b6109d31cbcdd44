package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The terminal tests run the built mce in a real terminal, a tmux pane,
// and read the screen with `tmux capture-pane` while it runs and after:
// what a user sees. CI installs tmux (.ci/run); elsewhere they skip
// without it.

// pane is a detached tmux session of its own server (its own socket, no
// user configuration) running one shell command in a terminal of a fixed
// size.
type pane struct {
	t      *testing.T
	socket string
}

// startPane runs command (a shell command line) in dir in a new tmux pane
// of cols x rows; the pane stays after the command ends, which prints
// "[exit N]" last.
func startPane(t *testing.T, dir string, cols, rows int, command string) *pane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is not installed: CI must install it (.ci/run does: apt-get install -y tmux)")
		}
		t.Skip("tmux is not installed (apt-get install -y tmux); the terminal tests need a real terminal")
	}
	p := &pane{t: t, socket: fmt.Sprintf("mce-test-%d-%d", os.Getpid(), time.Now().UnixNano())}
	script := fmt.Sprintf("cd %s && %s; echo \"[exit $?]\"; sleep 600", shellQuote(dir), command)
	p.tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", strconv.Itoa(cols), "-y", strconv.Itoa(rows), script)
	t.Cleanup(func() { exec.Command("tmux", "-L", p.socket, "kill-server").Run() })
	return p
}

func (p *pane) tmux(args ...string) string {
	p.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", p.socket}, args...)...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen returns what the pane shows now, without its trailing blank
// lines.
func (p *pane) screen() string {
	p.t.Helper()
	return strings.TrimRight(p.tmux("capture-pane", "-p", "-t", "t"), "\n ") + "\n"
}

// waitExit waits until the command has ended and returns the screen.
func (p *pane) waitExit(timeout time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := p.screen()
		if strings.Contains(s, "[exit ") {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the command did not end within %s; the screen:\n%s", timeout, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// logLineRE matches a log record as slog's handlers write it.
var logLineRE = regexp.MustCompile(`(^|\s)(time=|level=(DEBUG|INFO|WARN|ERROR)|msg=)|"level":"`)

// checkNoLogLines fails on any log record on the screen.
func checkNoLogLines(t *testing.T, what, screen string) {
	t.Helper()
	for _, ln := range strings.Split(screen, "\n") {
		if logLineRE.MatchString(ln) {
			t.Errorf("%s: a log line on the terminal: %q\nthe screen:\n%s", what, ln, screen)
			return
		}
	}
}

// throttle slows the n cluster processes of the run in runDir twenty times by
// stopping them (SIGSTOP) for 95 ms of every 100 ms, so that a run of a
// second on generated data lasts long enough to be watched; the returned
// function lets them go at full speed again. The parent, which draws the
// view, is not stopped.
func throttle(t *testing.T, runDir string, n int) (stop func()) {
	t.Helper()
	pidRE := regexp.MustCompile(`cluster \d+ started: pid (\d+)`)
	var pids []int
	for deadline := time.Now().Add(30 * time.Second); len(pids) < n; time.Sleep(2 * time.Millisecond) {
		pids = pids[:0]
		b, _ := os.ReadFile(filepath.Join(runDir, "status.log"))
		for _, m := range pidRE.FindAllStringSubmatch(string(b), -1) {
			pid, _ := strconv.Atoi(m[1])
			pids = append(pids, pid)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cluster started in %s", runDir)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer signalAll(pids, syscall.SIGCONT)
		for ctx.Err() == nil {
			signalAll(pids, syscall.SIGSTOP)
			select {
			case <-ctx.Done():
			case <-time.After(95 * time.Millisecond):
			}
			signalAll(pids, syscall.SIGCONT)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

func signalAll(pids []int, sig syscall.Signal) {
	for _, pid := range pids {
		syscall.Kill(pid, sig)
	}
}

var (
	clusterLineRE = regexp.MustCompile(`(?m)^cluster 0 +invoices_\S+\.csv +(start|open|map|reduce) +\[[█░ ]+\] +(\d+%|…)`)
	totalLineRE   = regexp.MustCompile(`(?m)^total +\d+/4 files, ETA (\?|\d+[smh]\S*) +\[[█░]+\] +\d+%`)
	summaryRE     = regexp.MustCompile(`(?m)^4 files ok, 0 failed; [\d,]+ rows, 0 bad\n[\d.]+ MB in [\d.]+ s, \d+ MB/s; peak RSS \d+ MiB$`)
)

// TestTerminal_run runs `mce run` on generated data in a real terminal:
// while it runs the screen holds the live view (one line per cluster with
// its file, phase and bar, and the total with an ETA), at the end the
// run's summary (files, rows, MB/s, the report's path, the last line), and
// never a log line. With -update it saves the screens as
// docs/terminal.txt, which the README shows.
func TestTerminal_run(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := mce(t, dir, nil, "gen", "--out", "data", "--files", "4", "--size", "120MB"); code != 0 {
		t.Fatalf("gen: exit %d\n%s", code, stderr)
	}
	p := startPane(t, dir, 100, 30, shellQuote(mceBin)+" run data --out runs --clusters 1,1 --poll 100ms")
	runDir := filepath.Join(dir, "runs", "job0")
	stop := throttle(t, runDir, 2)

	// Watch the screen while the run goes on; keep the frames that show
	// the view.
	var frames []string
	var screen string
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(150 * time.Millisecond) {
		screen = p.screen()
		if strings.Contains(screen, "[exit ") {
			break
		}
		checkNoLogLines(t, "while running", screen)
		if totalLineRE.MatchString(screen) {
			frames = append(frames, screen)
			if len(frames) == 1 {
				// The report's line is printed when report.html is
				// there at the end (engine/report writes it).
				if err := os.WriteFile(filepath.Join(runDir, "report.html"), []byte("<html></html>\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		if len(frames) >= 12 {
			stop() // seen enough: let it finish at full speed
		}
		if time.Now().After(deadline) {
			t.Fatalf("no end in time; the screen:\n%s", screen)
		}
	}
	if len(frames) < 3 {
		t.Fatalf("the live view was seen %d times while the run went on (want 3 or more); the last screen:\n%s", len(frames), screen)
	}
	// A frame in which cluster 0 is at work on a file; for the docs, the
	// last of those that show progress, the RSS and the ETA.
	var during string
	nice := regexp.MustCompile(`(?m)^cluster 0 .*(map|reduce) +\[█.*RSS \d+ MiB`)
	for _, f := range frames {
		switch {
		case !clusterLineRE.MatchString(f):
		case during == "", nice.MatchString(f) && !strings.Contains(f, "ETA ?"):
			during = f
		}
	}
	if during == "" {
		t.Errorf("no frame shows cluster 0 working on a file; the frames:\n%s", strings.Join(frames, "\n----\n"))
	}
	for _, f := range frames {
		if !strings.Contains(f, "cluster 1 ") {
			t.Errorf("a frame without cluster 1's line:\n%s", f)
			break
		}
		if strings.Contains(f, "users 0/0") {
			t.Errorf("a frame shows users 0/0:\n%s", f)
			break
		}
	}

	// At the end: the view is gone, the summary is there, no log lines.
	checkNoLogLines(t, "at the end", screen)
	if strings.Contains(screen, "█") || strings.Contains(screen, "cluster 0 ") {
		t.Errorf("the live view is left on the screen at the end:\n%s", screen)
	}
	for _, want := range []string{"run folder: runs/job0\n", "report: runs/job0/report.html\n", "all 4 files ok\n", "[exit 0]"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the screen at the end lacks %q:\n%s", want, screen)
		}
	}
	if !summaryRE.MatchString(screen) {
		t.Errorf("the screen at the end lacks the summary (%s):\n%s", summaryRE, screen)
	}
	// The records were not lost: status.log has the run's events.
	status, err := os.ReadFile(filepath.Join(runDir, "status.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(status), ") done on cluster"); n != 4 {
		t.Errorf("status.log has %d files done, want 4:\n%s", n, status)
	}
	if strings.Contains(string(status), "\x1b[") {
		t.Errorf("status.log holds terminal escapes:\n%q", status)
	}

	if *update {
		doc := "$ mce run data --out runs --clusters 1,1 --poll 100ms   # 4 generated files, 120 MB; the clusters slowed twenty times by the test\n\n" +
			"While it runs (one line per cluster, then the total):\n\n" + indent(trimPrompt(during)) +
			"\nAt the end (the view is erased; stdout gets the summary):\n\n" + indent(trimPrompt(screen))
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "terminal.txt"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// trimPrompt drops the shell's lines: the command line tmux started and
// the exit marker.
func trimPrompt(screen string) string {
	var out []string
	for _, ln := range strings.Split(strings.TrimRight(screen, "\n"), "\n") {
		if strings.HasPrefix(ln, "[exit ") {
			continue
		}
		out = append(out, strings.TrimRight(ln, " "))
	}
	return strings.Join(out, "\n") + "\n"
}

func indent(s string) string {
	var b strings.Builder
	for _, ln := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    " + ln + "\n")
	}
	return b.String()
}

// TestTerminal_verbose runs `mce run -v` in a terminal: the log records
// are on the screen too, above the view, and the summary follows them.
func TestTerminal_verbose(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := mce(t, dir, nil, "gen", "--out", "data", "--files", "2", "--size", "4MB"); code != 0 {
		t.Fatalf("gen: exit %d\n%s", code, stderr)
	}
	p := startPane(t, dir, 200, 40, shellQuote(mceBin)+" run data --out runs --clusters 1 -v")
	screen := p.waitExit(2 * time.Minute)
	for _, want := range []string{`msg="file done"`, "2 files ok, 0 failed", "all 2 files ok\n", "[exit 0]"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the screen lacks %q:\n%s", want, screen)
		}
	}
}

// TestTerminal_partitionReduce runs `mce partition` and then `mce reduce`
// in a terminal: neither leaves a log line on the screen; partition ends
// with its result and the path of the store's partition.log, which holds
// its records; reduce with the run's summary.
func TestTerminal_partitionReduce(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := mce(t, dir, nil, "gen", "--out", "data", "--files", "4", "--size", "40MB"); code != 0 {
		t.Fatalf("gen: exit %d\n%s", code, stderr)
	}
	p := startPane(t, dir, 100, 30, shellQuote(mceBin)+" partition data --out store")
	screen := p.waitExit(2 * time.Minute)
	checkNoLogLines(t, "partition", screen)
	for _, want := range []string{"store: 4 file(s) ingested, 0 unchanged, 0 failed;", "log: store/partition.log\n", "[exit 0]"} {
		if !strings.Contains(screen, want) {
			t.Errorf("partition: the screen lacks %q:\n%s", want, screen)
		}
	}
	if strings.Contains(screen, "█") {
		t.Errorf("partition: the live view is left on the screen:\n%s", screen)
	}
	plog, err := os.ReadFile(filepath.Join(dir, "store", "partition.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(plog), "msg=read "); n != 4 {
		t.Errorf("partition.log has %d files read, want 4:\n%s", n, plog)
	}

	p = startPane(t, dir, 100, 30, shellQuote(mceBin)+" reduce --store store --out runs")
	screen = p.waitExit(2 * time.Minute)
	checkNoLogLines(t, "reduce", screen)
	for _, want := range []string{"run folder: runs/job0\n", "4 files ok, 0 failed;", "all 4 files ok\n", "[exit 0]"} {
		if !strings.Contains(screen, want) {
			t.Errorf("reduce: the screen lacks %q:\n%s", want, screen)
		}
	}
}

// TestRun_offTerminal runs `mce run` with stderr a pipe, as in a script or
// CI: no live view and no progress lines, but one log line per file
// started and done.
func TestRun_offTerminal(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := mce(t, dir, nil, "gen", "--out", "data", "--files", "3", "--size", "3MB"); code != 0 {
		t.Fatalf("gen: exit %d\n%s", code, stderr)
	}
	stdout, stderr, code := mce(t, dir, nil, "run", "data", "--out", "runs", "--clusters", "1")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, ev := range []string{"file started", "file done"} {
		if n := strings.Count(stderr, `msg="`+ev+`" file=`); n != 3 {
			t.Errorf("stderr has %d %q lines, want 3:\n%s", n, ev, stderr)
		}
	}
	if strings.Contains(stderr, "\x1b[") || strings.Contains(stderr, "progress:") {
		t.Errorf("stderr holds a progress view:\n%q", stderr)
	}
	for _, want := range []string{"run folder: runs/job0\n", "3 files ok, 0 failed;", "report: runs/job0/report.html\n", "all 3 files ok\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}
