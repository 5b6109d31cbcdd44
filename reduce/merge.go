package reduce

import (
	"bufio"
	"bytes"
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
	"github.com/mce-engine/mce/engine/inram"
)

// Merge sizing: a merge is split into key ranges, one per CPU, when its
// runs hold more than parallelMergeBytes, each range covering at least
// rangeBytes; the chunk buffers of all the runs of all the ranges share
// mergeBufferBytes (each between 1 and 32 KiB).
const (
	parallelMergeBytes = 8 << 20
	rangeBytes         = 8 << 20
	mergeBufferBytes   = 32 << 20
)

// sectionRun is one run of the merged section, in its part file.
type sectionRun struct {
	f   *os.File
	run *partRun
}

// runMerge is the KindMerge handler: it merges its section's sorted runs
// from every part file into the features file, in user key order, with
// `mce run`'s header and lines. A big section is merged on all the
// cluster's CPUs: the key space is cut into ranges at segment boundaries,
// each range merged into a temporary file, and the files joined in order.
// A user whose features failed in the first phase fails the file here,
// naming the user.
func (w *worker) runMerge(ctx context.Context, env *engine.TaskEnv, t *engine.Task) (*engine.Result, error) {
	a, err := decodeArgs(t)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	p := env.Progress
	p.Phase.Store("write")
	var parts []*partFile
	defer func() {
		for _, pf := range parts {
			pf.Close()
		}
	}()
	var missing []string
	for _, name := range a.Parts {
		pf, err := openPart(filepath.Join(env.RunDir, name))
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, strings.TrimSuffix(filepath.Base(name), ".part"))
			continue
		}
		if err != nil {
			return nil, err
		}
		parts = append(parts, pf)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the store's rows of %s were not reduced (that task failed; see failure.log)", strings.Join(missing, ", "))
	}
	var st sectionStats
	var runs []sectionRun
	var total int64
	for _, pf := range parts {
		if a.Section >= pf.footer.Sections {
			return nil, fmt.Errorf("part file %s has %d sections, want more than %d", pf.name, pf.footer.Sections, a.Section)
		}
		for _, f := range pf.footer.Failures {
			if f.Section == a.Section {
				return nil, &engine.TaskError{Input: t.Input, User: f.User, Line: f.Line, Message: f.Message, Stack: f.Stack}
			}
		}
		st.add(pf.footer.Stats[a.Section])
		for i := range pf.footer.Runs {
			r := &pf.footer.Runs[i]
			if r.Section != a.Section {
				continue
			}
			if len(r.Firsts) != len(r.Segs) {
				return nil, fmt.Errorf("part file %s: a run has %d segments and %d first keys", pf.name, len(r.Segs), len(r.Firsts))
			}
			runs = append(runs, sectionRun{f: pf.f, run: r})
			for _, s := range r.Segs {
				total += s[1]
			}
		}
	}
	p.UsersTotal.Store(st.Users)
	tOpen := time.Since(start)

	nranges := 1
	if total > parallelMergeBytes {
		nranges = int(min(int64(max(env.CPUs, 1)), total/rangeBytes))
	}
	bounds := splitKeys(runs, nranges)
	chunk := min(max(mergeBufferBytes/max(len(runs)*(len(bounds)+1), 1), 1<<10), 32<<10)

	out, err := engine.CreateOutput(env.OutputPath(t))
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	bw := bufio.NewWriterSize(out, 1<<20)
	if _, err := bw.WriteString(inram.Header(env.Spec)); err != nil {
		return nil, fmt.Errorf("write %s: %w", out.Name(), err)
	}
	var done atomic.Int64
	progress := func(n int64) { p.UsersDone.Store(done.Add(n)) }
	var n int64
	if len(bounds) == 0 {
		n, err = mergeRange(ctx, bw, runs, nil, nil, chunk, progress)
		if err == nil {
			err = bw.Flush()
		}
	} else {
		if err = bw.Flush(); err == nil {
			n, err = mergeRanges(ctx, out, env.OutputPath(t), runs, bounds, chunk, progress)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("merge into %s: %w", out.Name(), err)
	}
	tMerge := time.Since(start)
	if n != st.Users {
		return nil, fmt.Errorf("BUG: merged %d lines into %s, the part files count %d", n, out.Name(), st.Users)
	}
	if err := out.Commit(); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "MERGE %s: open %v merge %v commit %v ranges %d runs %d total %d\n", t.Output, tOpen, tMerge-tOpen, time.Since(start)-tMerge, len(bounds)+1, len(runs), total)
	p.UsersDone.Store(n)
	return &engine.Result{
		Users: n, DroppedRows: st.Dropped, BadRows: a.BadRows,
		ReduceSeconds: time.Since(start).Seconds(), WorkerMaxSeconds: time.Since(start).Seconds(),
		WorkerMeanSeconds: time.Since(start).Seconds(),
	}, nil
}

