package partition

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/internal/fileid"
	"github.com/mce-engine/mce/internal/hugemem"
	"github.com/mce-engine/mce/internal/procfs"
	"github.com/mce-engine/mce/internal/userhash"
	"github.com/mce-engine/mce/store"
)

// File statuses in a Result.
const (
	StatusIngested = "ingested"
	StatusReplaced = "replaced" // ingested after deleting an older content
	StatusSkipped  = "skipped"  // already in the store, unchanged
	StatusFailed   = "failed"
)

// FileResult is what happened to one input file.
type FileResult struct {
	Name      string
	Path      string
	Status    string
	ID        store.FileID // 0 unless ingested (or skipped: the stored file's)
	Rows      int64
	BadRows   int64
	RawBytes  int64 // uncompressed bytes read
	DiskBytes int64
	Err       error // why it failed
}

// Result says what a Run did.
type Result struct {
	Store string
	Files []FileResult // in input order: largest first
	// Of the files ingested by this run:
	Ingested int
	Rows     int64
	// BadRows are the rows left out (bad values' rows included);
	// BadValues the amounts and dates that did not read, EmptiedValues
	// those of them emptied in a kept row (--on-bad-value empty).
	BadRows, BadValues, EmptiedValues int64
	RawBytes                          int64 // uncompressed
	DiskBytes                         int64
	// Spilled runs and ingested tables; SpillCompressed says whether the
	// runs that spilled were s2-compressed (spillCompressed).
	Runs            int
	SpillBytes      int64
	SpillCompressed bool
	Tables          int
	NewHeavy        []string
	Skipped         int
	Failed          int
	// Phase durations.
	ReadTime, MergeTime, IngestTime, CompactTime, Elapsed time.Duration
	// PeakRSSBytes is the process's peak resident set (VmHWM) at the end of
	// the run, 0 where the system does not say.
	PeakRSSBytes int64
	// MemBytes is the sort buffer the run used: Options.MemBytes, or the
	// one it picked for the files it read (AutoMemBytes; 0 when it read
	// none).
	MemBytes int64
}

// MBPerSec is the raw (uncompressed) input rate of the run in MB/s.
func (r *Result) MBPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.RawBytes) / 1e6 / r.Elapsed.Seconds()
}

// FilesError reports the input files that failed; the others were
// ingested.
type FilesError struct {
	Failed []FileResult
}

func (e *FilesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d file(s) failed and were not ingested:", len(e.Failed))
	for _, f := range e.Failed {
		fmt.Fprintf(&b, "\n  %s: %v", f.Name, f.Err)
	}
	return b.String()
}

// ErrChanged is wrapped by the error of a file whose content changed since
// it was ingested (without Options.Replace).
var ErrChanged = errors.New("content changed since it was ingested")

// Run partitions the input files into the store: it ingests new files,
// skips files already ingested unchanged, and fails (or with Replace,
// replaces) files whose content changed. A file that fails is not
// recorded; the others are ingested, and Run returns a *FilesError naming
// the failures.
func Run(ctx context.Context, o Options) (*Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	ins, err := listInputs(o.Inputs)
	if err != nil {
		return nil, err
	}
	if len(ins) == 0 {
		return nil, fmt.Errorf("no data files (.csv .tsv .txt, optionally .gz or .zst) in %s", strings.Join(o.Inputs, ", "))
	}
	p := &job{o: o, log: o.Logger, crash: newCrasher(o.CrashAt), res: &Result{Store: o.Store, MemBytes: o.MemBytes}}
	defer func() { p.res.Elapsed = time.Since(t0) }()
	if err := p.open(); err != nil {
		return nil, err
	}
	defer p.db.Close()
	if err := p.finishDeletions(ctx); err != nil {
		return nil, err
	}
	todo, err := p.classify(ctx, ins)
	if err != nil {
		return nil, err
	}
	if len(todo) > 0 {
		if err := p.ingest(ctx, todo); err != nil {
			return p.res, err
		}
	}
	p.res.PeakRSSBytes = procfs.PeakRSS()
	p.res.Elapsed = time.Since(t0)
	p.log.Info("partition done", "store", o.Store, "ingested", p.res.Ingested, "skipped", p.res.Skipped,
		"failed", p.res.Failed, "rows", p.res.Rows, "raw_mb", p.res.RawBytes/1e6,
		"mb_per_s", fmt.Sprintf("%.1f", p.res.MBPerSec()), "peak_rss_mib", p.res.PeakRSSBytes>>20,
		"took", p.res.Elapsed.Round(time.Millisecond))
	var failed []FileResult
	for _, f := range p.res.Files {
		if f.Status == StatusFailed {
			failed = append(failed, f)
		}
	}
	if len(failed) > 0 {
		return p.res, &FilesError{Failed: failed}
	}
	return p.res, nil
}

