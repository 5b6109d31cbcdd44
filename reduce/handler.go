package reduce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/internal/gctune"
	"github.com/mce-engine/mce/store"
)

// Task kinds of `mce reduce`. The first phase reads the store (heavy
// users, then shards) into part files; the second merges each output's
// runs into its features file.
const (
	KindRead  = "store-read"
	KindMerge = "store-merge"
)

// PartsDir is the folder of the run directory that holds the part files
// of the first phase. It is removed when every output is complete.
const PartsDir = "reduce-parts"

// storeCacheBytes is the pebble block cache of a cluster: the store is
// read once, in key order, so a cache buys little beyond the index
// blocks, and filling a bigger one costs more than it saves (every cached
// block is memory the process touches for the first time): 16 MiB -> 4
// MiB took the bench's reduce from 1.13 to 1.00 s (1.85 to 1.71 CPU s).
const storeCacheBytes = 4 << 20

// taskArgs is what a task of `mce reduce` needs besides the Spec.
type taskArgs struct {
	Store string `json:"store"`
	// Files are the files read: with Across one section of them all, else
	// one section per file, in this order.
	Files  []fileRef `json:"files"`
	Across bool      `json:"across,omitempty"`
	// Users are the heavy users a KindRead task reads first, and Shards
	// the shards it reads then, largest first (so that its CPUs end
	// together).
	Users  []string `json:"users,omitempty"`
	Shards []int    `json:"shards,omitempty"`
	// DiskPerRaw converts field bytes read into the store bytes the
	// progress view counts against Task.Size.
	DiskPerRaw float64 `json:"disk_per_raw,omitempty"`

	// Section, Parts and BadRows are a KindMerge task's: its output
	// section, the first phase's part files (run-directory relative) and
	// the file's bad rows as partition counted them. Others are the
	// outputs the first merge task also writes (see runMerge).
	// Heavy is a hash of the store's heavy users when the job was
	// planned: a partition in between that moved a user to the heavy
	// range would hide its rows from the shard ranges planned.
	Heavy string `json:"heavy,omitempty"`

	Section int           `json:"section,omitempty"`
	Parts   []string      `json:"parts,omitempty"`
	BadRows int64         `json:"bad_rows,omitempty"`
	Others  []mergeTarget `json:"others,omitempty"`
	// Format is the features files' format, KeyName the name of the
	// output's key column ("": the default) and LocalTimes whether its
	// times are written without a zone.
	Format     output.Format `json:"format,omitempty"`
	KeyName    string        `json:"key_name,omitempty"`
	LocalTimes bool          `json:"local_times,omitempty"`
	// TZ is a read task's --tz: the zone of the times the store holds
	// without one.
	TZ string `json:"tz,omitempty"`
	// LocalLines are a read task's sections whose lines it writes with
	// their times' "Z" left out (output.LineFormat): those of CSV files
	// of local times, which their merges then pass as they are.
	LocalLines []int `json:"local_lines,omitempty"`
}

// fileRef names a store file in a plan; the fingerprint catches a store
// that changed under a --resume.
type fileRef struct {
	ID          store.FileID `json:"id"`
	Name        string       `json:"name"`
	Fingerprint string       `json:"fingerprint"`
}

func encodeArgs(a *taskArgs) json.RawMessage {
	b, err := json.Marshal(a)
	if err != nil {
		panic("BUG: encode reduce task args: " + err.Error())
	}
	return b
}

func decodeArgs(t *engine.Task) (*taskArgs, error) {
	a := &taskArgs{}
	if err := json.Unmarshal(t.Args, a); err != nil {
		return nil, fmt.Errorf("task %d (%s): bad arguments: %w", t.ID, t.Kind, err)
	}
	return a, nil
}

// Handlers returns the worker side of `mce reduce`: add them to
// engine.WorkerOptions.Handlers.
func Handlers() map[string]engine.Handler {
	w := &worker{}
	return map[string]engine.Handler{
		KindRead:  engine.HandlerFunc(w.runRead),
		KindMerge: engine.HandlerFunc(w.runMerge),
	}
}

