package reduce

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/internal/gctune"
	"github.com/mce-engine/mce/internal/keyruns"
)

// Merge sizing: the runs are merged in groups, one per CPU, when they
// hold more than groupBytes per group; the chunk buffers of all the runs
// share mergeBufferBytes (each between 1 and 32 KiB, and no bigger than
// its run: keyruns.NewReader).
const (
	groupBytes       = 4 << 20
	mergeBufferBytes = 32 << 20
)

// sectionRun is one run of the merged section, in its part file.
type sectionRun struct {
	f   *os.File
	run *partRun
}

// runMerge is the KindMerge handler: it merges its section's sorted runs
// from every part file into the features file, in user key order, with
// `mce run`'s header and lines. A big section is merged on all the
// cluster's CPUs: the runs are cut into groups of about the same bytes,
// each group merged into a temporary run beside the output, and those
// merged into the output. A user whose features failed in the first phase
// fails the file here, naming the user.
//
// The merge task handed out first (taskArgs.Others, set when one cluster
// runs the job) also merges the other sections at the same time, each
// into its own features file, written and renamed whole as every output
// is: the merges then share the CPUs instead of following one another,
// and the other merge tasks find their output complete. A section with a
// failed user is left to its own task, which reports it.
func (w *worker) runMerge(ctx context.Context, env *engine.TaskEnv, t *engine.Task) (*engine.Result, error) {
	a, err := decodeArgs(t)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	// The merges take their buffers all at once (a reader a run, at most
	// mergeBufferBytes in all, and each output's write buffer) and make
	// little garbage. At the default GOGC over the read phase's small live
	// heap the collector ran while they took them, and held several merges
	// in its mark assists for up to 10 ms with a CPU idle: they keep the
	// cluster's headroom instead, more than their buffers.
	defer gctune.Start()()
	p := env.Progress
	p.Phase.Store("write")
	parts, err := w.footers.openParts(env.RunDir, a.Parts)
	defer func() {
		for _, pf := range parts {
			pf.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	own := mergeTarget{Section: a.Section, Output: t.Output, KeyName: a.KeyName, LocalTimes: a.LocalTimes}
	targets := []mergeTarget{own}
	for _, o := range a.Others {
		if _, err := os.Stat(filepath.Join(env.RunDir, o.Output)); err != nil {
			targets = append(targets, o)
		}
	}
	// The merges run a few at a time, the task's own first: each holds
	// its output's write buffer and a reader a run, and 500 input files
	// merged all at once held up to 428 MiB.
	together := min(len(targets), mergesAtOnce(env.CPUs))
	cpus := max(env.CPUs/together, 1)
	results := make([]mergeResult, len(targets))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range together {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(targets); i = int(next.Add(1) - 1) {
				var progress func(int64)
				if i == 0 {
					var done atomic.Int64
					progress = func(n int64) { p.UsersDone.Store(done.Add(n)) }
				}
				results[i] = mergeSection(ctx, env, parts, targets[i], a.Format, cpus, together, i == 0, progress)
			}
		}()
	}
	wg.Wait()
	for i, r := range results[1:] {
		if r.err != nil {
			env.Logger.Debug("merge of another output left to its task", "output", targets[i+1].Output, "error", r.err)
		}
	}
	r := results[0]
	if r.err != nil {
		var te *engine.TaskError
		if errors.As(r.err, &te) {
			te.Input = t.Label()
		}
		return nil, r.err
	}
	p.UsersTotal.Store(r.stats.Users)
	p.UsersDone.Store(r.lines)
	secs := time.Since(start).Seconds()
	return &engine.Result{
		Users: r.lines, DroppedRows: r.stats.Dropped, BadRows: a.BadRows,
		ReduceSeconds: secs, WorkerMaxSeconds: secs, WorkerMeanSeconds: secs,
	}, nil
}

// mergesAtOnce is how many outputs the first merge task merges at once on
// cpus CPUs: enough to keep them busy while some wait on their writes.
func mergesAtOnce(cpus int) int { return max(8, 2*cpus) }

// mergeTarget is one output of a merge: a section, its features file
// (run-directory relative), the name of its key column ("": the default)
// and whether its times are local (output.Writer.SetLocalTimes).
type mergeTarget struct {
	Section    int    `json:"section"`
	Output     string `json:"output"`
	KeyName    string `json:"key_name,omitempty"`
	LocalTimes bool   `json:"local_times,omitempty"`
}

type mergeResult struct {
	stats sectionStats
	lines int64
	err   error
}

// openParts opens the part files of the first phase, their footers
// read once by the cluster (c).
func (c *footerCache) openParts(dir string, names []string) ([]*partFile, error) {
	var parts []*partFile
	var missing []string
	for _, name := range names {
		pf, err := c.open(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, strings.TrimSuffix(filepath.Base(name), ".part"))
			continue
		}
		if err != nil {
			return parts, err
		}
		parts = append(parts, pf)
	}
	if len(missing) > 0 {
		return parts, fmt.Errorf("the store's rows of %s were not reduced (that task failed; see failure.log)", strings.Join(missing, ", "))
	}
	return parts, nil
}