type job struct {
	o     Options
	log   *slog.Logger
	crash *crasher
	db    *store.DB
	res   *Result
	comp  store.Compression
}

func (p *job) open() error {
	schema := p.o.Read.Schema
	if schema == nil {
		schema = feature.InvoiceSchema
	}
	cfg := store.Config{
		Schema: slices.Clone(schema.Columns()), UserColumn: schema.UserName(),
		Codec: p.o.Codec, Shards: p.o.Shards, BlockBytes: p.o.BlockBytes,
	}
	db, err := store.Open(p.o.Store, &store.Options{Create: &cfg, Logger: p.log, Concurrency: p.o.CPUs, CacheBytes: 8 << 20, FS: p.o.FS})
	if err != nil {
		return err
	}
	have := db.Config()
	if !slices.Equal(have.Schema, cfg.Schema) || have.UserColumn != cfg.UserColumn {
		db.Close()
		return fmt.Errorf("store %s holds rows of columns %v (user %s); this run reads %v (user %s)",
			p.o.Store, have.Schema, have.UserColumn, cfg.Schema, cfg.UserColumn)
	}
	codec := have.Codec
	if p.o.Codec != "" {
		codec = p.o.Codec
	}
	if p.comp, err = store.ParseCompression(codec); err != nil {
		db.Close()
		return fmt.Errorf("store %s: %w", p.o.Store, err)
	}
	p.db = db
	return nil
}

// finishDeletions completes --replace deletions a killed run left.
func (p *job) finishDeletions(ctx context.Context) error {
	for _, f := range p.db.Deleting() {
		p.log.Info("finishing the deletion of a replaced file", "file", f.Name, "id", f.ID)
		if _, err := p.db.DeleteFile(ctx, f.ID); err != nil {
			return fmt.Errorf("delete old rows of %s: %w", f.Name, err)
		}
	}
	return nil
}

// todoFile is a file to ingest.
type todoFile struct {
	in  input
	fp  string
	res *FileResult
	id  store.FileID
	csv *csvread.File
	st  csvread.Stats
}

// classify decides for each input: skip, ingest, replace or fail. It
// deletes the old rows of files being replaced.
func (p *job) classify(ctx context.Context, ins []input) ([]*todoFile, error) {
	var todo []*todoFile
	p.res.Files = make([]FileResult, len(ins))
	for i, in := range ins {
		r := &p.res.Files[i]
		*r = FileResult{Name: in.name, Path: in.path, DiskBytes: in.size}
		old, exists := p.db.FileByName(in.name)
		kind := fpSampled
		if p.o.FullHash {
			kind = fpFull
		}
		if exists {
			kind = fingerprintKind(old.Fingerprint)
		}
		fp, err := Fingerprint(in.path, kind)
		if err != nil {
			r.Status, r.Err = StatusFailed, err
			p.res.Failed++
			continue
		}
		switch {
		case exists && old.Fingerprint == fp:
			r.Status, r.ID, r.Rows, r.BadRows, r.RawBytes = StatusSkipped, old.ID, old.Rows, old.BadRows, old.RawBytes
			p.res.Skipped++
			p.log.Info("file unchanged; skipped", "file", in.name, "id", old.ID)
			continue
		case exists && !p.o.Replace:
			r.Status = StatusFailed
			r.Err = fmt.Errorf("%w (fingerprint %s, now %s; size %d, now %d); rerun with --replace to replace its rows",
				ErrChanged, old.Fingerprint, fp, old.Size, in.size)
			p.res.Failed++
			p.log.Error("file changed since it was ingested", "file", in.name, "err", r.Err)
			continue
		case exists:
			p.log.Info("file changed; deleting its old rows", "file", in.name, "id", old.ID)
			if err := p.db.MarkDeleting(old.ID); err != nil {
				return nil, err
			}
			p.crash.point("delete")
			n, err := p.db.DeleteFile(ctx, old.ID)
			if err != nil {
				return nil, fmt.Errorf("delete old rows of %s: %w", in.name, err)
			}
			p.log.Info("old rows deleted", "file", in.name, "users", n)
			r.Status = StatusReplaced
		}
		todo = append(todo, &todoFile{in: in, fp: fp, res: r})
	}
	// IDs follow the names' order (monthly files sort by date), so that a
	// user's rows come in that order.
	byName := slices.Clone(todo)
	sort.Slice(byName, func(i, j int) bool { return byName[i].in.name < byName[j].in.name })
	next := p.db.NextFileID()
	for i, t := range byName {
		t.id = next + store.FileID(i)
	}
	return todo, nil
}