// worker is one cluster's handler state: the part files' footers its
// merge tasks have read.
type worker struct {
	footers footerCache
}

// open opens the store for one task (in a few milliseconds): a cluster
// holds it only while it reads.
func (w *worker) open(path string, env *engine.TaskEnv) (*store.DB, error) {
	return store.Open(path, &store.Options{ReadOnly: true, CacheBytes: storeCacheBytes, Concurrency: env.CPUs, Logger: env.Logger})
}

// readTask is the shared state of a first-phase task.
type readTask struct {
	env  *engine.TaskEnv
	t    *engine.Task
	a    *taskArgs
	db   *store.DB
	spec *feature.Spec
	cols []int
	// decode is the store columns the workers decode (nil: all).
	decode []int
	// decimalsOnly is the store columns of Spec.DecimalsRead.
	decimalsOnly []int
	files        []fileInfo // by FileID
	ids          []store.FileID
	pw           *partWriter
	tz           *time.Location      // --tz; nil: none
	lines        []output.LineFormat // by section

	errOnce sync.Once
	err     error
	stop    atomic.Bool
	// bytes is the field bytes the workers read, for the progress
	// (pumpProgress); each worker adds its own now and then (flush).
	bytes atomic.Int64

	// aggs are the aggregators of heavy users' chunks done with, for the
	// next chunks.
	aggs aggPool
}

// aggPool keeps aggregators a heavy user's chunks are done with, so that
// the next chunks reuse them (Reset) with the memory they hold, where a
// fresh one per chunk took fresh pages for its tables. Only a Resetter
// comes back, and only when nothing else can hold its memory: the one
// that was merged into (after its line is written), or one merged into
// another when feature.MergeCopies says that Merge kept nothing of it.
type aggPool struct {
	mu   sync.Mutex
	free []feature.Aggregator
}

// get returns an aggregator for u: a kept one, Reset, or a new one.
func (p *aggPool) get(spec *feature.Spec, u *feature.User) feature.Aggregator {
	p.mu.Lock()
	n := len(p.free)
	if n == 0 {
		p.mu.Unlock()
		return spec.NewAggregator(u)
	}
	a := p.free[n-1]
	p.free[n-1] = nil
	p.free = p.free[:n-1]
	p.mu.Unlock()
	a.(feature.Resetter).Reset(u)
	return a
}

// put keeps a for a later get, when it is a Resetter.
func (p *aggPool) put(a feature.Aggregator) {
	if _, ok := a.(feature.Resetter); !ok {
		return
	}
	p.mu.Lock()
	p.free = append(p.free, a)
	p.mu.Unlock()
}

// sections returns the number of output sections.
func (rt *readTask) sections() int {
	if rt.a.Across {
		return 1
	}
	return len(rt.a.Files)
}

// sectionOf returns the output section of a file's rows.
func (rt *readTask) sectionOf(id store.FileID) int {
	if rt.a.Across {
		return 0
	}
	if int(id) < len(rt.files) {
		return rt.files[id].section
	}
	return -1
}

// fileName is feature.User.File for a group of file id: its base name, or
// "" across files.
func (rt *readTask) fileName(id store.FileID) string {
	if rt.a.Across || int(id) >= len(rt.files) {
		return ""
	}
	return rt.files[id].name
}

func (rt *readTask) fail(err error) {
	rt.errOnce.Do(func() { rt.err = err })
	rt.stop.Store(true)
}

// iterOptions returns what the task's workers read of the store: the
// packed times' text only for a feature set that reads it (not
// Spec.TimesRead) or with --tz (userRows rewrites the text), the packed
// amounts' text only in the columns the feature set reads as text (not
// in Spec.DecimalsRead), and the rows' source lines only for a Map,
// whose errors name the row's line.
func (rt *readTask) iterOptions() store.IterOptions {
	return store.IterOptions{Files: rt.ids, Columns: rt.decode,
		SecondsOnly: rt.spec.TimesRead && rt.tz == nil, AmountsOnly: rt.decimalsOnly,
		NoLines: rt.spec.Map == nil}
}

