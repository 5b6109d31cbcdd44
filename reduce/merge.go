package reduce

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/inram"
)

// runMerge is the KindMerge handler: it merges its section's sorted runs
// from every part file into the features file, in user key order, with
// `mce run`'s header and lines. A user whose features failed in the first
// phase fails the file here, naming the user.
func (w *worker) runMerge(ctx context.Context, env *engine.TaskEnv, t *engine.Task) (*engine.Result, error) {
	w.tune()
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
	var nruns int
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
		for _, r := range pf.footer.Runs {
			if r.Section == a.Section {
				nruns++
			}
		}
	}
	p.UsersTotal.Store(st.Users)
	runs := make([]*runReader, 0, nruns)
	for _, pf := range parts {
		for _, r := range pf.footer.Runs {
			if r.Section == a.Section {
				runs = append(runs, newRunReader(pf.f, r.Segs))
			}
		}
	}

	out, err := engine.CreateOutput(env.OutputPath(t))
	if err != nil {
		return nil, err
	}
	defer out.Abort()
	bw := bufio.NewWriterSize(out, 1<<20)
	if _, err := bw.WriteString(inram.Header(env.Spec)); err != nil {
		return nil, fmt.Errorf("write %s: %w", out.Name(), err)
	}
	n, err := mergeRuns(ctx, bw, runs, func(n int64) { p.UsersDone.Store(n) })
	if err != nil {
		return nil, fmt.Errorf("merge into %s: %w", out.Name(), err)
	}
	if n != st.Users {
		return nil, fmt.Errorf("BUG: merged %d lines into %s, the part files count %d", n, out.Name(), st.Users)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("write %s: %w", out.Name(), err)
	}
	if err := out.Commit(); err != nil {
		return nil, err
	}
	p.UsersDone.Store(n)
	return &engine.Result{
		Users: n, DroppedRows: st.Dropped, BadRows: a.BadRows,
		ReduceSeconds: time.Since(start).Seconds(),
	}, nil
}