// memPlan splits the memory budget.
type memPlan struct {
	filesAtOnce, workersPerFile int
	chunkBytes                  int
	// arenaBytes is each of the two sort buffers' size (its records and
	// their entries), fillBytes how much of it is filled before it is
	// spilled (see fillCapBytes).
	arenaBytes, fillBytes int64
}

// fillCapBytes is how much of a sort buffer is filled before it is
// spilled, when the input does not fit one buffer anyway (and when the
// merge can read the more runs that make at once: planMemory): what is
// not filled is never touched. On a 2-core VM, filling the two buffers of
// --mem 256MiB (98 MiB each) to 64 MiB instead of whole made a partition
// 5.6% faster at 300 MB (16 interleaved rounds), 4.6% at 2 GB (5) and
// 3.3% at 10 GB (2), and its peak RSS 294 → 238 MiB at 300 MB: each fresh
// page costs a fault the first time, and a smaller buffer is sorted and
// spilled sooner while the other fills.
const fillCapBytes = 64 << 20

// planMemory splits memBytes for a partition of rawBytes (estimated; 0:
// not known) read on cpus CPUs from files files.
func planMemory(memBytes, rawBytes int64, cpus, files int) memPlan {
	var m memPlan
	m.filesAtOnce = max(1, min(files, cpus/2))
	m.workersPerFile = max(1, cpus/m.filesAtOnce)
	// Each file being read holds about (2·workers+2) chunks in the reader
	// and one slab per worker here; give that an eighth of the budget.
	perChunk := int64(m.filesAtOnce * (3*m.workersPerFile + 2))
	m.chunkBytes = int(min(max(memBytes/8/perChunk, 256<<10), 4<<20))
	readBytes := perChunk*int64(m.chunkBytes) + int64(m.filesAtOnce)*(4<<20)
	const fixed = 24 << 20 // pebble cache, codec state, runtime
	m.arenaBytes = max((memBytes-readBytes-fixed)/2, memBytes/8)
	m.fillBytes = spillFill(m.arenaBytes, memBytes, rawBytes, cpus)
	return m
}

// spillFill is how much of a sort buffer of arenaBytes, out of a budget
// of memBytes, is filled before it is spilled, for about rawBytes of input
// (0: not known) merged on cpus CPUs: the whole buffer when the input fits
// one (or its size is not known), else fillCapBytes, or more when the
// final merge could not read the runs that makes at once on every CPU
// (each run's reader takes readerBytes out of half the budget).
func spillFill(arenaBytes, memBytes, rawBytes int64, cpus int) int64 {
	if rawBytes <= 0 || float64(rawBytes)/rawPerArenaByte <= float64(arenaBytes) {
		return arenaBytes
	}
	fill := min(arenaBytes, fillCapBytes)
	for fill < arenaBytes && estimatedRuns(rawBytes, fill)*int64(max(cpus, 1)) > int64(mergeReaders(memBytes)) {
		fill = min(arenaBytes, fill+8<<20)
	}
	return fill
}