// startRead opens the store, checks that it still holds the planned
// files, and creates the task's part file.
func (w *worker) startRead(env *engine.TaskEnv, t *engine.Task) (*readTask, error) {
	a, err := decodeArgs(t)
	if err != nil {
		return nil, err
	}
	db, err := w.open(a.Store, env)
	if err != nil {
		return nil, err
	}
	rt := &readTask{env: env, t: t, a: a, db: db, spec: env.Spec}
	fail := func(err error) (*readTask, error) {
		db.Close()
		return nil, err
	}
	if rt.cols, err = schemaColumns(env.Spec.Schema, db.Config()); err != nil {
		return fail(err)
	}
	rt.decode = readColumns(env.Spec, db.Config())
	rt.decimalsOnly = storeColumns(env.Spec.DecimalsRead, db.Config())
	if a.TZ != "" {
		if rt.tz, err = time.LoadLocation(a.TZ); err != nil {
			return fail(fmt.Errorf("--tz %q: %w", a.TZ, err))
		}
	}
	if rt.files, rt.ids, err = checkFiles(db, a); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(filepath.Join(env.RunDir, PartsDir), 0o755); err != nil {
		return fail(fmt.Errorf("make %s: %w", PartsDir, err))
	}
	out, err := output.CreateScratch(env.OutputPath(t))
	if err != nil {
		return fail(err)
	}
	rt.pw = newPartWriter(out, rt.sections())
	rt.lines = make([]output.LineFormat, rt.sections())
	for _, sec := range a.LocalLines {
		if sec < 0 || sec >= len(rt.lines) {
			return fail(fmt.Errorf("BUG: local lines of section %d, of %d", sec, len(rt.lines)))
		}
		rt.lines[sec].Local = true
	}
	rt.pw.footer.LocalLines = a.LocalLines
	return rt, nil
}

// close aborts the part file unless it was committed and closes the
// store.
func (rt *readTask) close() {
	rt.pw.out.Abort()
	rt.db.Close()
}

// checkFiles looks the plan's files up in the store.
func checkFiles(db *store.DB, a *taskArgs) ([]fileInfo, []store.FileID, error) {
	var maxID store.FileID
	for _, f := range a.Files {
		maxID = max(maxID, f.ID)
	}
	files := make([]fileInfo, maxID+1)
	for i := range files {
		files[i].section = -1
	}
	if a.Heavy != "" && heavySig(db) != a.Heavy {
		return nil, nil, fmt.Errorf("store %s changed since this run was planned: its heavy users are not the same; start a new mce reduce", a.Store)
	}
	ids := make([]store.FileID, 0, len(a.Files))
	for i, f := range a.Files {
		fe, ok := db.File(f.ID)
		if !ok || fe.State != store.FileLive || fe.Name != f.Name || fe.Fingerprint != f.Fingerprint {
			return nil, nil, fmt.Errorf("store %s changed since this run was planned: file %s (id %d) is gone or was replaced; start a new mce reduce", a.Store, f.Name, f.ID)
		}
		enc, err := feature.ParseEncoding(fe.Encoding)
		if err != nil {
			enc = feature.EncodingAuto
		}
		files[f.ID] = fileInfo{id: f.ID, name: filepath.Base(fe.Name), enc: enc, section: i}
		ids = append(ids, f.ID)
	}
	return files, ids, nil
}

// groupWorker is one goroutine's reusable state.
type groupWorker struct {
	rt      *readTask
	rows    *userRows
	rec     *feature.Record
	reducer *feature.Reducer
	user    feature.User
	line    []byte
	scratch []byte
	stats   []sectionStats
	// blk is where this worker's store iterators (one at a time: a shard,
	// a heavy user's chunk) decode their blocks, with buffers kept from
	// one to the next.
	blk *store.Block
	// cols is the scratch of feature.AddRows.
	cols feature.Columns
	// bytes and users are this worker's progress since its last flush:
	// counters all the workers shared, added to on every group, cost
	// their cache line's trips between the CPUs.
	bytes, users int64
}