// mergeSection writes one section's features file in format, unless it
// is there already (merged by the first merge task), on cpus CPUs; the
// merges running at once share the read buffers. The lines go through
// output.Table, as `mce run`'s do.
func mergeSection(ctx context.Context, env *engine.TaskEnv, parts []*partFile, tg mergeTarget, format output.Format, cpus, together int, own bool, progress func(int64)) mergeResult {
	var res mergeResult
	var runs []sectionRun
	var total int64
	for _, pf := range parts {
		if tg.Section >= pf.footer.Sections {
			res.err = fmt.Errorf("part file %s has %d sections, want more than %d", pf.name, pf.footer.Sections, tg.Section)
			return res
		}
		for _, f := range pf.footer.Failures {
			if f.Section == tg.Section {
				res.err = &engine.TaskError{User: f.User, Line: f.Line, Message: f.Message, Stack: f.Stack}
				return res
			}
		}
		res.stats.add(pf.footer.Stats[tg.Section])
		for i := range pf.footer.Runs {
			r := &pf.footer.Runs[i]
			if r.Section != tg.Section {
				continue
			}
			runs = append(runs, sectionRun{f: pf.f, run: r})
			for _, s := range r.Segs {
				total += s[1]
			}
		}
	}
	path := filepath.Join(env.RunDir, tg.Output)
	if own {
		if _, err := os.Stat(path); err == nil {
			res.lines = res.stats.Users // merged by the first merge task
			return res
		}
	}
	if progress == nil {
		progress = func(int64) {}
	}
	ngroups := int(min(int64(cpus), total/groupBytes))
	chunk := min(max(mergeBufferBytes/max(len(runs)*together, 1), 1<<10), 32<<10)

	out, err := output.CreateTable(path, env.Spec, output.Options{Format: format, KeyName: tg.KeyName})
	if err != nil {
		res.err = err
		return res
	}
	out.Writer().SetLocalTimes(tg.LocalTimes)
	defer out.Abort()
	if localLines(parts, tg.Section) {
		// The lines' times have no "Z": the table must take them so.
		if !tg.LocalTimes || !output.LinesFor(out.Writer()).Local {
			res.err = fmt.Errorf("BUG: the part files' lines of %s have local times, its table does not take them", tg.Output)
			return res
		}
	}
	// The lines go to the table line by line: its Writer buffers them.
	if _, err := out.WriteString(output.Header(env.Spec)); err != nil {
		res.err = fmt.Errorf("write %s: %w", out.Name(), err)
		return res
	}
	if ngroups <= 1 {
		res.lines, err = keyruns.Merge(ctx, lineWriter{out}.write, readers(runs, chunk), progress)
	} else {
		res.lines, err = mergeGroups(ctx, out, path, runs, ngroups, chunk, progress)
	}
	if err != nil {
		res.err = fmt.Errorf("merge into %s: %w", out.Name(), err)
		return res
	}
	if res.lines != res.stats.Users {
		res.err = fmt.Errorf("BUG: merged %d lines into %s, the part files count %d", res.lines, out.Name(), res.stats.Users)
		return res
	}
	res.err = out.Commit()
	return res
}