// ingest reads, sorts, merges and ingests the files of todo, in four
// steps: read (every file into sorted runs), merge (the runs into
// sstables of blocks), ingest (the tables with the file records, in one
// atomic pebble Ingest, then MANIFEST.json) and compact (when readers
// merge too many layers); then it records the results.
func (p *job) ingest(ctx context.Context, todo []*todoFile) error {
	var inputBytes int64 // raw, estimated for compressed files
	for _, t := range todo {
		inputBytes += fileid.RawEstimate(t.in.path, t.in.size)
	}
	if p.o.MemBytes == 0 {
		p.o.MemBytes = AutoMemBytes(inputBytes, p.o.CPUs, len(todo), cmp.Or(p.o.Read.MaxRowBytes, csvread.DefaultMaxRowBytes))
		p.res.MemBytes = p.o.MemBytes
		p.log.Info("sort buffer picked for the files to read (--mem)", "mem_mib", p.o.MemBytes>>20, "inputs_mb", inputBytes/1e6)
	}
	// The sort buffers (--mem) grow into memory advised for huge pages:
	// their page faults were a sixth of partition's CPU time.
	hugemem.AdviseHeap(p.o.MemBytes + 64<<20)
	plan := planMemory(p.o.MemBytes, inputBytes, p.o.CPUs, len(todo))
	p.log.Info("partition plan", "files", len(todo), "files_at_once", plan.filesAtOnce, "workers_per_file", plan.workersPerFile,
		"sort_buffer_mib", 2*plan.arenaBytes>>20, "spill_at_mib", plan.fillBytes>>20, "chunk_kib", plan.chunkBytes>>10, "codec", p.comp)

	runDir, err := p.db.TempDir("runs")
	if err != nil {
		return err
	}
	defer p.db.FS().RemoveAll(runDir)
	offHeap, restore := p.heapLimit()
	defer restore()

	runPaths, lastRun, err := p.read(ctx, todo, inputBytes, plan, runDir, offHeap)
	if err != nil {
		return err
	}
	failed := map[uint32]bool{}
	var good []*todoFile
	for _, t := range todo {
		if t.res.Status == StatusFailed {
			failed[uint32(t.id)] = true
			p.res.Failed++
		} else {
			good = append(good, t)
		}
	}
	if len(good) == 0 {
		if lastRun != nil {
			lastRun.close()
		}
		return nil
	}
	loader, err := p.db.NewLoader(p.comp)
	if err != nil {
		if lastRun != nil {
			lastRun.close()
		}
		return err
	}
	defer loader.Close()
	st, err := p.merge(ctx, loader, good, failed, runPaths, lastRun, runDir)
	if err != nil {
		return err
	}
	// The spilled runs are read: they go while the tables are ingested,
	// which mostly waits on fsyncs. Unlinking a run of tens of MB takes a
	// few ms of the kernel's time, and they went one by one at the end.
	// (The RemoveAll deferred above is for the returns before this one.)
	removed := make(chan struct{})
	go func() {
		defer close(removed)
		p.db.FS().RemoveAll(runDir)
	}()
	defer func() { <-removed }()
	if err := p.commit(ctx, loader, good, st); err != nil {
		return err
	}
	if err := p.compact(ctx); err != nil {
		return err
	}
	p.recordIngested(good, st)
	return nil
}

// heapLimit returns offHeap, which tells the Go memory limit (with
// LimitHeap) how many bytes of the budget are held outside the Go heap,
// and restore, which puts the limit back.
func (p *job) heapLimit() (offHeap func(int64), restore func()) {
	if !p.o.LimitHeap {
		return func(int64) {}, func() {}
	}
	// The sort buffers live outside the Go heap: the heap gets the rest of
	// the budget while they exist, then all of it but the in-memory run's
	// arena for the merge. (RSS adds ~16 MiB outside the Go heap: code,
	// stacks, cgo.)
	whole := p.o.MemBytes + p.o.MemBytes/16 + 16<<20
	before := debug.SetMemoryLimit(-1)
	return func(n int64) { debug.SetMemoryLimit(max(whole-n, 64<<20)) },
		func() { debug.SetMemoryLimit(before) }
}

