package inram

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/internal/hugemem"
	"github.com/mce-engine/mce/internal/prefetch"
	"github.com/mce-engine/mce/internal/userhash"
	"github.com/mce-engine/mce/internal/varint"
)

// Batch is one batch of parsed rows, as the reader hands them out
// (*csvread.Batch has these methods). It is valid only during Add.
type Batch interface {
	// Seq is the batch's index in file order, from 0.
	Seq() int64
	// Len is the number of rows.
	Len() int
	// Field returns row i, schema column j.
	Field(i, j int) []byte
	// User returns row i's user field, normalised to UTF-8.
	User(i int) []byte
	// Line returns the 1-based line where row i starts.
	Line(i int) int64
	// Row fills r with row i.
	Row(i int, r *feature.Row)
}

// Options configure a Job.
type Options struct {
	// Spec is the feature set; it must have been validated.
	Spec *feature.Spec
	// Params are the job's --param values.
	Params feature.Params
	// Workers is the number of partitions and of reduce goroutines (the
	// cluster's CPUs); 0 means 1.
	Workers int
	// File is the input's base name: feature.User.File and error messages.
	File string
	// Encoding is the text encoding of the file's fields.
	Encoding feature.Encoding
	// Arena, if set, holds the grouped rows (a huge-page arena, reused
	// from file to file); the caller resets it after Finish. Nil: the Go
	// heap.
	Arena *hugemem.Arena
	// Group keeps every user's rows and reduces user by user even when the
	// Spec is mergeable (which is otherwise aggregated as rows come).
	Group bool
	// SplitRows is the row count above which a user of a mergeable Spec is
	// cut into pieces reduced on several workers: 0 means
	// total/(2·Workers), negative never splits.
	SplitRows int64
}

// UserError is an error or a panic of the feature code on one user (in
// Reduce or an Aggregator) or on one row (in Map).
type UserError struct {
	File string
	User string
	Line int64  // the row's line, where there is one (Map, Aggregator.Add)
	Op   string // "map" or "add" where the error came from one row
	Err  error
}

func (e *UserError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: user %q: %s: %v", e.File, e.Line, e.User, e.Op, e.Err)
	}
	return fmt.Sprintf("%s: user %q: %v", e.File, e.User, e.Err)
}

func (e *UserError) Unwrap() error { return e.Err }

// Stats describes a finished Job.
type Stats struct {
	Rows       int64 // rows grouped (after Map)
	Dropped    int64 // rows Map dropped
	Users      int64
	SplitUsers int   // users reduced in pieces on several workers
	ArenaBytes int64 // bytes of stored rows
	IndexTime  time.Duration
	ReduceTime time.Duration
	WriteTime  time.Duration
	// WorkerBusy is each reduce worker's time from the start of the reduce
	// until it found the queue empty.
	WorkerBusy []time.Duration
	// LongestItem is the longest single piece of reduce work (one user, or
	// one piece of a split user): no schedule can end the reduce sooner.
	LongestItem time.Duration
}

// OverIdeal is the reduce's wall time over the best any schedule could do:
// the larger of the mean worker time and the longest single item.
func (s *Stats) OverIdeal() float64 {
	_, mean := s.BusyMaxMean()
	ideal := max(mean, s.LongestItem)
	if ideal <= 0 {
		return 1
	}
	return float64(s.ReduceTime) / float64(ideal)
}

// BusyMaxMean returns the slowest reduce worker's time and the mean.
func (s *Stats) BusyMaxMean() (maxBusy, mean time.Duration) {
	if len(s.WorkerBusy) == 0 {
		return 0, 0
	}
	var sum time.Duration
	for _, d := range s.WorkerBusy {
		sum += d
		maxBusy = max(maxBusy, d)
	}
	return maxBusy, sum / time.Duration(len(s.WorkerBusy))
}

// Skew is the slowest reduce worker's time over the mean (1 is perfect).
func (s *Stats) Skew() float64 {
	mx, mean := s.BusyMaxMean()
	if mean <= 0 {
		return 1
	}
	return float64(mx) / float64(mean)
}

