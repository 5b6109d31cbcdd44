package inram

import (
	"cmp"
	"context"
	"encoding/binary"
	"io"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/internal/hugemem"
	"github.com/mce-engine/mce/internal/keyruns"
	"github.com/mce-engine/mce/internal/prefetch"
	"github.com/mce-engine/mce/internal/userhash"
)

const (
	// rangesPerWorker is how many hash ranges (and locks) there are per
	// worker: more ranges than workers, so that two Adds rarely want the
	// same range at once, and a worker that is done early at Finish takes
	// another range.
	rangesPerWorker = 4
	// minSlots is a range's table size when it is made.
	minSlots = 256
	// slotAhead is how many rows ahead Add asks for a row's slot, so that
	// it is in cache when the row's turn comes (the users' slots are all
	// over the table, and the rows come in file order).
	slotAhead = 8
	// aggAhead is how many rows ahead Add asks for a row's aggregate,
	// once its slot is known.
	aggAhead = 8
	// rowAhead is how many rows ahead Add asks for what the row's Add
	// will touch beyond the aggregate (a slotter's Slot), once the
	// aggregate is in cache.
	rowAhead = 4
	// rowRing is how many rows Add keeps filled: more than rowAhead.
	rowRing = 8
)

// slotter is an Aggregator that can say which memory Add(row) will touch
// beyond the aggregator itself (feature.Invoice's receivers), so that the
// one-pass job asks the CPU for it a few rows ahead. Slot must not change
// the aggregator; it may return nil.
type slotter interface {
	Slot(row *feature.Row) unsafe.Pointer
}

// streamJob is the one-pass job of a mergeable Spec: the users'
// aggregates are in one table, cut by the users' userhash.Sum into hash
// ranges, each with a lock. Every goroutine that calls Add sorts its
// batch's rows by range and adds them range by range, holding each
// range's lock for all of the batch's rows in it (a few hundred): no lock
// per row, no copy of a row, and each user one aggregate, whichever
// goroutines read its rows. Goroutines start their round of the ranges at
// different ranges, and put off a range another holds, so that they rarely
// wait. At Finish the workers finish the ranges' users, sort each range by
// key, and the ranges are merged into the output. No row is kept, so the
// file's RAM is its users' aggregates, not its rows.
//
// (Until 2026-12 each goroutine had a table of its own, merged at
// Finish: a user with rows in every goroutine's batches was then an
// aggregate in every table, made, filled and merged once per goroutine,
// which on 16 CPUs made the one pass's CPU time 1.6 times one CPU's.)
type streamJob struct {
	opts  Options
	spec  *feature.Spec
	shift uint // a hash's range is hash >> shift

	ranges []lockedRange

	mu    sync.Mutex
	free  []*addScratch // scratches no Add holds now
	start atomic.Uint32

	rows       atomic.Int64
	dropped    atomic.Int64
	usersTotal atomic.Int64
	usersDone  atomic.Int64
}

// lockedRange is one hash range of the users, with its lock, padded so
// that two ranges' locks are not on one cache line.
type lockedRange struct {
	mu sync.Mutex
	aggRange
	_ [64]byte
}

// addScratch is one Add's working memory, kept between batches.
type addScratch struct {
	hash    []uint64             // per row: its key's keyHash; 0: dropped by Map
	agg     []feature.Aggregator // per row: its user's aggregate, while its range is added
	byRange [][]int32            // per range: the batch's rows in it
	later   []int                // ranges another Add held
	keys    mapKeys
	row     feature.Row          // Map's
	ring    [rowRing]feature.Row // the rows from the one being added on
	user    feature.User
	added   int64 // users made by this batch
}

// aggRange is an open-addressing table with linear probing, at most
// three quarters full, of the users whose hash falls in one range. A slot
// is found by the hash's low bits (the range is its top bits).
type aggRange struct {
	slots []aggSlot // len is a power of two
	n     int
	long  []string // the keys longer than inlineKey
}

// inlineKey is the longest key a slot holds in itself. User ids (RFCs)
// have 12 or 13 bytes; a longer key is kept in the range's long.
const inlineKey = 15

// longKey in aggSlot.n marks a long key; the slot's key bytes hold its
// index in the range's long.
const longKey = 0xff

