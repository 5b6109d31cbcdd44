package partition

import (
	"bytes"
	"container/heap"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mce-engine/mce/store"
)

// fileStats is what the merge wrote of one file.
type fileStats struct {
	rows, blocks, users, stored int64
	heavy                       map[string]*store.HeavyPart
}

// mergeStats is what one or more merge tasks wrote.
type mergeStats struct {
	files    map[store.FileID]*fileStats
	newHeavy map[string]int                     // users that became heavy, with their shard
	moved    map[store.FileID][]store.HeavyPart // older files' rows of those users
}

func newMergeStats() *mergeStats {
	return &mergeStats{files: map[store.FileID]*fileStats{}, newHeavy: map[string]int{}, moved: map[store.FileID][]store.HeavyPart{}}
}

func (m *mergeStats) file(id store.FileID) *fileStats {
	f := m.files[id]
	if f == nil {
		f = &fileStats{heavy: map[string]*store.HeavyPart{}}
		m.files[id] = f
	}
	return f
}

func (m *mergeStats) add(o *mergeStats) {
	for id, f := range o.files {
		t := m.file(id)
		t.rows += f.rows
		t.blocks += f.blocks
		t.users += f.users
		t.stored += f.stored
		for u, p := range f.heavy {
			t.heavy[u] = p
		}
	}
	for u, s := range o.newHeavy {
		m.newHeavy[u] = s
	}
	for id, ps := range o.moved {
		m.moved[id] = append(m.moved[id], ps...)
	}
}

// mergeJob is the shared state of the merge phase.
type mergeJob struct {
	db           *store.DB
	loader       *store.Loader
	runs         []*run
	schemaCols   int
	userCol      int
	blockBytes   int
	codec        store.Codec
	failed       map[uint32]bool // files whose rows must be dropped
	forcedHeavy  map[string]bool
	heavyMinRows int64
	heavyRows    int64 // a user with more rows than this is heavy
	tableBytes   int64
	crash        *crasher
	// heavySlots bounds the heavy users' file streams writing at once
	// (heavyFile); nil: none are made. A heavy user of heavyFileRows
	// rows or more gets them.
	heavySlots    chan struct{}
	heavyFileRows int64
}

// task is a shard range [lo, hi) merged into its own tables.
type task struct{ lo, hi int }

// planTasks cuts the shards into ranges of about equal run bytes, several
// per worker so that a range holding a heavy user does not hold up the
// rest.
func planTasks(runs []*run, shards, workers int) []task {
	per := make([]int64, shards)
	var total int64
	for _, r := range runs {
		for s := 0; s < shards; s++ {
			b := r.bytesIn(s, s+1)
			per[s] += b
			total += b
		}
	}
	target := max(total/int64(4*workers), 1)
	var out []task
	lo := 0
	var acc int64
	for s := 0; s < shards; s++ {
		acc += per[s]
		if acc >= target || s == shards-1 {
			out = append(out, task{lo, s + 1})
			lo, acc = s+1, 0
		}
	}
	// Biggest first.
	size := func(t task) int64 {
		var n int64
		for s := t.lo; s < t.hi; s++ {
			n += per[s]
		}
		return n
	}
	sort.SliceStable(out, func(i, j int) bool { return size(out[i]) > size(out[j]) })
	return out
}