// flushEvery is how many groups a worker reduces between two flushes of
// its progress (and checks of rt.stop).
const flushEvery = 64

// flush adds the worker's progress to the task's.
func (g *groupWorker) flush() {
	if g.bytes != 0 {
		g.rt.bytes.Add(g.bytes)
	}
	if g.users != 0 {
		g.rt.env.Progress.UsersDone.Add(g.users)
	}
	g.bytes, g.users = 0, 0
}

func (rt *readTask) newGroupWorker() *groupWorker {
	rows := newUserRows(rt.spec, rt.env.Params, rt.cols, rt.files)
	rows.setZone(rt.tz)
	return &groupWorker{
		rt:      rt,
		rows:    rows,
		rec:     rt.spec.NewRecord(),
		reducer: rt.spec.NewReducer(),
		user:    feature.User{Params: rt.env.Params},
		stats:   make([]sectionStats, rt.sections()),
		blk:     new(store.Block),
	}
}

// count moves the rows' counters into section sec's stats.
func (g *groupWorker) count(sec int) {
	r := g.rows
	r.bytes = r.src.Bytes()
	st := &g.stats[sec]
	st.Rows += r.rows
	st.Dropped += r.dropped
	st.Bytes += r.bytes
	g.bytes += r.bytes
	r.rows, r.dropped, r.bytes = 0, 0, 0
}

// groupOutcome is what became of one group.
type groupOutcome int

const (
	groupLine    groupOutcome = iota // a features line was made (g.line)
	groupEmpty                       // Map dropped every row: no line
	groupFailed                      // the section failed (recorded)
	groupStopped                     // the task failed (recorded)
)

// reduceGroup runs the feature function on one group's rows (src) and
// leaves its features line in g.line.
func (g *groupWorker) reduceGroup(src *store.Rows, user []byte, file store.FileID, sec int) groupOutcome {
	rt := g.rt
	r := g.rows
	r.reset(src, user)
	defer g.count(sec)
	if !r.prime() {
		if r.err != nil {
			return g.failure(sec, user, r.err, nil)
		}
		return groupEmpty
	}
	g.user.Key, g.user.File = user, rt.fileName(file)
	err := g.reducer.ReduceUser(&g.user, r, g.rec)
	if r.err != nil || err != nil {
		return g.failure(sec, user, r.err, err)
	}
	g.line, g.scratch = rt.lines[sec].AppendRecord(g.line[:0], g.scratch, user, g.rec)
	return groupLine
}

// failure classifies an error of a group: a store error or a re-keying
// Map fails the task; an error or panic of the feature code (Map, Reduce,
// an Aggregator) fails the section's file, as in `mce run`.
func (g *groupWorker) failure(sec int, user []byte, rowsErr, err error) groupOutcome {
	rt := g.rt
	if rowsErr != nil {
		err = rowsErr
	}
	var se *storeError
	var re *RekeyError
	switch {
	case errors.As(err, &se):
		rt.fail(se.err)
		return groupStopped
	case errors.As(err, &re):
		rt.fail(&engine.TaskError{Input: rt.t.Label(), User: re.User, Line: re.Line, Message: re.Error()})
		return groupStopped
	}
	f := partFailure{Section: sec, User: string(user), Message: err.Error()}
	var me *mapError
	if errors.As(err, &me) {
		f.Line, f.Message = me.line, "map: "+me.err.Error()
	}
	var pe *feature.PanicError
	if errors.As(err, &pe) {
		f.Stack = pe.Stack
	}
	rt.pw.fail(f)
	rt.env.Logger.Debug("user failed", "user", string(user), "section", sec, "error", f.Message)
	return groupFailed
}