// aggSlot is one user's aggregate: 32 bytes, so that finding a user costs
// one cache miss, which Add asks for ahead.
type aggSlot struct {
	agg feature.Aggregator // nil: an empty slot
	n   uint8              // the key's length, or longKey
	key [inlineKey]byte
}

// keyBytes returns sl's key; it aliases the slot or the range.
func (r *aggRange) keyBytes(sl *aggSlot) []byte {
	if sl.n == longKey {
		k := r.long[binary.LittleEndian.Uint32(sl.key[:])]
		return unsafe.Slice(unsafe.StringData(k), len(k))
	}
	return sl.key[:sl.n]
}

// keyString returns sl's key; it aliases the slot or the range.
func (r *aggRange) keyString(sl *aggSlot) string {
	if sl.n == longKey {
		return r.long[binary.LittleEndian.Uint32(sl.key[:])]
	}
	return unsafe.String(&sl.key[0], int(sl.n))
}

// lookup returns the slot of the user with hash h and key and true, or
// the empty slot where it goes and false.
func (r *aggRange) lookup(h uint64, key []byte) (*aggSlot, bool) {
	mask := uint64(len(r.slots) - 1)
	long := len(key) > inlineKey
	for i := h & mask; ; i = (i + 1) & mask {
		sl := &r.slots[i]
		switch {
		case sl.agg == nil:
			return sl, false
		case long:
			if sl.n == longKey && r.long[binary.LittleEndian.Uint32(sl.key[:])] == string(key) {
				return sl, true
			}
		case int(sl.n) == len(key) && string(sl.key[:len(key)]) == string(key):
			return sl, true
		}
	}
}

// insert puts a new user into the empty slot lookup returned for it (nil:
// look it up again), growing the table first when it is full; it returns
// the user's slot.
func (r *aggRange) insert(sl *aggSlot, h uint64, key []byte, agg feature.Aggregator) *aggSlot {
	if 4*(r.n+1) > 3*len(r.slots) {
		r.grow()
		sl = nil
	}
	if sl == nil {
		sl, _ = r.lookup(h, key)
	}
	sl.agg = agg
	if len(key) > inlineKey {
		sl.n = longKey
		binary.LittleEndian.PutUint32(sl.key[:], uint32(len(r.long)))
		r.long = append(r.long, string(key))
	} else {
		sl.n = uint8(copy(sl.key[:], key))
	}
	r.n++
	return sl
}

// keyHash is userhash.Table of a user key, for the one pass's ranges (its
// top bits) and tables (its low bits), and for grouping's user index; it
// is never 0, which marks a row Map dropped. The hash never reaches the
// output: the users are sorted by key.
func keyHash(key []byte) uint64 {
	if h := userhash.Table(key); h != 0 {
		return h
	}
	return 1
}

// grow doubles the table.
func (r *aggRange) grow() {
	old := r.slots
	r.slots = hugemem.Cleared[aggSlot](2 * len(old))
	mask := uint64(len(r.slots) - 1)
	for k := range old {
		o := &old[k]
		if o.agg == nil {
			continue
		}
		i := keyHash(r.keyBytes(o)) & mask
		for r.slots[i].agg != nil {
			i = (i + 1) & mask
		}
		r.slots[i] = *o
	}
}

// newStream returns the one-pass job, with rangesPerWorker hash ranges per
// worker rounded up to a power of two.
func newStream(opts Options) *streamJob {
	ranges := 1
	for ranges < rangesPerWorker*opts.Workers {
		ranges *= 2
	}
	shift := uint(64)
	for r := ranges; r > 1; r /= 2 {
		shift--
	}
	s := &streamJob{opts: opts, spec: opts.Spec, ranges: make([]lockedRange, ranges), shift: shift}
	for r := range s.ranges {
		s.ranges[r].slots = hugemem.Cleared[aggSlot](minSlots)
	}
	return s
}

func (s *streamJob) UsersTotal() int64 { return s.usersTotal.Load() }
func (s *streamJob) UsersDone() int64  { return s.usersDone.Load() }

// take returns a scratch no other Add holds, making one when all are
// held.
func (s *streamJob) take() *addScratch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.free); n > 0 {
		t := s.free[n-1]
		s.free = s.free[:n-1]
		return t
	}
	return &addScratch{
		byRange: make([][]int32, len(s.ranges)),
		user:    feature.User{File: s.opts.File, Params: s.opts.Params},
	}
}