// runMerge merges every task on up to workers goroutines.
func (j *mergeJob) runMerge(ctx context.Context, tasks []task, workers int) (*mergeStats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan task)
	var (
		mu    sync.Mutex
		total = newMergeStats()
		first error
		wg    sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range ch {
				st, err := j.mergeTask(ctx, t)
				mu.Lock()
				if err != nil && first == nil {
					first = err
					cancel()
				}
				if err == nil {
					total.add(st)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, t := range tasks {
		select {
		case ch <- t:
		case <-ctx.Done():
			break feed
		}
	}
	close(ch)
	wg.Wait()
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return total, nil
}

// groupHeap orders run readers by their current group's (shard, user).
type groupHeap []*runReader

func (h groupHeap) Len() int { return len(h) }
func (h groupHeap) Less(i, k int) bool {
	if h[i].shard != h[k].shard {
		return h[i].shard < h[k].shard
	}
	return bytes.Compare(h[i].user, h[k].user) < 0
}
func (h groupHeap) Swap(i, k int) { h[i], h[k] = h[k], h[i] }
func (h *groupHeap) Push(x any)   { *h = append(*h, x.(*runReader)) }
func (h *groupHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// rowHeap orders the readers of one group by their current row's (file,
// line).
type rowHeap []*runReader

func (h rowHeap) Len() int { return len(h) }
func (h rowHeap) Less(i, k int) bool {
	if h[i].file != h[k].file {
		return h[i].file < h[k].file
	}
	return h[i].line < h[k].line
}
func (h rowHeap) Swap(i, k int) { h[i], h[k] = h[k], h[i] }
func (h *rowHeap) Push(x any)   { *h = append(*h, x.(*runReader)) }
func (h *rowHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// groupMerge merges the runs' readers of one shard range: group by group
// in (shard, user) order, and within a group row by row in (file, line)
// order.
type groupMerge struct {
	gh   groupHeap
	rh   rowHeap
	done []*runReader
	cur  *runReader // the reader of the last row returned
	// The current group.
	shard int
	user  []byte // a copy, valid until the next group
	rows  int64  // its rows in all runs
}

func newGroupMerge(readers []*runReader) (*groupMerge, error) {
	m := &groupMerge{}
	for _, rr := range readers {
		if rr.nextGroup() {
			m.gh = append(m.gh, rr)
		} else if rr.err != nil {
			return nil, rr.err
		}
	}
	heap.Init(&m.gh)
	return m, nil
}

// nextGroup moves to the next group, skipping what is left of the current
// one; false at the end.
func (m *groupMerge) nextGroup() (bool, error) {
	for {
		ok, err := m.nextRow()
		if err != nil {
			return false, err
		}
		if !ok {
			break
		}
	}
	for _, rr := range m.done {
		if rr.nextGroup() {
			heap.Push(&m.gh, rr)
		} else if rr.err != nil {
			return false, rr.err
		}
	}
	m.done = m.done[:0]
	if m.gh.Len() == 0 {
		return false, nil
	}
	// Every reader whose current group is the smallest (shard, user).
	first := heap.Pop(&m.gh).(*runReader)
	m.rh = append(m.rh[:0], first)
	for m.gh.Len() > 0 && m.gh[0].shard == first.shard && bytes.Equal(m.gh[0].user, first.user) {
		m.rh = append(m.rh, heap.Pop(&m.gh).(*runReader))
	}
	m.shard = first.shard
	m.user = append(m.user[:0], first.user...)
	m.rows = 0
	for _, rr := range m.rh {
		m.rows += rr.left
	}
	live := m.rh[:0]
	for _, rr := range m.rh {
		if rr.nextRow() {
			live = append(live, rr)
		} else if rr.err != nil {
			return false, rr.err
		} else {
			m.done = append(m.done, rr)
		}
	}
	m.rh = live
	heap.Init(&m.rh)
	m.cur = nil
	return true, nil
}

// nextRow moves to the group's next row, whose reader it returns: its
// file, line and val are valid until the next call.
func (m *groupMerge) nextRow() (bool, error) {
	if rr := m.cur; rr != nil {
		m.cur = nil
		if rr.nextRow() {
			heap.Fix(&m.rh, 0)
		} else {
			if rr.err != nil {
				return false, rr.err
			}
			heap.Pop(&m.rh)
			m.done = append(m.done, rr)
		}
	}
	if m.rh.Len() == 0 {
		return false, nil
	}
	m.cur = m.rh[0]
	return true, nil
}

// mergeTask merges the rows of one shard range from every run into
// blocks, written through two streams (normal and heavy range): group by
// group, it decides where the user goes (route), then writes the group's
// rows into blocks (writeGroup).
func (j *mergeJob) mergeTask(ctx context.Context, t task) (_ *mergeStats, err error) {
	tw := j.newTaskWriter()
	defer func() {
		if werr := tw.waitHeavy(); err == nil && werr != nil {
			err = werr
		}
	}()
	readers := make([]*runReader, len(j.runs))
	for i, r := range j.runs {
		readers[i] = r.reader(t.lo, t.hi)
	}
	m, err := newGroupMerge(readers)
	if err != nil {
		return nil, err
	}
	for n := 1; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		ok, err := m.nextGroup()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		isHeavy, err := tw.route(ctx, m.user, m.shard, m.rows)
		if err != nil {
			return nil, err
		}
		if err := tw.writeGroup(m, isHeavy); err != nil {
			return nil, err
		}
	}
	if err := tw.normal.Close(); err != nil {
		return nil, err
	}
	if err := tw.heavy.Close(); err != nil {
		return nil, err
	}
	if err := tw.waitHeavy(); err != nil {
		return nil, err
	}
	return tw.st, nil
}

// taskWriter is one merge task's output: its two streams, the block being
// filled, and what it wrote.
type taskWriter struct {
	j             *mergeJob
	st            *mergeStats
	normal, heavy *store.Stream
	comp          *store.Compressor
	w             *store.BlockWriter
	fields        [][]byte
	value         []byte
	heavyFiles    []*heavyFile // started, not waited for
}

func (j *mergeJob) newTaskWriter() *taskWriter {
	tw := &taskWriter{
		j: j, st: newMergeStats(),
		normal: j.loader.NewStream(j.tableBytes), heavy: j.loader.NewStream(j.tableBytes),
		comp: j.db.Compressor(), w: store.NewBlockWriter(j.schemaCols).SetFormat(j.db.Config().Format), fields: make([][]byte, j.schemaCols),
	}
	tw.normal.OnTable = func(string) { j.crash.point("merge") }
	tw.heavy.OnTable = tw.normal.OnTable
	return tw
}

// route decides whether a user of rows rows (in all runs) goes to the
// heavy range. A user that becomes heavy now has its stored blocks copied
// there first, ahead of its new ones.
func (tw *taskWriter) route(ctx context.Context, user []byte, shard int, rows int64) (bool, error) {
	j := tw.j
	isHeavy := j.db.IsHeavy(user) || j.forcedHeavy[string(user)] ||
		(rows > j.heavyRows && rows >= j.heavyMinRows)
	if !isHeavy || j.db.IsHeavy(user) {
		return isHeavy, nil
	}
	tw.st.newHeavy[string(user)] = shard
	moved, err := j.db.CopyToHeavy(ctx, user, tw.heavy)
	if err != nil {
		return false, err
	}
	for id, hf := range moved {
		tw.st.moved[id] = append(tw.st.moved[id], store.HeavyPart{User: string(user), Rows: hf.Rows, Blocks: hf.Blocks})
	}
	return true, nil
}

// writeGroup writes the current group's rows, by (file, line), into
// blocks per file, dropping the rows of failed files.
func (tw *taskWriter) writeGroup(m *groupMerge, isHeavy bool) error {
	j := tw.j
	user, s := m.user, tw.normal
	if isHeavy {
		s = tw.heavy
	}
	// A big heavy user's files go each to a heavyFile, after the heavy
	// stream's table so far (which may hold the user's older blocks).
	var hf *heavyFile
	perFile := isHeavy && j.heavySlots != nil && m.rows >= j.heavyFileRows
	if perFile {
		if err := tw.heavy.Close(); err != nil {
			return err
		}
		defer func() {
			if hf != nil {
				hf.close()
			}
		}()
	}
	key := store.Key{Heavy: isHeavy, Shard: m.shard, User: user}
	var fs *fileStats
	var part *store.HeavyPart
	flush := func() error {
		if tw.w.Rows() == 0 {
			return nil
		}
		tw.value = tw.w.AppendValue(tw.value[:0], j.codec, tw.comp)
		if hf != nil {
			hf.add(key, tw.value)
		} else if err := s.AddBlock(key, tw.value); err != nil {
			return err
		}
		fs.blocks++
		fs.stored += int64(len(tw.value))
		if part != nil {
			part.Blocks++
		}
		key.Seq++
		tw.w.Reset()
		return nil
	}
	started := false
	for {
		ok, err := m.nextRow()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		rr := m.cur
		if j.failed[rr.file] {
			continue
		}
		if !started || store.FileID(rr.file) != key.File {
			if started {
				if err := flush(); err != nil {
					return err
				}
			}
			started = true
			key.File, key.Seq = store.FileID(rr.file), 0
			if perFile {
				if hf != nil {
					hf.close()
				}
				hf = tw.startHeavyFile()
			}
			fs = tw.st.file(key.File)
			fs.users++
			part = nil
			if isHeavy {
				part = &store.HeavyPart{User: string(user)}
				fs.heavy[string(user)] = part
			}
		}
		f, err := decodeValue(rr.val, user, j.userCol, tw.fields)
		if err != nil {
			return fmt.Errorf("run %s: user %q: %w", rr.r.path, user, err)
		}
		tw.w.Add(rr.line, f)
		fs.rows++
		if part != nil {
			part.Rows++
		}
		if tw.w.RawBytes() >= j.blockBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if started {
		return flush()
	}
	return nil
}

// readerBytes is about what one run reader holds: a decoded frame and its
// compressed form.
const readerBytes = 2 * frameRawBytes

// mergeReaders is how many runs the final merge reads at once with a
// budget of memBytes: half of it in readers.
func mergeReaders(memBytes int64) int { return max(2, int(memBytes/2/readerBytes)) }

// narrowRuns merges runs into fewer, bigger runs until at most fanIn
// remain, fanIn at a time, so that the final merge's readers fit in the
// memory budget whatever the number of spills.
func narrowRuns(ctx context.Context, fs vfs.FS, runs []*run, fanIn int, dir string, shards int) ([]*run, error) {
	fanIn = max(fanIn, 2)
	// An in-memory run stays as it is, to be merged last.
	var disk, mem []*run
	for _, r := range runs {
		if r.mem != nil {
			mem = append(mem, r)
		} else {
			disk = append(disk, r)
		}
	}
	runs = disk
	fanIn = max(fanIn-len(mem), 2)
	for pass := 0; len(runs) > fanIn; pass++ {
		var next []*run
		for i := 0; i < len(runs); i += fanIn {
			batch := runs[i:min(i+fanIn, len(runs))]
			if len(batch) == 1 {
				next = append(next, batch[0])
				continue
			}
			path := filepath.Join(dir, fmt.Sprintf("merged-%d-%05d", pass, i/fanIn))
			r, err := mergeRuns(ctx, fs, batch, path, shards)
			if err != nil {
				for _, x := range append(append(next, runs[i:]...), mem...) {
					x.close()
				}
				return nil, err
			}
			for _, x := range batch {
				x.close()
				fs.Remove(x.path)
			}
			next = append(next, r)
		}
		runs = next
	}
	return append(runs, mem...), nil
}

// mergeRuns merges runs into one run at path.
func mergeRuns(ctx context.Context, fs vfs.FS, runs []*run, path string, shards int) (*run, error) {
	readers := make([]*runReader, len(runs))
	for i, r := range runs {
		readers[i] = r.reader(0, shards)
	}
	m, err := newGroupMerge(readers)
	if err != nil {
		return nil, err
	}
	w, err := newRunWriter(fs, path, shards, true)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*run, error) {
		w.abort()
		fs.Remove(path)
		return nil, err
	}
	for n := 1; ; n++ {
		if n%256 == 0 && ctx.Err() != nil {
			return fail(ctx.Err())
		}
		ok, err := m.nextGroup()
		if err != nil {
			return fail(err)
		}
		if !ok {
			break
		}
		if err := w.group(m.shard, m.user, m.rows); err != nil {
			return fail(err)
		}
		for {
			ok, err := m.nextRow()
			if err != nil {
				return fail(err)
			}
			if !ok {
				break
			}
			if err := w.row(m.cur.file, m.cur.line, m.cur.val); err != nil {
				return fail(err)
			}
		}
	}
	if _, err := w.finish(); err != nil {
		fs.Remove(path)
		return nil, err
	}
	return openRun(fs, path, shards)
}

// heavyFileMinRows is the fewest rows of a heavy user whose files are
// written by heavyFiles.
const heavyFileMinRows = 256 << 10

// heavyFile writes one big heavy user's blocks of one file into tables of
// their own, on a goroutine of its own, while the merge task reads on:
// pebble compresses a table's blocks on the goroutine that adds them, so
// a user with a tenth of the rows (one bank, in the benchmark's data) kept
// one CPU busy well after the other tasks were done. Its tables hold the
// keys of (user, file) alone, so they overlap no other table.
type heavyFile struct {
	blocks chan heavyBlock
	err    chan error
}

type heavyBlock struct{ key, value []byte }

// startHeavyFile starts a heavyFile once one of the job's heavySlots is
// free.
func (tw *taskWriter) startHeavyFile() *heavyFile {
	j := tw.j
	j.heavySlots <- struct{}{}
	hf := &heavyFile{blocks: make(chan heavyBlock, 16), err: make(chan error, 1)}
	tw.heavyFiles = append(tw.heavyFiles, hf)
	go func() {
		defer func() { <-j.heavySlots }()
		s := j.loader.NewStream(j.tableBytes)
		s.OnTable = tw.heavy.OnTable
		var err error
		for b := range hf.blocks {
			if err == nil {
				err = s.Add(b.key, b.value)
			}
		}
		if err == nil {
			err = s.Close()
		}
		hf.err <- err
	}()
	return hf
}

// add hands one block to the file's goroutine (copies of key and value);
// an error of its stream comes from waitHeavy.
func (hf *heavyFile) add(k store.Key, value []byte) {
	hf.blocks <- heavyBlock{key: store.AppendKey(nil, k), value: bytes.Clone(value)}
}

// close says the file's blocks are all added.
func (hf *heavyFile) close() { close(hf.blocks) }

// waitHeavy waits for the task's heavyFiles (closed by then) and returns
// the first error.
func (tw *taskWriter) waitHeavy() error {
	var first error
	for _, hf := range tw.heavyFiles {
		if err := <-hf.err; first == nil {
			first = err
		}
	}
	tw.heavyFiles = nil
	return first
}
