package inram

import (
	"context"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/internal/userhash"
)

// stripesPerWorker is how many stripes of the aggregate table each worker
// has: enough that two workers seldom want the same stripe at once.
const stripesPerWorker = 8

// streamJob aggregates a mergeable Spec's rows as they are read: every
// user has one feature.Aggregator in a table cut into stripes, each behind
// its own lock, and a batch adds its rows stripe by stripe. No row is kept,
// so the file's RAM is its users' aggregates, not its rows.
type streamJob struct {
	opts    Options
	spec    *feature.Spec
	stripes []stripe
	scratch sync.Pool

	rows       atomic.Int64
	dropped    atomic.Int64
	usersTotal atomic.Int64
	usersDone  atomic.Int64
}

// stripe is one lock's share of the users.
type stripe struct {
	mu   sync.Mutex
	idx  map[string]int32 // key -> index into users
	user []streamUser
	// Filled by Finish.
	byKey []int32
	_     [64]byte // keep stripes' locks on separate cache lines
}

type streamUser struct {
	key string
	agg feature.Aggregator
	// The user's output line, set by Finish.
	outW        uint16
	outBlk, off uint32
	outLen      uint32
}

type streamScratch struct {
	stripe []int32 // stripe per row; -1: dropped by Map
	keys   mapKeys
	count  []int32 // rows per stripe, then their start in order
	order  []int32 // row indices grouped by stripe
	later  []int32 // stripes found locked, tried again at the end
	row    feature.Row
	user   feature.User
}

func newStream(opts Options) *streamJob {
	s := &streamJob{
		opts:    opts,
		spec:    opts.Spec,
		stripes: make([]stripe, opts.Workers*stripesPerWorker),
	}
	for i := range s.stripes {
		s.stripes[i].idx = make(map[string]int32)
	}
	s.scratch.New = func() any { return &streamScratch{} }
	return s
}

func (s *streamJob) UsersTotal() int64 { return s.usersTotal.Load() }
func (s *streamJob) UsersDone() int64  { return s.usersDone.Load() }