// read reads every file of todo (inputBytes in all, raw) into the sorter
// and returns the paths of the spilled runs and the last, in-memory run
// (nil when none). A file
// that fails is marked failed; an error of the sorter or the context
// stops the whole read.
func (p *job) read(ctx context.Context, todo []*todoFile, inputBytes int64, plan memPlan, runDir string, offHeap func(int64)) ([]string, *run, error) {
	cfg := p.db.Config()
	userCol, ncols, shards := cfg.UserIndex(), len(cfg.Schema), cfg.Shards
	t0 := time.Now()
	compress := spillMode(p.db.FS(), runDir, inputBytes, p.log, "rows that do not fit --mem")
	p.res.SpillCompressed = compress
	srt := newSorter(p.db.FS(), runDir, shards, p.o.CPUs, plan.arenaBytes, plan.fillBytes, p.log, p.crash, compress)
	offHeap(2 * int64(srt.bufBytes))
	readOpts := p.o.Read
	if readOpts.ChunkBytes == 0 {
		readOpts.ChunkBytes = plan.chunkBytes
	}
	// One slab per parser goroutine at most; a free list (not a
	// sync.Pool, which drops them at every GC) keeps their buffers grown.
	slabs := make(chan *slab, plan.filesAtOnce*plan.workersPerFile+1)
	sem := make(chan struct{}, plan.filesAtOnce)
	var wg sync.WaitGroup
	var fatalMu sync.Mutex
	var fatal error
	for _, t := range todo {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(t *todoFile) {
			defer wg.Done()
			defer func() { <-sem }()
			err := p.readFile(ctx, t, readOpts, plan.workersPerFile, srt, slabs, shards, userCol, ncols)
			if err == nil {
				return
			}
			if srtErr := srt.failure(); srtErr != nil || ctx.Err() != nil {
				fatalMu.Lock()
				if fatal == nil {
					fatal = errors.Join(srtErr, ctx.Err())
				}
				fatalMu.Unlock()
				return
			}
			t.res.Status, t.res.Err = StatusFailed, err
			p.log.Error("file failed; it is not ingested", "file", t.in.name, "err", err)
		}(t)
	}
	wg.Wait()
	if fatal != nil || ctx.Err() != nil {
		srt.abort()
		return nil, nil, errors.Join(fatal, ctx.Err())
	}
	runPaths, last, err := srt.finish()
	offHeap(0)
	var lastRun *run
	if last != nil {
		offHeap(int64(cap(last.buf)))
		lastRun = memRun(last, shards)
	}
	if err != nil {
		if lastRun != nil {
			lastRun.close()
		}
		return nil, nil, fmt.Errorf("sort: %w", err)
	}
	p.res.Runs, p.res.SpillBytes = len(runPaths), srt.spillBytes
	if lastRun != nil {
		p.res.Runs++
	}
	srt = nil
	debug.FreeOSMemory() // the sort buffers are garbage now; give them back
	p.res.ReadTime = time.Since(t0)
	return runPaths, lastRun, nil
}

// merge merges the runs (the spilled ones at runPaths and the in-memory
// lastRun, which it closes with the others) into the loader's tables,
// dropping the rows of failed files, and returns what it wrote.
func (p *job) merge(ctx context.Context, loader *store.Loader, good []*todoFile, failed map[uint32]bool,
	runPaths []string, lastRun *run, runDir string) (*mergeStats, error) {
	cfg := p.db.Config()
	shards := cfg.Shards
	t1 := time.Now()
	runs := make([]*run, 0, len(runPaths)+1)
	defer func() {
		for _, r := range runs {
			r.close()
		}
	}()
	for _, path := range runPaths {
		r, err := openRun(p.db.FS(), path, shards)
		if err != nil {
			if lastRun != nil {
				lastRun.close()
			}
			return nil, err
		}
		runs = append(runs, r)
	}
	if lastRun != nil {
		runs = append(runs, lastRun) // closed with the others
	}
	var total int64
	for _, t := range good {
		total += t.st.Rows
	}
	forced := map[string]bool{}
	for _, u := range p.o.HeavyUsers {
		forced[u] = true
	}
	heavyRows := int64(1<<62 - 1)
	if p.o.HeavyShare > 0 {
		heavyRows = int64(p.o.HeavyShare * float64(total))
	}
	j := &mergeJob{
		db: p.db, loader: loader, schemaCols: len(cfg.Schema), userCol: cfg.UserIndex(),
		blockBytes: cfg.BlockBytes, codec: p.comp.Value, failed: failed, forcedHeavy: forced,
		heavyMinRows: p.o.HeavyMinRows, heavyRows: heavyRows, tableBytes: 128 << 20, crash: p.crash,
	}
	// Each merging worker holds a reader per run; half the budget goes to
	// them. Too many runs for that are first merged into fewer.
	maxReaders := mergeReaders(p.o.MemBytes)
	if p.o.maxReaders > 0 {
		maxReaders = p.o.maxReaders
	}
	if len(runs) > maxReaders {
		p.log.Info("too many runs to merge at once; merging them into fewer first", "runs", len(runs), "fan_in", maxReaders)
		var err error
		if runs, err = narrowRuns(ctx, p.db.FS(), runs, maxReaders, runDir, shards); err != nil {
			return nil, fmt.Errorf("merge runs: %w", err)
		}
	}
	j.runs = runs
	workers := max(1, min(p.o.CPUs, maxReaders/max(1, len(runs))))
	j.heavyFileRows = cmp.Or(p.o.heavyFileRows, heavyFileMinRows)
	if j.heavyFileRows > 0 {
		j.heavySlots = make(chan struct{}, workers)
	}
	tasks := planTasks(runs, shards, workers)
	st, err := j.runMerge(ctx, tasks, workers)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	p.res.MergeTime = time.Since(t1)
	p.res.Tables = loader.Tables()
	return st, nil
}