// splitKeys returns up to n-1 increasing keys that cut the runs' records
// into n ranges of about the same bytes, from the first keys of their
// segments.
func splitKeys(runs []sectionRun, n int) [][]byte {
	if n <= 1 {
		return nil
	}
	type seg struct {
		first []byte
		bytes int64
	}
	var segs []seg
	var total int64
	for _, r := range runs {
		for i, s := range r.run.Segs {
			segs = append(segs, seg{r.run.Firsts[i], s[1]})
			total += s[1]
		}
	}
	sort.Slice(segs, func(i, j int) bool { return bytes.Compare(segs[i].first, segs[j].first) < 0 })
	var bounds [][]byte
	var acc int64
	next := total / int64(n)
	for _, s := range segs {
		if acc >= next && (len(bounds) == 0 || bytes.Compare(s.first, bounds[len(bounds)-1]) > 0) {
			bounds = append(bounds, s.first)
			next = total * int64(len(bounds)+1) / int64(n)
			if len(bounds) == n-1 {
				break
			}
		}
		acc += s.bytes
	}
	return bounds
}

// mergeRange merges the records with keys in [lo, hi) (nil: unbounded)
// of every run into w and returns how many lines it wrote.
func mergeRange(ctx context.Context, w io.Writer, runs []sectionRun, lo, hi []byte, chunk int, progress func(int64)) (int64, error) {
	readers := make([]*runReader, 0, len(runs))
	for _, r := range runs {
		first := 0
		if lo != nil {
			// The last segment that starts at or before lo holds lo's
			// place; earlier segments hold only smaller keys.
			first = max(sort.Search(len(r.run.Firsts), func(i int) bool { return bytes.Compare(r.run.Firsts[i], lo) > 0 })-1, 0)
		}
		rr := newRunReader(r.f, r.run.Segs[first:], chunk, hi)
		ok := rr.next()
		for ok && lo != nil && bytes.Compare(rr.key, lo) < 0 {
			ok = rr.next()
		}
		if rr.err != nil {
			return 0, rr.err
		}
		if ok {
			readers = append(readers, rr)
		}
	}
	return mergeRuns(ctx, w, readers, progress)
}

// mergeRanges merges the key ranges cut at bounds on one goroutine each,
// into temporary files beside the output, then appends them to out in
// order.
func mergeRanges(ctx context.Context, out io.Writer, path string, runs []sectionRun, bounds [][]byte, chunk int, progress func(int64)) (int64, error) {
	n := len(bounds) + 1
	files := make([]*os.File, n)
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
				os.Remove(f.Name())
			}
		}
	}()
	counts := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		f, err := os.Create(fmt.Sprintf("%s.range%03d%s", path, i, engine.TempSuffix))
		if err != nil {
			return 0, fmt.Errorf("create range file: %w", err)
		}
		files[i] = f
		var lo, hi []byte
		if i > 0 {
			lo = bounds[i-1]
		}
		if i < len(bounds) {
			hi = bounds[i]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			bw := bufio.NewWriterSize(f, 256<<10)
			counts[i], errs[i] = mergeRange(ctx, bw, runs, lo, hi, chunk, progress)
			if errs[i] == nil {
				errs[i] = bw.Flush()
			}
		}()
	}
	wg.Wait()
	var total int64
	for i, f := range files {
		if errs[i] != nil {
			return 0, errs[i]
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return 0, err
		}
		if _, err := io.Copy(out, f); err != nil {
			return 0, fmt.Errorf("append range %d: %w", i, err)
		}
		total += counts[i]
	}
	return total, nil
}

// mergeRuns writes the lines of every run to w in key order and returns
// how many it wrote; progress is called now and then with the lines
// written since the last call.
func mergeRuns(ctx context.Context, w io.Writer, h []*runReader, progress func(int64)) (int64, error) {
	// h is a binary min-heap of the runs by current key.
	less := func(i, j int) bool { return bytes.Compare(h[i].key, h[j].key) < 0 }
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			m := l
			if r := l + 1; r < len(h) && less(r, l) {
				m = r
			}
			if !less(m, i) {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	h = slices.Clip(h)
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	var n int64
	for len(h) > 0 {
		r := h[0]
		if _, err := w.Write(r.line); err != nil {
			return n, err
		}
		n++
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			progress(4096)
		}
		if !r.next() {
			if r.err != nil {
				return n, r.err
			}
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		down(0)
	}
	progress(n % 4096)
	return n, nil
}