// Job is the map and reduce of one file. Add may be called from many
// goroutines; Finish once, after the last Add.
type Job interface {
	// Add takes one batch of rows. An error (a panic or error in the
	// feature code) is a *UserError and should stop the scan.
	Add(b Batch) error
	// Finish reduces every user and writes the features as CSV (header
	// `user,<columns>`, one line per user, sorted by user key) to w, which
	// must be an io.StringWriter (a bufio.Writer). The Job's memory is
	// released when it returns.
	Finish(ctx context.Context, w io.Writer) (Stats, error)
	// UsersTotal is the number of users once the rows are all in (0
	// before, except in the one pass, which counts them as they come);
	// UsersDone how many have been reduced so far.
	UsersTotal() int64
	UsersDone() int64
}

// groupJob holds every user's rows in RAM and reduces them user by user.
type groupJob struct {
	opts    Options
	spec    *feature.Spec
	nf      int
	userCol int
	// cols are the columns a grouped row carries, in schema order: the
	// user and the Spec's Reads (every column when it declares none).
	// The others are empty in the Rows the features get, as the reader
	// leaves them (csvread's Options.Reads), so a stored row holds no
	// length for them either. userAt is the user's place in cols, and
	// skipped the columns left out.
	cols, skipped []int
	userAt        int
	parts         []*partition
	scratch       sync.Pool

	dropped    atomic.Int64
	usersTotal atomic.Int64
	usersDone  atomic.Int64
	stop       atomic.Bool

	errOnce sync.Once
	err     error
}

// chunk is the rows of one batch owned by one partition.
type chunk struct {
	seq  int64
	data []byte
	rows int
}

// partition is one worker's share of the users.
type partition struct {
	mu     sync.Mutex
	chunks []chunk

	// Filled by index.
	data   [][]byte // chunks' data, in file order
	refs   []uint64 // row references (chunk<<32 | offset), grouped by user
	users  []user
	bySize []int32 // user ids, most rows first
	byKey  []int32 // user ids, by key
}

type user struct {
	key         string
	start, n    uint32 // the user's run in refs
	fill        uint32 // cursor while indexing
	outW        uint16 // worker whose lines hold the output
	outBlk, off uint32
	outLen      uint32
}

type scratch struct {
	part  []int32  // owning partition per row; -1: dropped
	size  []uint32 // encoded body length per row
	lens  []uint32 // field lengths, nf per row
	span  []byte   // a row's fields back to back, for a Batch without RowSpan
	keys  mapKeys
	sizes []int // encoded bytes per partition
	rows  []int // rows per partition
	bufs  [][]byte
	row   feature.Row
}

// New returns the Job for opts: a mergeable Spec is aggregated as the rows
// come (unless opts.Group), any other is grouped first.
func New(opts Options) (Job, error) {
	if opts.Spec == nil {
		return nil, errors.New("inram: no Spec")
	}
	if opts.Spec.Schema == nil {
		return nil, errors.New("inram: Spec has no Schema (not validated)")
	}
	if opts.Workers <= 0 {
		opts.Workers = 1
	}
	if opts.Workers > 1<<16-1 {
		return nil, fmt.Errorf("inram: %d workers is too many", opts.Workers)
	}
	if opts.Spec.Mergeable() && !opts.Group {
		return newStream(opts), nil
	}
	j := &groupJob{
		opts:    opts,
		spec:    opts.Spec,
		nf:      opts.Spec.Schema.Len(),
		userCol: opts.Spec.Schema.User(),
		parts:   make([]*partition, opts.Workers),
	}
	j.cols, j.skipped, j.userAt = carried(opts.Spec)
	for i := range j.parts {
		j.parts[i] = &partition{}
	}
	j.scratch.New = func() any { return &scratch{} }
	return j, nil
}

// carried returns the columns a grouped row of spec carries (the user and
// spec.Reads; all when Reads is empty), the others, and the user's place
// among the carried.
func carried(spec *feature.Spec) (cols, skipped []int, userAt int) {
	sch := spec.Schema
	keep := make([]bool, sch.Len())
	keep[sch.User()] = true
	for _, c := range spec.Reads {
		if i := sch.Index(c); i >= 0 {
			keep[i] = true
		}
	}
	for c, k := range keep {
		switch {
		case len(spec.Reads) == 0 || k:
			if c == sch.User() {
				userAt = len(cols)
			}
			cols = append(cols, c)
		default:
			skipped = append(skipped, c)
		}
	}
	return cols, skipped, userAt
}

// UsersTotal returns the number of users once indexing is done (0 before).
func (j *groupJob) UsersTotal() int64 { return j.usersTotal.Load() }