// give puts t back on the free list, for the next Add.
func (s *streamJob) give(t *addScratch) {
	s.mu.Lock()
	s.free = append(s.free, t)
	s.mu.Unlock()
}

// Add implements Job: it adds the batch's rows to their users' aggregates,
// range by range. An error or panic of the feature code is a *UserError
// with the row's user and line.
func (s *streamJob) Add(b Batch) error {
	if b.Len() == 0 {
		return nil
	}
	t := s.take()
	defer s.give(t)
	defer s.countAdded(t)
	return s.add(t, b)
}

// add hashes every row's key, sorts the rows by hash range, and adds each
// range's rows under its lock (addRange), starting at a range of its own
// and putting off the ranges another Add holds until the end of its round.
func (s *streamJob) add(t *addScratch, b Batch) (err error) {
	n := b.Len()
	t.hash = slices.Grow(t.hash[:0], n)[:n]
	t.agg = slices.Grow(t.agg[:0], n)[:n]
	var dropped int64
	if s.spec.Map == nil {
		t.keys.reset(0) // every key is the user field
		for i := 0; i < n; i++ {
			t.hash[i] = keyHash(b.User(i))
		}
	} else {
		t.keys.reset(n)
		err = eachKey(s.spec, &s.opts, b, &t.row, func(i int, key []byte, keep bool) {
			if !keep {
				t.hash[i] = 0
				dropped++
				return
			}
			t.keys.set(i, key, b.User(i))
			t.hash[i] = keyHash(key)
		})
	}
	s.dropped.Add(dropped)
	s.rows.Add(int64(n) - dropped)
	if err != nil {
		return err
	}
	for r := range t.byRange {
		t.byRange[r] = t.byRange[r][:0]
	}
	for i, h := range t.hash {
		if h != 0 {
			r := h >> s.shift
			t.byRange[r] = append(t.byRange[r], int32(i))
		}
	}
	defer clear(t.agg) // hold no aggregate past the batch
	nr := len(s.ranges)
	first := int(s.start.Add(1)) * (nr / max(1, s.opts.Workers))
	t.later = t.later[:0]
	for k := range nr {
		r := (first + k) & (nr - 1)
		if len(t.byRange[r]) == 0 {
			continue
		}
		if !s.ranges[r].mu.TryLock() {
			t.later = append(t.later, r)
			continue
		}
		if err := s.addRange(t, b, r); err != nil {
			return err
		}
	}
	for _, r := range t.later {
		s.ranges[r].mu.Lock()
		if err := s.addRange(t, b, r); err != nil {
			return err
		}
	}
	return nil
}

// countAdded adds the users t's batch made to the users total.
func (s *streamJob) countAdded(t *addScratch) {
	s.usersTotal.Add(t.added)
	t.added = 0
}

// addRange adds the batch's rows of range r, whose lock the caller took
// (addRange lets it go), in stages a few rows apart, so that no row waits
// for a cache miss: ask for the slot of the row slotAhead past the one
// whose aggregate is found (aggAhead rows ahead) and asked for, fill the
// row rowAhead ahead and ask a slotter for the memory its Add will touch,
// and add the row.
func (s *streamJob) addRange(t *addScratch, b Batch, r int) (err error) {
	lr := &s.ranges[r]
	defer lr.mu.Unlock()
	idx := t.byRange[r]
	m := len(idx)
	// at is the row whose user code runs now, for the error.
	at := 0
	defer func() {
		if v := recover(); v != nil {
			err = &UserError{File: s.opts.File, User: string(t.key(b, at)), Line: b.Line(at), Op: "add",
				Err: &feature.PanicError{Value: v, Stack: string(debug.Stack())}}
		}
	}()
	mask := uint64(len(lr.slots) - 1)
	// Rows idx[:found] have their aggregate, rows idx[:filled] are in the
	// ring (and a slotter was asked about them); idx[j] is added next.
	found, filled := 0, 0
	for j := 0; j < m; j++ {
		for ; found < m && found <= j+aggAhead; found++ {
			if k := found + slotAhead; k < m {
				prefetch.Lines(unsafe.Pointer(&lr.slots[t.hash[idx[k]]&mask]))
			}
			i := int(idx[found])
			at = i
			agg := s.find(t, &lr.aggRange, t.hash[i], t.key(b, i))
			mask = uint64(len(lr.slots) - 1) // find may grow the table
			prefetch.Lines(aggData(agg))
			t.agg[i] = agg
		}
		for ; filled < m && filled <= j+rowAhead; filled++ {
			i := int(idx[filled])
			row := &t.ring[filled%rowRing]
			b.Row(i, row)
			if sl, ok := t.agg[i].(slotter); ok {
				if p := sl.Slot(row); p != nil {
					prefetch.Lines(p)
				}
			}
		}
		i := int(idx[j])
		at = i
		if err := t.agg[i].Add(&t.ring[j%rowRing]); err != nil {
			return &UserError{File: s.opts.File, User: string(t.key(b, i)), Line: b.Line(i), Op: "add", Err: err}
		}
	}
	return nil
}

