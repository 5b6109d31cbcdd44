package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mce-engine/mce/internal/procfs"
)

// DefaultSampleEvery is how often Measure samples the RSS of the process
// tree.
const DefaultSampleEvery = 50 * time.Millisecond

// Command is one process to measure.
type Command struct {
	Args []string // program and arguments
	Dir  string   // working directory; empty means the current one
	Env  []string // added to the environment
	// Stdout receives the standard output; nil keeps its last 64 KiB in
	// Sample.Stdout.
	Stdout io.Writer
	// SampleEvery is the RSS sampling period (default DefaultSampleEvery).
	SampleEvery time.Duration
}

// Sample is what one measured run cost.
type Sample struct {
	Wall         time.Duration
	UserCPU      time.Duration // of the whole tree, waited descendants included
	SysCPU       time.Duration
	PeakRSSBytes int64 // peak of the sum over the tree
	Processes    int   // most processes seen in the tree at once
	Stdout       string
	Stderr       string // last 16 KiB
	// Warm is what the bench found of the run's inputs in the page cache
	// before it (warmInputs); zero when it did not look.
	Warm warmStats
}

// CPU returns user plus system CPU time.
func (s Sample) CPU() time.Duration { return s.UserCPU + s.SysCPU }

// ExitError is a measured command that did not exit 0.
type ExitError struct {
	Args   []string
	Err    error
	Stderr string // its tail
}

// Error names the program (and its first argument when that is a
// subcommand or script) and gives the last line of its standard error.
func (e *ExitError) Error() string {
	name := filepath.Base(e.Args[0])
	if len(e.Args) > 1 && !strings.HasPrefix(e.Args[1], "-") {
		name += " " + filepath.Base(e.Args[1])
	}
	msg := fmt.Sprintf("%s: %v", name, e.Err)
	if l := lastLine(e.Stderr); l != "" {
		msg += ": " + truncate(l, 300)
	}
	return msg
}

// Command returns the command line, shortened for a log.
func (e *ExitError) Command() string { return strings.Join(shortArgs(e.Args), " ") }

func (e *ExitError) Unwrap() error { return e.Err }

// shortArgs keeps error messages readable when a program is long (an awk
// script) or there are many files.
func shortArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if i >= 12 {
			out = append(out, fmt.Sprintf("(%d more)", len(args)-i))
			break
		}
		if len(a) > 80 {
			a = a[:77] + "…"
		}
		out = append(out, a)
	}
	return out
}

// Measure runs cmd to completion and measures it. The child gets its own
// process group, which is killed when ctx is done. A non-zero exit is an
// *ExitError; the sample is returned with it.
func Measure(ctx context.Context, cmd Command) (Sample, error) {
	if len(cmd.Args) == 0 {
		return Sample{}, errors.New("measure: no command")
	}
	every := cmd.SampleEvery
	if every <= 0 {
		every = DefaultSampleEvery
	}
	c := exec.Command(cmd.Args[0], cmd.Args[1:]...)
	c.Dir = cmd.Dir
	c.Env = append(os.Environ(), cmd.Env...)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout := &tailBuffer{max: 64 << 10}
	stderr := &tailBuffer{max: 16 << 10}
	if cmd.Stdout != nil {
		c.Stdout = cmd.Stdout
	} else {
		c.Stdout = stdout
	}
	c.Stderr = stderr

	start := time.Now()
	if err := c.Start(); err != nil {
		return Sample{}, fmt.Errorf("start %s: %w", cmd.Args[0], err)
	}
	pid := c.Process.Pid
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()

	var s Sample
	tick := time.NewTicker(every)
	defer tick.Stop()
	var werr error
	sample := func() {
		rss, n := treeRSS(pid)
		s.PeakRSSBytes = max(s.PeakRSSBytes, rss)
		s.Processes = max(s.Processes, n)
	}
	sample()
loop:
	for {
		select {
		case werr = <-done:
			break loop
		case <-tick.C:
			sample()
		case <-ctx.Done():
			// The whole group: a shell pipeline or mce's clusters.
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-done
			return s, fmt.Errorf("%s: %w", cmd.Args[0], ctx.Err())
		}
	}
	s.Wall = time.Since(start)
	// Descendants that outlived the child would escape both the rusage and
	// the next measurement; kill what is left of the group.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		s.UserCPU = time.Duration(ru.Utime.Nano())
		s.SysCPU = time.Duration(ru.Stime.Nano())
		// ru_maxrss is in KiB: the largest single process of the tree that
		// was waited for. It catches a process too short-lived to sample.
		// But Linux starts a child's count at the peak of the process that
		// started it (the memory it shared until exec), so a figure no
		// bigger than this process's own peak may be ours, and is dropped:
		// the samples stand alone then. The peak is read after the wait: read
		// before the start, it could grow until the exec (the bench's other
		// goroutines allocate), and a csvfloor run of 12 MiB was once
		// reported at 672 MiB, the bench's own (TestMeasure_PeakRSS/NotOurs
		// gives a sleeping shell 160–760 MiB under the old rule).
		if m := ru.Maxrss * 1024; m > procfs.PeakRSS() {
			s.PeakRSSBytes = max(s.PeakRSSBytes, m)
		}
	}
	s.Stdout = stdout.String()
	s.Stderr = stderr.String()
	if werr != nil {
		return s, &ExitError{Args: cmd.Args, Err: werr, Stderr: s.Stderr}
	}
	return s, nil
}

// treeRSS returns the summed resident set size of pid and all its
// descendants, and how many processes that is. A process that ends while
// it is being read is left out.
func treeRSS(pid int) (rssBytes int64, procs int) {
	tree := descendants(pid, readProcTable())
	page := int64(os.Getpagesize())
	for _, p := range tree {
		st, err := readStat(p)
		if err != nil {
			continue
		}
		rssBytes += st.rssPages * page
		procs++
	}
	return rssBytes, procs
}

// procStat is what we use of /proc/<pid>/stat.
type procStat struct {
	pid, ppid int
	rssPages  int64
}

// readProcTable returns the parent of every process in /proc.
func readProcTable() map[int]int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := make(map[int]int, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		parent[pid] = st.ppid
	}
	return parent
}

// descendants returns root and every process below it in parent.
func descendants(root int, parent map[int]int) []int {
	children := make(map[int][]int, len(parent))
	for p, pp := range parent {
		children[pp] = append(children[pp], p)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseStat reads a /proc/<pid>/stat line. The command name is in
// parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("proc stat %q: no command name", truncate(string(b), 60))
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: pid: %w", err)
	}
	// Fields from 3 (state) on; field n is rest[n-3].
	rest := strings.Fields(string(b[end+1:]))
	if len(rest) < 22 {
		return procStat{}, fmt.Errorf("proc stat of %d: %d fields", pid, len(rest)+2)
	}
	ppid, err := strconv.Atoi(rest[4-3])
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat of %d: ppid: %w", pid, err)
	}
	rss, err := strconv.ParseInt(rest[24-3], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat of %d: rss: %w", pid, err)
	}
	return procStat{pid: pid, ppid: ppid, rssPages: rss}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
	cut bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	b := t.buf
	if len(b) > t.max {
		b, t.cut = b[len(b)-t.max:], true
	}
	if t.cut {
		return "…" + string(b)
	}
	return string(b)
}
