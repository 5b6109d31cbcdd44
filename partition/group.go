package partition

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/userhash"
)

// Grouper groups one file's rows by key through disk, with partition's
// own machinery: rows go into the sort buffers (two arenas of memBytes in
// all), each full buffer is sorted and spilled as a run into a scratch
// folder, and Each merges the runs shard range by shard range, handing
// every key's rows over in file order. It is how `mce run` reduces a file
// whose grouped rows do not fit its cluster's share of the RAM limit: the
// memory it needs is the sort buffers and one group's rows, whatever the
// file's size.
//
// Add is safe for concurrent use (one caller per parser goroutine); Each
// runs once, after every Add; Close removes the scratch folder.
type Grouper struct {
	o      GroupOptions
	shards int
	ncols  int
	srt    *sorter
	slabs  sync.Pool
	runs   int
}

// GroupOptions configure a Grouper.
type GroupOptions struct {
	// Dir is the scratch folder to make (it must not exist); Close
	// removes it.
	Dir string
	// Schema and Encoding describe the rows.
	Schema   *feature.Schema
	Encoding feature.Encoding
	// MemBytes is the sort buffers' size in all; CPUs sort a spill.
	MemBytes int64
	CPUs     int
	// InputBytes is about how many bytes of rows will be added (0: not
	// known), for spillCompressed.
	InputBytes int64
	Logger     *slog.Logger
}

// GroupShards is how many hash shards a Grouper cuts keys into (the
// shard numbers Each passes): enough ranges to spread over many CPUs.
const GroupShards = 256

// NewGrouper makes a Grouper.
func NewGrouper(o GroupOptions) (*Grouper, error) {
	if err := os.Mkdir(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spill folder: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	g := &Grouper{o: o, shards: GroupShards, ncols: o.Schema.Len()}
	// Two arenas (one filling while the other spills), spilled at
	// spillFill, as in partition: Each merges every run at once on each
	// of its workers. InputBytes, an estimate of the rows' bytes, stands
	// for the raw bytes there (it is more: fewer, bigger runs).
	compress := spillMode(vfs.Default, o.Dir, o.InputBytes, o.Logger, "rows grouped through disk")
	arena := max(o.MemBytes/2, 8<<20)
	cpus := max(o.CPUs, 1)
	g.srt = newSorter(vfs.Default, o.Dir, g.shards, cpus, arena, spillFill(arena, o.MemBytes, o.InputBytes, cpus), o.Logger, nil, compress)
	return g, nil
}

// Row is one row for Add.
type Row struct {
	// Key is the grouping key (the user, or what a Map step returned, as
	// UTF-8).
	Key []byte
	// Line is the row's line in the file: the order within a key.
	Line int64
	// Fields are the row's fields in schema order, as read.
	Fields [][]byte
}

// Add adds rows to the sort buffers, blocking while both are full.
func (g *Grouper) Add(ctx context.Context, rows []Row) error {
	sl, _ := g.slabs.Get().(*slab)
	if sl == nil {
		sl = &slab{}
	}
	defer g.slabs.Put(sl)
	sl.reset()
	userCol := g.o.Schema.User()
	fields := make([][]byte, 0, g.ncols)
	for _, r := range rows {
		var raw []byte
		if u := r.Fields[userCol]; string(u) != string(r.Key) {
			raw = u // the user field as written (a re-keyed row, or cp1252)
		}
		fields = fields[:0]
		for c, f := range r.Fields {
			if c != userCol {
				fields = append(fields, f)
			}
		}
		sl.add(int(userhash.Sum(r.Key)%uint64(g.shards)), 0, r.Line, r.Key, raw, fields)
	}
	return g.srt.add(ctx, sl)
}

// Runs returns how many sorted runs went to disk (after Each): 0 when
// every row fitted the sort buffers.
func (g *Grouper) Runs() int { return g.runs }

// Each merges the runs and calls fn for every key, on workers goroutines
// (w is the goroutine's number, shard the key's hash shard): within a
// shard the keys come in byte order, and a key's rows in file order. The
// key and the rows are valid during the call only. The first error (of fn
// or of the runs) stops every goroutine and is returned.
func (g *Grouper) Each(ctx context.Context, workers int, fn func(w, shard int, key []byte, rows feature.Rows) error) error {
	paths, last, err := g.srt.finish()
	g.srt, g.runs = nil, len(paths)
	var runs []*run
	defer func() {
		for _, r := range runs {
			r.close()
		}
	}()
	if last != nil {
		runs = append(runs, memRun(last, g.shards))
	}
	if err != nil {
		return err
	}
	for _, p := range paths {
		r, err := openRun(vfs.Default, p, g.shards)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	tasks := planTasks(runs, g.shards, workers)
	next := make(chan task, len(tasks))
	for _, t := range tasks {
		next <- t
	}
	close(next)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := range next {
				if err := g.eachIn(ctx, runs, t, w, fn); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// eachIn is Each over one shard range.
func (g *Grouper) eachIn(ctx context.Context, runs []*run, t task, w int, fn func(w, shard int, key []byte, rows feature.Rows) error) error {
	readers := make([]*runReader, 0, len(runs))
	for _, r := range runs {
		readers = append(readers, r.reader(t.lo, t.hi))
	}
	m, err := newGroupMerge(readers)
	if err != nil {
		return err
	}
	rows := &groupRows{m: m, userCol: g.o.Schema.User(), fields: make([][]byte, g.ncols)}
	rows.row.Schema, rows.row.Encoding = g.o.Schema, g.o.Encoding
	for n := 0; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		ok, err := m.nextGroup()
		if err != nil || !ok {
			return err
		}
		rows.err = nil
		if err := fn(w, m.shard, m.user, rows); err != nil {
			return err
		}
		if rows.err != nil {
			return rows.err
		}
	}
}

// Close removes the scratch folder (and stops the sorter if Each did not
// run).
func (g *Grouper) Close() error {
	if g.srt != nil {
		g.srt.abort()
		g.srt = nil
	}
	return os.RemoveAll(g.o.Dir)
}

// groupRows is a feature.Rows over the merge's current group.
type groupRows struct {
	m       *groupMerge
	userCol int
	fields  [][]byte
	row     feature.Row
	err     error
}

// Next implements feature.Rows.
func (r *groupRows) Next() bool {
	if r.err != nil {
		return false
	}
	ok, err := r.m.nextRow()
	if err != nil || !ok {
		r.err = err
		return false
	}
	rr := r.m.cur
	fields, err := decodeValue(rr.val, r.m.user, r.userCol, r.fields)
	if err != nil {
		r.err = fmt.Errorf("spilled run %s: %w", rr.r.path, err)
		return false
	}
	r.row.Fields = fields
	return true
}

// Row implements feature.Rows.
func (r *groupRows) Row() *feature.Row { return &r.row }

// Err implements feature.Rows.
func (r *groupRows) Err() error { return r.err }

// Schema implements feature.Rows.
func (r *groupRows) Schema() *feature.Schema { return r.row.Schema }