// key returns row i's grouping key.
func (t *addScratch) key(b Batch, i int) []byte {
	if len(t.keys.off) > 0 {
		if key, ok := t.keys.get(i); ok {
			return key
		}
	}
	return b.User(i)
}

// find returns the aggregate of the user with hash h and key in range r
// (whose lock the caller holds), making the user (and its Aggregator) when
// it is new.
func (s *streamJob) find(t *addScratch, r *aggRange, h uint64, key []byte) feature.Aggregator {
	sl, ok := r.lookup(h, key)
	if ok {
		return sl.agg
	}
	t.user.Key = key
	agg := s.spec.NewAggregator(&t.user)
	t.user.Key = nil
	r.insert(sl, h, key, agg)
	t.added++
	return agg
}

// aggData returns the address an Aggregator's dynamic value is at, for a
// prefetch only.
//
// NB: it reads the interface's second word, which the Go runtime has
// always used for the value's pointer; were that to change, the prefetch
// would only ask for the wrong line (prefetches never fault).
func aggData(a feature.Aggregator) unsafe.Pointer {
	return (*[2]unsafe.Pointer)(unsafe.Pointer(&a))[1]
}

// Finish implements Job: the workers finish every user of a range and
// sort the range by key, range after range; the ranges are merged into w
// (on the workers, for a big table: output.WriteSorted).
func (s *streamJob) Finish(ctx context.Context, w io.Writer) (Stats, error) {
	var st Stats
	defer func() { s.ranges, s.free = nil, nil }()
	lf := output.LinesFor(w)
	st.Rows = s.rows.Load()
	st.Dropped = s.dropped.Load()

	W := s.opts.Workers
	nr := len(s.ranges)
	merged := make([]*aggRange, nr)
	var users int64
	for r := range s.ranges {
		merged[r] = &s.ranges[r].aggRange
		users += int64(merged[r].n)
	}
	// Add counted them as it made them; the tables have the last word.
	s.usersTotal.Store(users)
	sorted := make([][]int32, nr) // occupied slots of merged[r], by key
	outs := make([][]lineRef, nr)
	lines := make([]lineBuf, W)
	st.WorkerBusy = make([]time.Duration, W)
	longest := make([]time.Duration, W)
	var errOnce sync.Once
	var firstErr error
	var stop atomic.Bool
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		stop.Store(true)
	}

	// eachRange hands the ranges to the workers through one cursor until
	// all are done or one fails; work(wk) makes worker wk's function of
	// one range. It adds up each worker's busy time and longest range.
	eachRange := func(work func(wk int) func(r int) error) {
		var next atomic.Int64
		parallel(W, func(wk int) {
			start := time.Now()
			do := work(wk)
			for !stop.Load() {
				r := int(next.Add(1) - 1)
				if r >= nr {
					break
				}
				if err := ctx.Err(); err != nil {
					fail(err)
					break
				}
				t0 := time.Now()
				if err := do(r); err != nil {
					fail(err)
					break
				}
				longest[wk] = max(longest[wk], time.Since(t0))
			}
			st.WorkerBusy[wk] += time.Since(start)
		})
	}

	t1 := time.Now()
	if firstErr == nil {
		eachRange(func(wk int) func(int) error {
			rec := s.spec.NewRecord()
			var keyBuf, line, field []byte
			return func(r int) error {
				m := merged[r]
				order := m.sortedSlots()
				out := make([]lineRef, len(order))
				for k, si := range order {
					// In key order the aggregates are in no order in memory:
					// ask for one a few users ahead.
					if a := k + finishAhead; a < len(order) {
						prefetch.Lines(aggData(m.slots[order[a]].agg))
					}
					sl := &m.slots[si]
					err := feature.Guard(func() error {
						rec.Reset()
						return sl.agg.Finish(rec)
					})
					if err != nil {
						return &UserError{File: s.opts.File, User: m.keyString(sl), Err: err}
					}
					sl.agg = nil // done: let it go
					keyBuf = append(keyBuf[:0], m.keyString(sl)...)
					line, field = lf.AppendRecord(line[:0], field, keyBuf, rec)
					blk, off := lines[wk].add(line)
					out[k] = lineRef{w: uint16(wk), blk: blk, off: off, n: uint32(len(line))}
				}
				s.usersDone.Add(int64(len(order)))
				sorted[r], outs[r] = order, out
				return nil
			}
		})
	}
	st.Users = s.usersTotal.Load()
	st.LongestItem = slices.Max(longest)
	st.ReduceTime = time.Since(t1)
	if firstErr != nil {
		return st, firstErr
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}

	t2 := time.Now()
	err := output.WriteSorted(w, s.spec, W, nr,
		func(r int) int { return len(sorted[r]) },
		func(r, i int) string { m := merged[r]; return m.keyString(&m.slots[sorted[r][i]]) },
		func(r, i int) []byte {
			l := outs[r][i]
			return lines[l.w].blocks[l.blk][l.off : l.off+l.n]
		})
	st.WriteTime = time.Since(t2)
	releaseLines(lines)
	// The aggregates are garbage now, in the Go heap: collect them, so
	// that the next file's reuse their memory instead of adding to it
	// (the heap would otherwise grow to twice this file's before the
	// collector ran). The live heap is small now, so this is cheap. It
	// runs beside the output's fsync and the next file's start, which
	// leave the CPUs idle, instead of before them (about 0.65 ms a file).
	// A heap under collectAfterBytes is left to the pacer: its growth is
	// a few MiB, and on many small files (120 files of 1 MB) a collection
	// after each made the run 1.16–1.18 times slower.
	s.ranges, s.free = nil, nil
	merged, sorted, outs, lines = nil, nil, nil, nil
	if heapObjectBytes() >= collectAfterBytes {
		go runtime.GC()
	}
	return st, err
}