// commit ingests the loader's tables with the records of the good files
// (and of older files whose rows moved to the heavy range) in one atomic
// pebble Ingest, then rewrites MANIFEST.json.
func (p *job) commit(ctx context.Context, loader *store.Loader, good []*todoFile, st *mergeStats) error {
	t2 := time.Now()
	commit := store.Commit{NewHeavy: st.newHeavy}
	now := time.Now().UTC()
	for _, t := range good {
		fs := st.files[t.id]
		if fs == nil {
			fs = &fileStats{}
		}
		if fs.rows != t.st.Rows {
			return fmt.Errorf("BUG: %s: read %d rows but merged %d", t.in.name, t.st.Rows, fs.rows)
		}
		fe := store.FileEntry{
			ID: t.id, Name: t.in.name, Path: t.in.path, Size: t.in.size, ModTime: t.in.modTime,
			Fingerprint: t.fp, Compression: t.csv.Compression, Delimiter: delimName(t.csv.Delimiter),
			Encoding: t.csv.Encoding.String(), UserHeader: t.csv.UserName(), LocalTimes: t.st.Zoneless(),
			Rows: t.st.Rows, BadRows: t.st.BadRows, RawBytes: t.st.Bytes,
			Users: fs.users, Blocks: fs.blocks, StoredBytes: fs.stored, Codec: p.comp.String(), Ingested: now,
		}
		for _, hp := range fs.heavy {
			fe.Heavy = append(fe.Heavy, *hp)
		}
		sort.Slice(fe.Heavy, func(a, b int) bool { return fe.Heavy[a].User < fe.Heavy[b].User })
		commit.Files = append(commit.Files, fe)
	}
	for id, parts := range st.moved {
		old, ok := p.db.File(id)
		if !ok {
			return fmt.Errorf("BUG: rows of unknown file %d moved to the heavy range", id)
		}
		old.Heavy = append(old.Heavy, parts...)
		sort.Slice(old.Heavy, func(a, b int) bool { return old.Heavy[a].User < old.Heavy[b].User })
		commit.Files = append(commit.Files, old)
	}
	p.crash.point("ingest")
	if err := loader.Ingest(ctx, commit); err != nil {
		return err
	}
	p.crash.point("ingested")
	if err := p.db.WriteManifest(); err != nil {
		return err
	}
	p.res.IngestTime = time.Since(t2)
	return nil
}

// compact compacts the store when asked to, or when readers merge
// CompactLayers layers of tables or more.
func (p *job) compact(ctx context.Context) error {
	layers := p.db.Layers()
	if !p.o.Compact && (p.o.CompactLayers <= 0 || layers < p.o.CompactLayers) {
		return nil
	}
	t3 := time.Now()
	p.log.Info("compacting the store", "layers", layers)
	if err := p.db.Compact(ctx); err != nil {
		return err
	}
	p.res.CompactTime = time.Since(t3)
	p.log.Info("compacted", "layers", p.db.Layers(), "took", p.res.CompactTime.Round(time.Millisecond))
	return nil
}