// finish ends a first-phase task: the part file is committed unless the
// task failed.
func (rt *readTask) finish(res *engine.Result) (*engine.Result, error) {
	if rt.err != nil {
		rt.pw.out.Abort()
		return nil, rt.err
	}
	if err := rt.pw.finish(); err != nil {
		rt.pw.out.Abort()
		return nil, err
	}
	for _, st := range rt.pw.footer.Stats {
		res.Rows += st.Rows
		res.DroppedRows += st.Dropped
		res.Users += st.Users
		res.Bytes += st.Bytes
	}
	return res, nil
}

// runRead is the KindRead handler: the cluster's CPUs first take the
// task's heavy users piece by piece (see heavyMerger), then its shards one
// at a time, streaming each shard's groups (user and file, or user)
// through the feature function; every shard leaves one sorted run per
// section in the part file, and the heavy users one more. A CPU that
// would have to wait for the heavy merges to catch up reads a shard
// instead.
func (w *worker) runRead(ctx context.Context, env *engine.TaskEnv, t *engine.Task) (*engine.Result, error) {
	// The live heap is a few MiB (blocks, buffers, the aggregates of the
	// users in hand): the collector keeps a fixed headroom over it, a
	// small one where the built-in features take the blocks as columns
	// and make little garbage (gctune.SmallHeadroomBytes). A Map, a
	// user's code run on every row, keeps the large one.
	headroom := int64(gctune.MaxHeadroomBytes)
	if env.Spec.TakesColumns() && env.Spec.Map == nil {
		headroom = gctune.SmallHeadroomBytes
	}
	defer gctune.StartWith(headroom)()
	rt, err := w.startRead(env, t)
	if err != nil {
		return nil, err
	}
	defer rt.close()
	shards := rt.a.Shards
	for _, s := range shards {
		if s < 0 || s >= rt.db.Shards() {
			return nil, fmt.Errorf("shard %d out of the store's %d", s, rt.db.Shards())
		}
	}
	cpus := max(env.CPUs, 1)
	var m *heavyMerger
	split := 0
	if len(rt.a.Users) > 0 {
		items, groups, n, err := rt.heavyPlan()
		if err != nil {
			return nil, err
		}
		split = n
		m = &heavyMerger{rt: rt, items: items, groups: groups, results: make([]heavyResult, len(items)),
			slots: make(chan struct{}, cpus+2)}
	}
	p := env.Progress
	p.Phase.Store("read")
	start := time.Now()
	stopProgress := rt.pumpProgress(p)
	defer stopProgress()

	var nextShard, nextItem atomic.Int64
	busy := make([]time.Duration, cpus)
	var wg sync.WaitGroup
	for wi := range busy {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { busy[wi] = time.Since(start) }()
			g := rt.newGroupWorker()
			sink := newLineSink(rt.pw, rt.sections())
			shardsLeft := true
			for !rt.stop.Load() {
				if err := ctx.Err(); err != nil {
					rt.fail(err)
					return
				}
				if m != nil && int(nextItem.Load()) < len(m.items) {
					// NB: take a slot before an item, so that the item at
					// the head of each group is always in a worker's hands.
					got := false
					if shardsLeft {
						select {
						case m.slots <- struct{}{}:
							got = true
						default:
						}
					} else {
						select {
						case m.slots <- struct{}{}:
							got = true
						case <-ctx.Done():
							continue
						}
					}
					if got {
						if i := int(nextItem.Add(1) - 1); i < len(m.items) {
							m.done(i, g.heavyItem(ctx, &m.items[i]))
							g.flush()
						} else {
							<-m.slots
						}
						continue
					}
				}
				if !shardsLeft {
					if m == nil || int(nextItem.Load()) >= len(m.items) {
						break
					}
					continue
				}
				i := int(nextShard.Add(1) - 1)
				if i >= len(shards) {
					shardsLeft = false
					continue
				}
				if err := g.shard(ctx, shards[i], sink); err != nil {
					rt.fail(err)
					break
				}
			}
			rt.pw.addStats(g.stats)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		rt.fail(err)
	}
	if m != nil && rt.err == nil {
		m.write()
	}
	stopProgress()
	mx, mean := maxMean(busy)
	return rt.finish(&engine.Result{
		ReduceSeconds: time.Since(start).Seconds(), WorkerMaxSeconds: mx, WorkerMeanSeconds: mean, SplitUsers: split,
	})
}