// collectAfterBytes is the heap (live and dead objects) above which a
// one pass collects its aggregates once its file is done.
const collectAfterBytes = 8 << 20

// heapObjectBytes returns the bytes of the heap's objects, live and not
// yet collected.
func heapObjectBytes() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return math.MaxInt64 // unknown: collect, as always before
	}
	return int64(s[0].Value.Uint64())
}

// sortedSlots returns the occupied slots of r in key order.
func (r *aggRange) sortedSlots() []int32 {
	order := make([]int32, 0, r.n)
	for k := range r.slots {
		if r.slots[k].agg != nil {
			order = append(order, int32(k))
		}
	}
	sortByKey(order, func(k int32) string { return r.keyString(&r.slots[k]) })
	return order
}

// sortByKey sorts idx by key(idx[i]), keys all different.
//
// The entries are sorted by their keys' keyruns.Prefix, held beside the
// index, and only entries whose prefixes tie are compared by key: a
// comparison then reads no key, where comparing keys read two from all
// over memory (the sort was a fifth of finishing a file's users in the
// one pass).
func sortByKey(idx []int32, key func(int32) string) {
	type keyed struct {
		word uint64
		i    int32
	}
	ks := make([]keyed, len(idx))
	for n, i := range idx {
		ks[n] = keyed{keyruns.Prefix(key(i)), i}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if a.word != b.word {
			return cmp.Compare(a.word, b.word)
		}
		return strings.Compare(key(a.i), key(b.i))
	})
	for n, k := range ks {
		idx[n] = k.i
	}
}

// finishAhead is how many users ahead Finish prefetches an aggregate.
const finishAhead = 4

// lineRef is where a user's output line is: worker w's lineBuf.
type lineRef struct {
	w           uint16
	blk, off, n uint32
}