// UsersDone returns how many users have been reduced so far.
func (j *groupJob) UsersDone() int64 { return j.usersDone.Load() }

// mapKeys holds, for each row of a batch, the key Map gave it when that is
// not the row's user field (both jobs route and store rows by it).
type mapKeys struct {
	off []int32 // -1: the user field; else the key's offset in buf
	n   []uint32
	buf []byte
}

// reset makes room for n rows.
func (k *mapKeys) reset(n int) {
	k.off = slices.Grow(k.off[:0], n)[:n]
	k.n = slices.Grow(k.n[:0], n)[:n]
	k.buf = k.buf[:0]
}

// set records row i's key; it keeps a copy and reports true only when the
// key is not user.
func (k *mapKeys) set(i int, key, user []byte) bool {
	if string(key) == string(user) {
		k.off[i] = -1
		return false
	}
	k.off[i], k.n[i] = int32(len(k.buf)), uint32(len(key))
	k.buf = append(k.buf, key...)
	return true
}

// get returns row i's key, and false when it is the row's user field.
func (k *mapKeys) get(i int) ([]byte, bool) {
	off := k.off[i]
	if off < 0 {
		return nil, false
	}
	return k.buf[off : off+int32(k.n[i])], true
}

// uvarint reads what binary.AppendUvarint wrote at the start of b, as
// binary.Uvarint does (0, 0 when b ends first), but small enough to be
// inlined: it runs for every grouped row and field, and most are one byte.
// It does not check for overflow; the arena holds only what the job wrote.
func uvarint(b []byte) (v uint64, n int) {
	for i, c := range b {
		if c < 0x80 {
			return v | uint64(c)<<(7*i), i + 1
		}
		v |= uint64(c&0x7f) << (7 * i)
	}
	return 0, 0
}

// Add groups one batch. It may be called concurrently. An error (a panic
// or error in Map) is a *UserError and should stop the scan.
func (j *groupJob) Add(b Batch) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	sc := j.scratch.Get().(*scratch)
	defer j.scratch.Put(sc)
	sc.part = slices.Grow(sc.part[:0], n)[:n]
	sc.size = slices.Grow(sc.size[:0], n)[:n]
	sc.keys.reset(n)
	sc.lens = slices.Grow(sc.lens[:0], n*j.nf)[:n*j.nf]
	P := len(j.parts)
	if cap(sc.sizes) < P {
		sc.sizes = make([]int, P)
		sc.rows = make([]int, P)
		sc.bufs = make([][]byte, P)
	}
	sizes, rows := sc.sizes[:P], sc.rows[:P]
	clear(sizes)
	clear(rows)

	if err := j.route(b, sc, sizes); err != nil {
		return err
	}

	bufs := sc.bufs[:P]
	if j.opts.Arena != nil {
		j.opts.Arena.AllocEach(sizes, bufs)
	} else {
		for p := range bufs {
			bufs[p] = nil
			if sizes[p] > 0 {
				bufs[p] = make([]byte, 0, sizes[p])
			}
		}
	}
	for i := 0; i < n; i++ {
		p := sc.part[i]
		if p < 0 {
			continue
		}
		buf := binary.AppendUvarint(bufs[p], uint64(sc.size[i]))
		if key, ok := sc.keys.get(i); !ok {
			buf = append(buf, 0)
		} else {
			buf = binary.AppendUvarint(buf, uint64(len(key))+1)
			buf = append(buf, key...)
		}
		lens := sc.lens[i*j.nf : (i+1)*j.nf]
		for _, c := range j.cols {
			buf = binary.AppendUvarint(buf, uint64(lens[c]))
		}
		span := rowSpan(b, i, lens, &sc.span)
		if j.skippedEmpty(lens) {
			buf = append(buf, span...) // the carried fields back to back
		} else {
			for _, c := range j.cols {
				buf = append(buf, b.Field(i, c)...)
			}
		}
		bufs[p] = buf
		rows[p]++
	}
	seq := b.Seq()
	for p, buf := range bufs {
		if buf == nil {
			continue
		}
		if len(buf) != sizes[p] {
			panic(fmt.Sprintf("BUG: inram: partition %d encoded %d bytes, sized %d", p, len(buf), sizes[p]))
		}
		part := j.parts[p]
		part.mu.Lock()
		part.chunks = append(part.chunks, chunk{seq: seq, data: buf, rows: rows[p]})
		part.mu.Unlock()
		bufs[p] = nil
	}
	return nil
}