// shard reduces every group of one shard into sink.
func (g *groupWorker) shard(ctx context.Context, s int, sink *lineSink) error {
	rt := g.rt
	it, err := rt.db.Users(ctx, rt.db.ShardSpan(s), &store.UsersOptions{
		ByFile: !rt.a.Across, IterOptions: rt.iterOptions(), Block: g.blk,
	})
	if err != nil {
		return fmt.Errorf("shard %d: %w", s, err)
	}
	defer it.Close()
	defer g.flush()
	for n := 0; it.Next(); n++ {
		if n%flushEvery == 0 {
			g.flush()
			if rt.stop.Load() {
				return nil
			}
		}
		sec := rt.sectionOf(it.File())
		if sec < 0 || rt.pw.hasFailed(sec) {
			continue
		}
		switch g.reduceGroup(it.Rows(), it.User(), it.File(), sec) {
		case groupLine:
			g.stats[sec].Users++
			g.users++
			if err := sink.add(sec, it.User(), g.line); err != nil {
				return err
			}
		case groupStopped:
			return nil
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("shard %d: %w", s, err)
	}
	return sink.endRuns()
}

// pumpProgress copies the task's counters into p until the returned
// function is called (more than once is fine).
func (rt *readTask) pumpProgress(p *engine.Progress) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			b := rt.bytes.Load()
			p.Bytes.Store(b)
			p.DiskBytes.Store(min(int64(float64(b)*rt.a.DiskPerRaw), rt.t.Size))
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(stop); <-done }) }
}

func maxMean(d []time.Duration) (mx, mean float64) {
	if len(d) == 0 {
		return 0, 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
		mx = max(mx, x.Seconds())
	}
	return mx, (sum / time.Duration(len(d))).Seconds()
}

// heavyItem is one piece of the work on heavy users: a chunk of a user's rows
// in one file (a mergeable Spec), or a whole group (user and file, or
// user).
type heavyItem struct {
	user  string
	file  store.FileID // the chunk's or the group's file; 0 across files
	sec   int
	group int // the output line the item is part of
	chunk *store.Chunk
}

// heavyResult is what an item leaves for its group's merge.
type heavyResult struct {
	ready bool
	out   groupOutcome
	agg   feature.Aggregator // of a chunk
	line  []byte             // of a whole group
	stats sectionStats       // rows read (Users unset)
}

// heavyGroup is one output line of the heavy users of a read task: items [first, last],
// merged in order by whichever worker completes the item at its head.
type heavyGroup struct {
	user        string
	sec         int
	first, last int

	mu      sync.Mutex
	next    int  // the first item not merged yet
	folding bool // a worker is merging this group's ready items

	// Owned by the worker that is folding.
	acc    feature.Aggregator
	kept   int64
	failed bool
	line   []byte // the result, once the last item is merged
}