// localLines reports whether every part file's lines of section sec have
// their times' "Z" left out. Otherwise (a part file of an older mce, left
// for --resume, has them all with it) the section's table drops the "Z"
// where there is one.
func localLines(parts []*partFile, sec int) bool {
	for _, pf := range parts {
		if !slices.Contains(pf.footer.LocalLines, sec) {
			return false
		}
	}
	return len(parts) > 0
}

// readers returns a reader for each run.
func readers(runs []sectionRun, chunk int) []*keyruns.Reader {
	rs := make([]*keyruns.Reader, len(runs))
	for i, r := range runs {
		rs[i] = keyruns.NewReader(r.f, "part file", r.run.Segs, chunk)
	}
	return rs
}

// lineWriter writes the lines of the records (keyruns.Merge's put): a
// features file.
type lineWriter struct{ w io.Writer }

func (l lineWriter) write(_, line []byte) error {
	_, err := l.w.Write(line)
	return err
}

// runWriter writes whole records: a run to merge again.
type runWriter struct {
	w   *bufio.Writer
	buf []byte
}

func (r *runWriter) write(key, line []byte) error {
	r.buf = keyruns.Append(r.buf[:0], key, line)
	_, err := r.w.Write(r.buf)
	return err
}

// mergeGroups cuts the runs into n groups of about the same bytes (the
// largest runs first onto the lightest group), merges each group into a
// temporary run beside path on its own goroutine, then merges those runs
// into w, and returns how many lines it wrote.
func mergeGroups(ctx context.Context, w io.Writer, path string, runs []sectionRun, n int, chunk int, progress func(int64)) (int64, error) {
	size := func(r sectionRun) (b int64) {
		for _, s := range r.run.Segs {
			b += s[1]
		}
		return b
	}
	sorted := slices.Clone(runs)
	sort.SliceStable(sorted, func(i, j int) bool { return size(sorted[i]) > size(sorted[j]) })
	groups := make([][]sectionRun, n)
	load := make([]int64, n)
	for _, r := range sorted {
		k := 0
		for i := range load {
			if load[i] < load[k] {
				k = i
			}
		}
		groups[k] = append(groups[k], r)
		load[k] += size(r)
	}
	files := make([]*os.File, n)
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
				os.Remove(f.Name())
			}
		}
	}()
	ends := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		f, err := os.Create(fmt.Sprintf("%s.group%03d%s", path, i, output.TempSuffix))
		if err != nil {
			return 0, fmt.Errorf("create group file: %w", err)
		}
		files[i] = f
		wg.Add(1)
		go func() {
			defer wg.Done()
			bw := bufio.NewWriterSize(f, 256<<10)
			rw := &runWriter{w: bw}
			// Progress counts the final merge's lines only.
			if _, errs[i] = keyruns.Merge(ctx, rw.write, readers(groups[i], chunk), func(int64) {}); errs[i] == nil {
				errs[i] = bw.Flush()
			}
			if errs[i] == nil {
				ends[i], errs[i] = f.Seek(0, io.SeekCurrent)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	final := make([]*keyruns.Reader, 0, n)
	for i, f := range files {
		if ends[i] > 0 {
			final = append(final, keyruns.NewReader(f, "part file", [][2]int64{{0, ends[i]}}, 64<<10))
		}
	}
	return keyruns.Merge(ctx, lineWriter{w}.write, final, progress)
}