// route finds each row's key and owning partition and its encoded size.
func (j *groupJob) route(b Batch, sc *scratch, sizes []int) error {
	P := len(j.parts)
	return eachKey(j.spec, &j.opts, b, &sc.row, func(i int, key []byte, keep bool) {
		if !keep {
			sc.part[i] = -1
			j.dropped.Add(1)
			return
		}
		bodyLen := 1 // keyTag 0
		if sc.keys.set(i, key, b.Field(i, j.userCol)) {
			bodyLen = varint.Len(uint64(len(key))+1) + len(key)
		}
		lens := sc.lens[i*j.nf : (i+1)*j.nf]
		rowSpan(b, i, lens, &sc.span)
		for _, c := range j.cols {
			bodyLen += varint.Len(uint64(lens[c])) + int(lens[c])
		}
		p := userhash.Partition(key, P)
		sc.part[i] = int32(p)
		sc.size[i] = uint32(bodyLen)
		sizes[p] += varint.Len(uint64(bodyLen)) + bodyLen
	})
}

// eachKey calls fn with every row of b and its grouping key: the user
// field as UTF-8, or the key spec.Map returns (keep is false for a row Map
// drops; key is then nil). The key is valid during the call only. A panic
// in Map is recovered and returned as a *UserError naming the row.
func eachKey(spec *feature.Spec, opts *Options, b Batch, row *feature.Row, fn func(i int, key []byte, keep bool)) (err error) {
	i := 0
	if spec.Map != nil {
		defer func() {
			if v := recover(); v != nil {
				err = &UserError{File: opts.File, User: string(b.User(i)), Line: b.Line(i), Op: "map",
					Err: &feature.PanicError{Value: v, Stack: string(debug.Stack())}}
			}
		}()
	}
	for n := b.Len(); i < n; i++ {
		key := b.User(i)
		if spec.Map != nil {
			b.Row(i, row)
			k, keep := spec.Map(row, opts.Params)
			if !keep {
				fn(i, nil, false)
				continue
			}
			if k != nil {
				key = feature.KeyUTF8(k, row.Encoding)
			}
		}
		fn(i, key, true)
	}
	return nil
}

// Keys calls fn with every row of b and its grouping key, as the Jobs
// group them (see eachKey): other ways of grouping a file (`mce run`
// through disk) key rows exactly as these do. file names the file in
// errors.
func Keys(spec *feature.Spec, params feature.Params, file string, b Batch, row *feature.Row, fn func(i int, key []byte, keep bool)) error {
	return eachKey(spec, &Options{Spec: spec, Params: params, File: file}, b, row, fn)
}

// rowSpanner is a Batch that has its rows' fields back to back
// (*csvread.Batch does).
type rowSpanner interface {
	RowSpan(i int, lens []uint32) []byte
}

// rowSpan returns row i's fields back to back and sets their lengths in
// lens, from the batch's own bytes when it can, else copied into *tmp.
func rowSpan(b Batch, i int, lens []uint32, tmp *[]byte) []byte {
	if rs, ok := b.(rowSpanner); ok {
		return rs.RowSpan(i, lens)
	}
	buf := (*tmp)[:0]
	for c := range lens {
		f := b.Field(i, c)
		lens[c] = uint32(len(f))
		buf = append(buf, f...)
	}
	*tmp = buf
	return buf
}

// skippedEmpty reports whether a row's skipped columns are all empty (as
// csvread leaves them), so that its span is its carried fields.
func (j *groupJob) skippedEmpty(lens []uint32) bool {
	for _, c := range j.skipped {
		if lens[c] != 0 {
			return false
		}
	}
	return true
}

// rowKey returns the grouping key of an encoded row body whose lengths
// are nf, the user's at userCol.
func rowKey(body []byte, userCol, nf int) []byte {
	tag, k := uvarint(body)
	if tag > 0 {
		return body[k : k+int(tag-1)]
	}
	// The lengths, then the fields.
	pos, skip := k, 0
	var l uint64
	for c := 0; c < nf; c++ {
		ll, kk := uvarint(body[pos:])
		pos += kk
		if c < userCol {
			skip += int(ll)
		} else if c == userCol {
			l = ll
		}
	}
	return body[pos+skip : pos+skip+int(l)]
}