// heavyPlan lists the items of the task's heavy users (users in key
// order, then files in ingest order, then chunks) and their groups.
func (rt *readTask) heavyPlan() ([]heavyItem, []*heavyGroup, int, error) {
	want := map[string]bool{}
	for _, u := range rt.a.Users {
		want[u] = true
	}
	var hs []store.HeavyUser
	for _, h := range rt.db.HeavyUsers() {
		if want[h.User] {
			hs = append(hs, h)
			delete(want, h.User)
		}
	}
	if len(want) > 0 {
		var missing []string
		for u := range want {
			missing = append(missing, u)
		}
		sort.Strings(missing)
		return nil, nil, 0, fmt.Errorf("store %s changed since this run was planned: heavy users %q are gone; start a new mce reduce", rt.a.Store, missing)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].User < hs[j].User })
	selected := func(id store.FileID) bool { return int(id) < len(rt.files) && rt.files[id].section >= 0 }
	var items []heavyItem
	var groups []*heavyGroup
	add := func(it heavyItem, newGroup bool) {
		if newGroup || len(groups) == 0 {
			groups = append(groups, &heavyGroup{user: it.user, sec: it.sec, first: len(items), next: len(items)})
		}
		g := groups[len(groups)-1]
		it.group = len(groups) - 1
		g.last = len(items)
		items = append(items, it)
	}
	split := 0
	for _, h := range hs {
		switch {
		case rt.spec.Mergeable():
			chunks := rt.db.Chunks(h, selected)
			if len(chunks) > 1 {
				split++
			}
			for i := range chunks {
				c := &chunks[i]
				add(heavyItem{user: h.User, file: c.File, sec: rt.sectionOf(c.File), chunk: c},
					i == 0 || (!rt.a.Across && c.File != chunks[i-1].File))
			}
		case rt.a.Across:
			add(heavyItem{user: h.User}, true)
		default:
			for _, f := range h.Files {
				if selected(f.File) {
					add(heavyItem{user: h.User, file: f.File, sec: rt.sectionOf(f.File)}, true)
				}
			}
		}
	}
	return items, groups, split, nil
}

// heavyItem computes one item.
func (g *groupWorker) heavyItem(ctx context.Context, it *heavyItem) heavyResult {
	rt := g.rt
	user := []byte(it.user)
	res := heavyResult{out: groupEmpty}
	before := g.stats[it.sec]
	var span store.Span
	opts := &store.UsersOptions{ByFile: !rt.a.Across, IterOptions: rt.iterOptions(), Block: g.blk}
	switch {
	case it.chunk != nil:
		span, opts.ByFile = it.chunk.Span, true
	case rt.a.Across:
		span = rt.db.UserSpan(user)
	default:
		span = rt.db.UserSpan(user)
		opts.Files = []store.FileID{it.file}
	}
	ui, err := rt.db.Users(ctx, span, opts)
	if err != nil {
		rt.fail(fmt.Errorf("heavy user %q: %w", it.user, err))
		return heavyResult{ready: true, out: groupStopped}
	}
	defer ui.Close()
	// A chunk, or one user's rows (in one file), is one group.
	if ui.Next() {
		if it.chunk != nil {
			res.agg, res.out = g.aggregateChunk(ui.Rows(), user, it)
		} else if res.out = g.reduceGroup(ui.Rows(), user, ui.File(), it.sec); res.out == groupLine {
			res.line = slices.Clone(g.line)
		}
	}
	if err := ui.Err(); err != nil && res.out != groupStopped {
		rt.fail(fmt.Errorf("heavy user %q: %w", it.user, err))
		res.out = groupStopped
	}
	res.ready = true
	// The item's rows are counted with its group (heavyMerger.write), not
	// with this worker's shards.
	res.stats = g.stats[it.sec].minus(before)
	g.stats[it.sec] = before
	return res
}

// aggregateChunk feeds one chunk of a heavy user to an Aggregator of its
// own (a new one, or one an earlier chunk is done with).
func (g *groupWorker) aggregateChunk(src *store.Rows, user []byte, it *heavyItem) (feature.Aggregator, groupOutcome) {
	r := g.rows
	r.reset(src, user)
	defer g.count(it.sec)
	u := &feature.User{Key: user, File: g.rt.fileName(it.file), Params: g.rt.env.Params}
	var agg feature.Aggregator
	err := feature.Guard(func() error {
		agg = g.rt.aggs.get(g.rt.spec, u)
		return feature.AddRows(agg, r, &g.cols)
	})
	if r.err != nil || err != nil {
		return nil, g.failure(it.sec, user, r.err, err)
	}
	return agg, groupLine
}

// heavyMerger merges the results on heavy users group by group, in item
// order.
type heavyMerger struct {
	rt      *readTask
	items   []heavyItem
	groups  []*heavyGroup
	results []heavyResult // an item's result, until merged (then its stats only)
	slots   chan struct{} // items in flight or waiting for their merge
}