// Add implements Job: it adds the batch's rows to their users'
// aggregates. An error or panic of the feature code is a *UserError with
// the row's user and line.
func (s *streamJob) Add(b Batch) error {
	n := b.Len()
	if n == 0 {
		return nil
	}
	sc := s.scratch.Get().(*streamScratch)
	defer s.scratch.Put(sc)
	sc.stripe = slices.Grow(sc.stripe[:0], n)[:n]
	sc.keys.reset(n)
	S := len(s.stripes)
	if cap(sc.count) < S+1 {
		sc.count = make([]int32, S+1)
	}
	count := sc.count[:S+1]
	clear(count)

	if err := s.route(b, sc, count); err != nil {
		return err
	}
	// Counting sort of the rows by stripe.
	var kept int32
	for i, c := range count[:S] {
		count[i] = kept
		kept += c
	}
	count[S] = kept
	sc.order = slices.Grow(sc.order[:0], int(kept))[:kept]
	for i, st := range sc.stripe {
		if st >= 0 {
			sc.order[count[st]] = int32(i)
			count[st]++
		}
	}
	for i := S - 1; i > 0; i-- {
		count[i] = count[i-1]
	}
	count[0] = 0
	s.rows.Add(int64(kept))

	// Take the stripes in turn, starting at one that depends on the batch
	// so that concurrent batches start apart; a stripe another worker holds
	// is left for the end.
	sc.later = sc.later[:0]
	first := int(b.Seq() % int64(S))
	for k := 0; k < S; k++ {
		st := (first + k) % S
		if count[st] == count[st+1] {
			continue
		}
		if !s.stripes[st].mu.TryLock() {
			sc.later = append(sc.later, int32(st))
			continue
		}
		err := s.addStripe(b, sc, st, count[st], count[st+1])
		s.stripes[st].mu.Unlock()
		if err != nil {
			return err
		}
	}
	for _, st := range sc.later {
		s.stripes[st].mu.Lock()
		err := s.addStripe(b, sc, int(st), count[st], count[st+1])
		s.stripes[st].mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// route finds each row's key and stripe and counts the rows per stripe.
func (s *streamJob) route(b Batch, sc *streamScratch, count []int32) error {
	S := uint64(len(s.stripes))
	return eachKey(s.spec, &s.opts, b, &sc.row, func(i int, key []byte, keep bool) {
		if !keep {
			sc.stripe[i] = -1
			s.dropped.Add(1)
			return
		}
		sc.keys.set(i, key, b.User(i))
		st := int32(userhash.Sum(key) % S)
		sc.stripe[i] = st
		count[st]++
	})
}

// addStripe adds rows order[lo:hi] (all of stripe st) under its lock.
func (s *streamJob) addStripe(b Batch, sc *streamScratch, st int, lo, hi int32) (err error) {
	p := &s.stripes[st]
	var i int32
	var key []byte
	defer func() {
		if v := recover(); v != nil {
			err = &UserError{File: s.opts.File, User: string(key), Line: b.Line(int(i)), Op: "add",
				Err: &feature.PanicError{Value: v, Stack: string(debug.Stack())}}
		}
	}()
	for _, i = range sc.order[lo:hi] {
		var ok bool
		if key, ok = sc.keys.get(int(i)); !ok {
			key = b.User(int(i))
		}
		u, ok := p.idx[string(key)]
		if !ok {
			u = int32(len(p.user))
			k := string(key)
			p.idx[k] = u
			sc.user = feature.User{Key: key, File: s.opts.File, Params: s.opts.Params}
			p.user = append(p.user, streamUser{key: k, agg: s.spec.NewAggregator(&sc.user)})
		}
		b.Row(int(i), &sc.row)
		if err := p.user[u].agg.Add(&sc.row); err != nil {
			return &UserError{File: s.opts.File, User: string(key), Line: b.Line(int(i)), Op: "add", Err: err}
		}
	}
	return nil
}

// Finish implements Job: it finishes every user's aggregate on the
// workers (stripes taken from one atomic cursor) and writes the lines
// sorted by user key.
func (s *streamJob) Finish(ctx context.Context, w io.Writer) (Stats, error) {
	var st Stats
	defer func() { s.stripes = nil }()
	st.Rows = s.rows.Load()
	st.Dropped = s.dropped.Load()
	for i := range s.stripes {
		st.Users += int64(len(s.stripes[i].user))
	}
	s.usersTotal.Store(st.Users)

	t1 := time.Now()
	W := s.opts.Workers
	lines := make([]lineBuf, W)
	st.WorkerBusy = make([]time.Duration, W)
	longest := make([]time.Duration, W)
	var next atomic.Int64
	var errOnce sync.Once
	var firstErr error
	var stop atomic.Bool
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		stop.Store(true)
	}
	parallel(W, func(wk int) {
		start := time.Now()
		rec := s.spec.NewRecord()
		var keyBuf, line, field []byte
		for !stop.Load() {
			i := next.Add(1) - 1
			if i >= int64(len(s.stripes)) {
				break
			}
			if err := ctx.Err(); err != nil {
				fail(err)
				break
			}
			t0 := time.Now()
			p := &s.stripes[i]
			for k := range p.user {
				u := &p.user[k]
				err := feature.Guard(func() error {
					rec.Reset()
					return u.agg.Finish(rec)
				})
				if err != nil {
					fail(&UserError{File: s.opts.File, User: u.key, Err: err})
					break
				}
				u.agg = nil
				keyBuf = append(keyBuf[:0], u.key...)
				line, field = output.AppendRecord(line[:0], field, keyBuf, rec)
				u.outW = uint16(wk)
				u.outBlk, u.off = lines[wk].add(line)
				u.outLen = uint32(len(line))
				s.usersDone.Add(1)
			}
			p.byKey = make([]int32, len(p.user))
			for k := range p.byKey {
				p.byKey[k] = int32(k)
			}
			slices.SortFunc(p.byKey, func(a, b int32) int { return strings.Compare(p.user[a].key, p.user[b].key) })
			longest[wk] = max(longest[wk], time.Since(t0))
		}
		st.WorkerBusy[wk] = time.Since(start)
	})
	st.LongestItem = slices.Max(longest)
	st.ReduceTime = time.Since(t1)
	if firstErr != nil {
		return st, firstErr
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}

	t2 := time.Now()
	err := output.WriteSorted(w, s.spec, len(s.stripes),
		func(p int) int { return len(s.stripes[p].byKey) },
		func(p, i int) string { return s.stripes[p].user[s.stripes[p].byKey[i]].key },
		func(p, i int) []byte {
			u := &s.stripes[p].user[s.stripes[p].byKey[i]]
			return lines[u.outW].blocks[u.outBlk][u.off : u.off+u.outLen]
		})
	st.WriteTime = time.Since(t2)
	return st, err
}