// userIndex finds a partition's users by key while it is indexed: an
// open-addressing table, at most half full, of the users' positions. A
// slot holds the high half of its key's hash and, for a key of up to
// idxInline bytes (RFCs have 12 or 13), the key itself, so that finding a
// user touches one cache line: the table's. (With the key only in the
// user, every row's lookup waited for two more cache misses, the user's
// and its key's: 6.5% of a grouped run's CPU at 2 GB.) The users' keys
// are copied into blocks of keyBlockBytes that are never written again,
// not each into a string of its own.
type userIndex struct {
	slots []idxSlot
	block []byte // the keys' current block
}

// idxInline is the longest key a slot holds.
const idxInline = 15

// keyBlockBytes is the size of a block of the users' keys.
const keyBlockBytes = 64 << 10

// idxSlot is one user in the index (24 bytes): uid+1 (0: an empty slot),
// the high half of its key's hash, and its key when it is no longer than
// idxInline (n is its length, or idxLong).
type idxSlot struct {
	uid  int32
	hash uint32
	n    uint8
	key  [idxInline]byte
}

// idxLong marks a slot whose key is only in its user.
const idxLong = 255

func newUserIndex() *userIndex {
	return &userIndex{slots: make([]idxSlot, 1<<10)}
}

// find returns the position in *users of the user key, appending the
// user (its key copied, n zero) when it is new.
func (x *userIndex) find(key []byte, users *[]user) int32 {
	h := keyHash(key)
	mask := uint64(len(x.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := &x.slots[i]
		if sl.uid == 0 {
			uid := int32(len(*users))
			*users = append(*users, user{key: x.keep(key)})
			x.put(sl, uid, h, key)
			if 2*len(*users) > len(x.slots) {
				x.grow(*users)
			}
			return uid
		}
		if sl.hash != uint32(h>>32) {
			continue
		}
		if sl.n != idxLong {
			if int(sl.n) == len(key) && string(sl.key[:sl.n]) == string(key) {
				return sl.uid - 1
			}
		} else if uid := sl.uid - 1; (*users)[uid].key == string(key) {
			return uid
		}
	}
}

// put fills slot sl with user uid of key (hash h).
func (x *userIndex) put(sl *idxSlot, uid int32, h uint64, key []byte) {
	sl.uid, sl.hash = uid+1, uint32(h>>32)
	if len(key) <= idxInline {
		sl.n = uint8(copy(sl.key[:], key))
	} else {
		sl.n = idxLong
	}
}

// keep returns a copy of key as a string, in the current key block (a
// new one when it is full; a key of over a quarter of a block gets a
// string of its own). The blocks are never written where a key was
// copied in, so the strings stay as they were.
func (x *userIndex) keep(key []byte) string {
	if len(key) > keyBlockBytes/4 {
		return string(key)
	}
	if len(x.block)+len(key) > cap(x.block) {
		x.block = make([]byte, 0, keyBlockBytes)
	}
	at := len(x.block)
	x.block = append(x.block, key...)
	return unsafe.String(unsafe.SliceData(x.block[at:]), len(key))
}

// grow doubles the table.
func (x *userIndex) grow(users []user) {
	x.slots = make([]idxSlot, 2*len(x.slots))
	mask := uint64(len(x.slots) - 1)
	for uid := range users {
		key := unsafe.Slice(unsafe.StringData(users[uid].key), len(users[uid].key))
		h := keyHash(key)
		i := h & mask
		for x.slots[i].uid != 0 {
			i = (i + 1) & mask
		}
		x.put(&x.slots[i], int32(uid), h, key)
	}
}

// index sorts the partition's chunks into file order and groups the rows
// by user.
func (p *partition) index(userCol, nf int) {
	slices.SortFunc(p.chunks, func(a, b chunk) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	nrows := 0
	p.data = make([][]byte, len(p.chunks))
	for i, c := range p.chunks {
		nrows += c.rows
		p.data[i] = c.data
	}
	p.chunks = nil
	keyIdx := newUserIndex()
	// Each row's user and reference, in file order: the rows are read
	// once, here, and then placed from these.
	userOf := make([]int32, nrows)
	refOf := make([]uint64, nrows)
	r := 0
	for ci, d := range p.data {
		for off := 0; off < len(d); {
			bl, k := uvarint(d[off:])
			body := d[off+k : off+k+int(bl)]
			uid := keyIdx.find(rowKey(body, userCol, nf), &p.users)
			p.users[uid].n++
			userOf[r] = uid
			refOf[r] = uint64(ci)<<32 | uint64(off)
			r++
			off += k + int(bl)
		}
	}
	var start uint32
	for u := range p.users {
		p.users[u].start = start
		p.users[u].fill = start
		start += p.users[u].n
	}
	p.refs = make([]uint64, nrows)
	for r, uid := range userOf {
		u := &p.users[uid]
		p.refs[u.fill] = refOf[r]
		u.fill++
	}
	p.bySize = orderBySize(p.users)
}

// countedRows is the size below which users are placed by a counting
// sort (most users of a month have a handful of rows); the bigger ones
// are sorted.
const countedRows = 256

// orderBySize returns the users' ids, most rows first, users of the same
// size in the order they first appeared. The order is only the order the
// workers take the users in (plan: the biggest first, so that no worker
// ends alone on a big one), never that of their lines. A full sort by
// size and key was 2% of a grouped run's CPU; the counting sort does the
// same in one pass for all but the few big users.
func orderBySize(users []user) []int32 {
	var count [countedRows]int32
	var big []int32
	for i := range users {
		if n := users[i].n; n >= countedRows {
			big = append(big, int32(i))
		} else {
			count[n]++
		}
	}
	slices.SortStableFunc(big, func(a, b int32) int { return cmp.Compare(users[b].n, users[a].n) })
	order := make([]int32, len(users))
	copy(order, big)
	// next[n] is where the next user of n rows goes.
	var next [countedRows]int32
	at := int32(len(big))
	for n := countedRows - 1; n >= 0; n-- {
		next[n] = at
		at += count[n]
	}
	for i := range users {
		if n := users[i].n; n < countedRows {
			order[next[n]] = int32(i)
			next[n]++
		}
	}
	return order
}

// parallel runs f(0..n-1) on n goroutines and waits.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}

func (j *groupJob) fail(err error) {
	j.errOnce.Do(func() { j.err = err })
	j.stop.Store(true)
}

// Finish indexes the grouped rows, reduces every user and writes the
// features as CSV (header `user,<columns>`, one line per user, sorted by
// user key) to w. The Job's memory is released when it returns.
func (j *groupJob) Finish(ctx context.Context, w io.Writer) (Stats, error) {
	var st Stats
	defer func() { j.parts = nil }()
	st.Dropped = j.dropped.Load()

	t0 := time.Now()
	parallel(len(j.parts), func(i int) { j.parts[i].index(j.userAt, len(j.cols)) })
	for _, p := range j.parts {
		st.Rows += int64(len(p.refs))
		st.Users += int64(len(p.users))
		for _, d := range p.data {
			st.ArenaBytes += int64(len(d))
		}
	}
	j.usersTotal.Store(st.Users)
	st.IndexTime = time.Since(t0)
	if err := ctx.Err(); err != nil {
		return st, err
	}

	t1 := time.Now()
	items, nsplit := j.plan(st.Rows)
	st.SplitUsers = nsplit
	lines := make([]lineBuf, len(j.parts))
	st.WorkerBusy = make([]time.Duration, len(j.parts))
	longest := make([]time.Duration, len(j.parts))
	var next atomic.Int64
	lf := output.LinesFor(w)
	parallel(len(j.parts), func(w int) {
		st.WorkerBusy[w], longest[w] = j.reduceWorker(ctx, w, items, &next, &lines[w], lf)
	})
	st.LongestItem = slices.Max(longest)
	st.ReduceTime = time.Since(t1)
	if j.err != nil {
		return st, j.err
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}

	t2 := time.Now()
	for _, p := range j.parts {
		p.data, p.refs = nil, nil // the rows are no longer needed
	}
	err := j.write(w, lines)
	st.WriteTime = time.Since(t2)
	releaseLines(lines)
	return st, err
}

// item is one unit of reduce work: a whole user, or a piece of a split one.
type item struct {
	p, uid int32
	lo, hi uint32 // rows [lo, hi) of the user's run
	split  *splitUser
	piece  int32
}

type splitUser struct {
	parts []feature.Aggregator
	left  atomic.Int32
}

// plan lists the reduce work, biggest users first, splitting huge users of
// a mergeable Spec into pieces.
func (j *groupJob) plan(totalRows int64) ([]item, int) {
	W := len(j.parts)
	threshold := j.opts.SplitRows
	if threshold == 0 {
		threshold = totalRows / int64(2*W)
	}
	canSplit := j.spec.Mergeable() && W > 1 && threshold > 0
	pieceRows := max(threshold/2, 1)

	// Merge the partitions' size-sorted lists.
	var n int
	for _, p := range j.parts {
		n += len(p.users)
	}
	items := make([]item, 0, n)
	heads := make([]int, len(j.parts))
	nsplit := 0
	for {
		best := -1
		var bestN uint32
		for pi, p := range j.parts {
			if heads[pi] < len(p.bySize) {
				u := p.users[p.bySize[heads[pi]]].n
				if best < 0 || u > bestN {
					best, bestN = pi, u
				}
			}
		}
		if best < 0 {
			break
		}
		uid := j.parts[best].bySize[heads[best]]
		heads[best]++
		if canSplit && int64(bestN) > threshold {
			k := (int64(bestN) + pieceRows - 1) / pieceRows
			su := &splitUser{parts: make([]feature.Aggregator, k)}
			su.left.Store(int32(k))
			for i := int64(0); i < k; i++ {
				lo := uint32(i * int64(bestN) / k)
				hi := uint32((i + 1) * int64(bestN) / k)
				items = append(items, item{p: int32(best), uid: uid, lo: lo, hi: hi, split: su, piece: int32(i)})
			}
			nsplit++
			continue
		}
		items = append(items, item{p: int32(best), uid: uid, lo: 0, hi: bestN})
	}
	return items, nsplit
}

// reduceWorker pulls items until the list is empty and returns how long it
// was busy and its longest item.
func (j *groupJob) reduceWorker(ctx context.Context, w int, items []item, next *atomic.Int64, out *lineBuf, lf output.LineFormat) (busy, longest time.Duration) {
	start := time.Now()
	last := start
	rec := j.spec.NewRecord()
	reducer := j.spec.NewReducer()
	rows := &arenaRows{schema: j.spec.Schema, cols: j.cols}
	rows.row.Fields = make([][]byte, j.nf)
	rows.lens = make([]uint32, len(j.cols))
	rows.row.Encoding = j.opts.Encoding
	rows.row.Schema = j.spec.Schema
	u := &feature.User{File: j.opts.File, Params: j.opts.Params}
	var keyBuf, line, field []byte
	for k := 0; !j.stop.Load(); k++ {
		i := next.Add(1) - 1
		if i >= int64(len(items)) {
			break
		}
		if k%64 == 0 && ctx.Err() != nil {
			j.fail(ctx.Err())
			break
		}
		now := time.Now() // the previous item ended
		longest = max(longest, now.Sub(last))
		last = now
		it := &items[i]
		p := j.parts[it.p]
		us := &p.users[it.uid]
		keyBuf = append(keyBuf[:0], us.key...)
		u.Key = keyBuf
		rows.reset(p.data, p.refs[us.start+it.lo:us.start+it.hi])
		if it.split == nil {
			if err := reducer.ReduceUser(u, rows, rec); err != nil {
				j.fail(&UserError{File: j.opts.File, User: us.key, Err: err})
				break
			}
		} else {
			agg, err := j.aggregatePiece(u, rows)
			if err != nil {
				j.fail(&UserError{File: j.opts.File, User: us.key, Err: err})
				break
			}
			it.split.parts[it.piece] = agg
			if it.split.left.Add(-1) != 0 {
				continue // another worker finishes this user
			}
			if err := mergeFinish(it.split.parts, rec); err != nil {
				j.fail(&UserError{File: j.opts.File, User: us.key, Err: err})
				break
			}
		}
		line, field = lf.AppendRecord(line[:0], field, keyBuf, rec)
		us.outW = uint16(w)
		us.outBlk, us.off = out.add(line)
		us.outLen = uint32(len(line))
		j.usersDone.Add(1)
	}
	end := time.Now()
	return end.Sub(start), max(longest, end.Sub(last))
}

// aggregatePiece feeds one piece of a user to a fresh Aggregator.
func (j *groupJob) aggregatePiece(u *feature.User, rows feature.Rows) (agg feature.Aggregator, err error) {
	err = feature.Guard(func() error {
		agg = j.spec.NewAggregator(u)
		for rows.Next() {
			if err := agg.Add(rows.Row()); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	return agg, err
}

// mergeFinish merges the pieces in order (so the result does not depend on
// which worker ended last) and finishes the user.
func mergeFinish(parts []feature.Aggregator, rec *feature.Record) error {
	return feature.Guard(func() error {
		rec.Reset()
		for _, o := range parts[1:] {
			if err := parts[0].Merge(o); err != nil {
				return err
			}
		}
		return parts[0].Finish(rec)
	})
}

// write sorts each partition's users by key and merges them into w.
func (j *groupJob) write(w io.Writer, lines []lineBuf) error {
	parallel(len(j.parts), func(i int) {
		p := j.parts[i]
		p.byKey = make([]int32, len(p.users))
		for k := range p.byKey {
			p.byKey[k] = int32(k)
		}
		sortByKey(p.byKey, func(k int32) string { return p.users[k].key })
	})
	return output.WriteSorted(w, j.spec, j.opts.Workers, len(j.parts),
		func(p int) int { return len(j.parts[p].byKey) },
		func(p, i int) string { return j.parts[p].users[j.parts[p].byKey[i]].key },
		func(p, i int) []byte {
			u := &j.parts[p].users[j.parts[p].byKey[i]]
			return lines[u.outW].blocks[u.outBlk][u.off : u.off+u.outLen]
		})
}

// lineBuf holds output lines in blocks, so that growing it never copies.
type lineBuf struct {
	blocks [][]byte
}

func (b *lineBuf) add(line []byte) (blk, off uint32) {
	n := len(b.blocks)
	if n == 0 || len(b.blocks[n-1])+len(line) > cap(b.blocks[n-1]) {
		// A block comes from hugemem.MiB, a file's lines from the last
		// file's blocks, as far as it has them.
		var blk []byte
		if len(line) <= hugemem.MiB.Size() {
			blk = hugemem.MiB.Get()
		} else {
			blk = make([]byte, 0, len(line))
		}
		b.blocks = append(b.blocks, blk)
		n++
	}
	last := &b.blocks[n-1]
	off = uint32(len(*last))
	*last = append(*last, line...)
	return uint32(n - 1), off
}

// releaseLines gives the blocks of every worker's lines back to
// hugemem.MiB, once the lines are written: nothing may read them
// afterwards.
func releaseLines(lines []lineBuf) {
	for i := range lines {
		for _, blk := range lines[i].blocks {
			hugemem.MiB.Put(blk)
		}
		lines[i].blocks = nil
	}
}

// prefetchAhead is how many rows ahead arenaRows prefetches.
const prefetchAhead = 6

// arenaRows is a feature.Rows over stored rows.
type arenaRows struct {
	lens   []uint32
	data   [][]byte
	refs   []uint64
	i      int
	row    feature.Row
	schema *feature.Schema
	cols   []int // the columns the rows carry (groupJob.cols)
}

func (r *arenaRows) reset(data [][]byte, refs []uint64) {
	r.data, r.refs, r.i = data, refs, 0
}

// Next implements feature.Rows.
func (r *arenaRows) Next() bool {
	if r.i >= len(r.refs) {
		return false
	}
	ref := r.refs[r.i]
	r.i++
	// A user's rows are spread over the whole file: ask for a row a few
	// ahead now, so that it is in cache when its turn comes.
	if k := r.i + prefetchAhead; k < len(r.refs) {
		ahead := r.refs[k]
		prefetch.Lines(unsafe.Pointer(&r.data[ahead>>32][uint32(ahead)]))
	}
	d := r.data[ref>>32]
	off := int(uint32(ref))
	bl, k := uvarint(d[off:])
	body := d[off+k : off+k+int(bl)]
	tag, pos := uvarint(body)
	if tag > 0 {
		pos += int(tag - 1)
	}
	// The carried columns' lengths, then their fields back to back.
	fields := r.row.Fields
	cols := r.cols
	lens := r.lens[:len(cols)]
	for k := range lens {
		l, kk := uvarint(body[pos:])
		pos += kk
		lens[k] = uint32(l)
	}
	for k, c := range cols {
		end := pos + int(lens[k])
		fields[c] = body[pos:end:end]
		pos = end
	}
	return true
}

// Row implements feature.Rows.
func (r *arenaRows) Row() *feature.Row { return &r.row }

// Err implements feature.Rows.
func (r *arenaRows) Err() error { return nil }

// Schema implements feature.Rows.
func (r *arenaRows) Schema() *feature.Schema { return r.schema }