// recordIngested fills the results of the ingested files and logs them.
func (p *job) recordIngested(good []*todoFile, st *mergeStats) {
	for u := range st.newHeavy {
		p.res.NewHeavy = append(p.res.NewHeavy, u)
	}
	sort.Strings(p.res.NewHeavy)
	for _, t := range good {
		if t.res.Status == "" {
			t.res.Status = StatusIngested
		}
		t.res.ID = t.id
		p.res.Ingested++
		p.res.Rows += t.st.Rows
		p.res.BadRows += t.st.BadRows
		p.res.BadValues += t.st.BadValues
		p.res.EmptiedValues += t.st.EmptiedValues
		p.res.RawBytes += t.st.Bytes
		p.res.DiskBytes += t.in.size
	}
	if len(st.newHeavy) > 0 {
		p.log.Info("heavy users", "new", strings.Join(p.res.NewHeavy, ", "))
	}
	spill := "stored"
	switch {
	case p.res.SpillBytes == 0:
		spill = "none"
	case p.res.SpillCompressed:
		spill = "s2"
	}
	p.log.Info("ingested", "files", len(good), "rows", p.res.Rows, "tables", p.res.Tables, "runs", p.res.Runs,
		"spill_mib", p.res.SpillBytes>>20, "spill", spill, "read", p.res.ReadTime.Round(time.Millisecond),
		"merge", p.res.MergeTime.Round(time.Millisecond), "ingest", p.res.IngestTime.Round(time.Millisecond))
}

// readFile reads one file into the sorter.
func (p *job) readFile(ctx context.Context, t *todoFile, ro csvread.Options, workers int, srt *sorter, slabs chan *slab, shards, userCol, ncols int) error {
	t0 := time.Now()
	f, err := csvread.Open(t.in.path, ro)
	if err != nil {
		return err
	}
	defer f.Close()
	t.csv = f
	id := uint32(t.id)
	p.log.Info("reading", "file", t.in.name, "id", t.id, "mb", t.in.size/1e6, "compression", f.Compression,
		"delimiter", delimName(f.Delimiter), "encoding", f.Encoding)
	st, err := f.Scan(ctx, workers, func(b *csvread.Batch) error {
		var sl *slab
		select {
		case sl = <-slabs:
			sl.reset()
		default:
			sl = &slab{}
		}
		defer func() {
			select {
			case slabs <- sl:
			default:
			}
		}()
		fields := make([][]byte, 0, ncols)
		for i := 0; i < b.Len(); i++ {
			u := b.User(i)
			var rawUser []byte
			if raw := b.Field(i, userCol); !bytes.Equal(raw, u) {
				rawUser = raw
			}
			fields = fields[:0]
			for c := 0; c < ncols; c++ {
				if c != userCol {
					fields = append(fields, b.Field(i, c))
				}
			}
			sl.add(int(userhash.Sum(u)%uint64(shards)), id, b.Line(i), u, rawUser, fields)
		}
		if err := srt.add(ctx, sl); err != nil {
			return err
		}
		p.crash.point("read")
		return nil
	})
	t.st = st
	t.res.Rows, t.res.BadRows, t.res.RawBytes = st.Rows, st.BadRows, st.Bytes
	if err != nil {
		return err
	}
	for _, s := range st.Samples {
		msg := "bad row"
		if errors.Is(s.Err, csvread.ErrValueEmptied) {
			msg = "bad value emptied"
		}
		p.log.Warn(msg, "file", t.in.name, "line", s.Line, "err", s.Err, "text", s.Text)
	}
	if st.ZonedTimes > 0 && st.LocalTimes > 0 {
		p.log.Warn("times with and without a zone: those without are read as UTC (give --tz ZONE to say theirs)",
			"file", t.in.name, "with_zone", st.ZonedTimes, "without_zone", st.LocalTimes)
	}
	p.log.Info("read", "file", t.in.name, "rows", st.Rows, "bad_rows", st.BadRows, "bad_values", st.BadValues,
		"mb", st.Bytes/1e6, "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

func delimName(d byte) string {
	switch d {
	case '\t':
		return "tab"
	case 0:
		return ""
	}
	return string(d)
}