// write adds the heavy users' lines, one sorted run per section, and
// their counts.
func (m *heavyMerger) write() {
	rt := m.rt
	sink := newLineSink(rt.pw, rt.sections())
	stats := make([]sectionStats, rt.sections())
	for k := range m.items {
		stats[m.items[k].sec].add(m.results[k].stats)
	}
	defer rt.pw.addStats(stats)
	for _, gr := range m.groups {
		if gr.line == nil || rt.pw.hasFailed(gr.sec) {
			continue
		}
		stats[gr.sec].Users++
		rt.env.Progress.UsersDone.Add(1)
		if err := sink.add(gr.sec, []byte(gr.user), gr.line); err != nil {
			rt.fail(err)
			return
		}
	}
	if err := sink.endRuns(); err != nil {
		rt.fail(err)
	}
}

// done hands in item i's result; when i is at the head of its group, this
// worker merges it and every later item of the group that is ready.
func (m *heavyMerger) done(i int, res heavyResult) {
	gr := m.groups[m.items[i].group]
	gr.mu.Lock()
	m.results[i] = res
	if gr.folding || gr.next != i {
		gr.mu.Unlock()
		return
	}
	gr.folding = true
	for gr.next <= gr.last && m.results[gr.next].ready {
		k := gr.next
		r := m.results[k]
		m.results[k] = heavyResult{ready: true, stats: r.stats} // let the parts go
		gr.mu.Unlock()
		m.fold(gr, &m.items[k], &r)
		<-m.slots
		gr.mu.Lock()
		gr.next++
	}
	gr.folding = false
	gr.mu.Unlock()
}

// fold merges one item into its group; only the group's folding worker
// calls it.
func (m *heavyMerger) fold(gr *heavyGroup, it *heavyItem, res *heavyResult) {
	switch res.out {
	case groupFailed, groupStopped:
		gr.failed = true
	case groupLine:
		gr.kept += res.stats.Rows - res.stats.Dropped
		switch {
		case gr.failed:
		case it.chunk == nil:
			gr.line = res.line
		case gr.acc == nil:
			gr.acc = res.agg
		default:
			acc, part := gr.acc, res.agg
			if err := feature.Guard(func() error { return acc.Merge(part) }); err != nil {
				m.failUser(gr, err)
			} else if feature.MergeCopies(part) {
				m.rt.aggs.put(part)
			}
		}
	}
	if it != &m.items[gr.last] {
		return
	}
	if it.chunk != nil && !gr.failed && gr.acc != nil && gr.kept > 0 {
		acc, rec := gr.acc, m.rt.spec.NewRecord()
		err := feature.Guard(func() error {
			rec.Reset()
			return acc.Finish(rec)
		})
		if err != nil {
			m.failUser(gr, err)
		} else {
			gr.line, _ = m.rt.lines[gr.sec].AppendRecord(nil, nil, []byte(gr.user), rec)
			m.rt.aggs.put(acc)
		}
	}
	if gr.failed {
		gr.line = nil
	}
	gr.acc = nil
}

// failUser records an error of the feature code while merging or
// finishing a heavy user: its file fails.
func (m *heavyMerger) failUser(gr *heavyGroup, err error) {
	gr.failed = true
	f := partFailure{Section: gr.sec, User: gr.user, Message: err.Error()}
	var pe *feature.PanicError
	if errors.As(err, &pe) {
		f.Stack = pe.Stack
	}
	m.rt.pw.fail(f)
}

// heavySig is a hash of the store's heavy users, for taskArgs.Heavy.
func heavySig(db *store.DB) string {
	var users []string
	for _, h := range db.HeavyUsers() {
		users = append(users, h.User)
	}
	sort.Strings(users)
	sum := sha256.Sum256([]byte(strings.Join(users, "\x00")))
	return hex.EncodeToString(sum[:8])
}
