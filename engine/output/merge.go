package output

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/ordered"
)

var errNotStringWriter = errors.New("BUG: output: writer must implement io.StringWriter (use bufio.Writer)")

const (
	// parallelMinLines is the smallest table WriteSorted merges on more
	// than one goroutine.
	parallelMinLines = 8192
	// piecesPerWorker is how many pieces per worker the merged table is
	// cut into: more than one, so that a worker done early takes another.
	piecesPerWorker = 4
	// samplesPerPiece is how many keys per piece are sampled to find the
	// cuts.
	samplesPerPiece = 16
)

// WriteSorted writes the header of spec and then the lines of n lists,
// each sorted by key, merged into one list sorted by key: list p has
// size(p) lines, line i has key(p, i) and text line(p, i) (as
// AppendRecord made it). w must also be an io.StringWriter. A key must be
// in one list only.
//
// On more than one worker, a big table's merge is cut at keys into
// pieces, merged (and encoded for a CSV *Writer, see Writer.csvLines) on
// the workers, and written in order: the same bytes as on one. The
// functions are called concurrently then.
func WriteSorted(w io.Writer, spec *feature.Spec, workers, n int, size func(p int) int,
	key func(p, i int) string, line func(p, i int) []byte) error {
	bw, ok := w.(interface {
		io.Writer
		io.StringWriter
	})
	if !ok {
		return errNotStringWriter
	}
	if _, err := bw.WriteString(Header(spec)); err != nil {
		return err
	}
	total := 0
	for p := range n {
		total += size(p)
	}
	lists := sortedLists{n: n, size: size, key: key, line: line}
	serial := func() error {
		return lists.merge(lists.all(), func(b []byte) error { _, err := bw.Write(b); return err })
	}
	if workers <= 1 || total < parallelMinLines {
		return serial()
	}
	// The pieces' bytes: the table's own, or its lines as made.
	var localTimes []bool
	write := func(b []byte, _ int) error { _, err := bw.Write(b); return err }
	if tw, ok := w.(*Writer); ok {
		if localTimes, ok = tw.csvLines(); !ok {
			return serial()
		}
		write = tw.writeCSV
	}
	return lists.parallel(workers, total, write, func(dst, line []byte) ([]byte, error) {
		if localTimes == nil {
			return append(dst, line...), nil
		}
		dst, err := appendLocalLine(dst, line[:len(line)-1], localTimes)
		if err != nil {
			return dst, fmt.Errorf("BUG: output: a line of the table %w", err)
		}
		return dst, nil
	})
}

// sortedLists is WriteSorted's lists.
type sortedLists struct {
	n    int
	size func(p int) int
	key  func(p, i int) string
	line func(p, i int) []byte
}

// span is the lines [lo, hi) of every list.
type span struct{ lo, hi []int }

func (l sortedLists) all() span {
	s := span{lo: make([]int, l.n), hi: make([]int, l.n)}
	for p := range l.n {
		s.hi[p] = l.size(p)
	}
	return s
}

// merge hands the lines of s, merged by key, to out one by one.
func (l sortedLists) merge(s span, out func([]byte) error) error {
	h := &keyHeap{key: l.key}
	for p := range l.n {
		if s.lo[p] < s.hi[p] {
			h.items = append(h.items, heapItem{p: p, i: s.lo[p], end: s.hi[p]})
		}
	}
	h.init()
	for len(h.items) > 0 {
		top := &h.items[0]
		if err := out(l.line(top.p, top.i)); err != nil {
			return err
		}
		top.i++
		if top.i == top.end {
			h.pop()
		} else {
			h.fix()
		}
	}
	return nil
}

// sample returns up to pieces-1 keys, ascending and distinct, that cut
// the merged lists into pieces of about the same number of lines, and the
// mean length of the lines, both from the same lines spread over the
// lists.
func (l sortedLists) sample(total, pieces int) (cuts []string, meanLine int) {
	stride := max(1, total/(pieces*samplesPerPiece))
	var keys []string
	bytes := 0
	for p := range l.n {
		for i := stride / 2; i < l.size(p); i += stride {
			keys = append(keys, l.key(p, i))
			bytes += len(l.line(p, i))
		}
	}
	if len(keys) > 0 {
		meanLine = bytes / len(keys)
	}
	if len(keys) < pieces {
		return nil, meanLine // lists too short to sample: one piece
	}
	slices.Sort(keys)
	for k := 1; k < pieces; k++ {
		c := keys[k*len(keys)/pieces]
		if len(cuts) == 0 || c > cuts[len(cuts)-1] {
			cuts = append(cuts, c)
		}
	}
	return cuts, meanLine
}

// lines returns how many lines s has.
func (s span) lines() (n int) {
	for p := range s.lo {
		n += s.hi[p] - s.lo[p]
	}
	return n
}

// span returns the lines of every list whose key is in [from, to), or
// from from on when last.
func (l sortedLists) span(from, to string, last bool) span {
	s := span{lo: make([]int, l.n), hi: make([]int, l.n)}
	for p := range l.n {
		m := l.size(p)
		s.lo[p] = sort.Search(m, func(i int) bool { return l.key(p, i) >= from })
		s.hi[p] = m
		if !last {
			s.hi[p] = sort.Search(m, func(i int) bool { return l.key(p, i) >= to })
		}
	}
	return s
}

// parallel merges the lists cut into pieces on workers goroutines, each
// piece's lines encoded by enc (called concurrently) into a buffer, and
// writes the buffers in order (ordered.Do).
func (l sortedLists) parallel(workers, total int, write func(b []byte, lines int) error,
	enc func(dst, line []byte) ([]byte, error)) error {
	cuts, lineBytes := l.sample(total, workers*piecesPerWorker)
	type piece struct {
		buf   *[]byte
		lines int
	}
	var free sync.Pool
	return ordered.Do(workers, len(cuts)+1, func(k int) (piece, error) {
		from, to := "", ""
		if k > 0 {
			from = cuts[k-1]
		}
		if k < len(cuts) {
			to = cuts[k]
		}
		pc := piece{buf: new([]byte)}
		if b, ok := free.Get().(*[]byte); ok {
			pc.buf = b
		}
		sp := l.span(from, to, k == len(cuts))
		// Room for the piece's lines as they average, and some: a buffer
		// grown by appends copies itself over and over.
		want := lineBytes*sp.lines()*9/8 + 4096
		buf := (*pc.buf)[:0]
		if cap(buf) < want {
			buf = make([]byte, 0, want)
		}
		err := l.merge(sp, func(line []byte) (err error) {
			pc.lines++
			buf, err = enc(buf, line)
			return err
		})
		*pc.buf = buf
		return pc, err
	}, func(_ int, pc piece) error {
		defer free.Put(pc.buf)
		return write(*pc.buf, pc.lines)
	})
}

type heapItem struct{ p, i, end int }

// keyHeap is a min-heap of list cursors by key.
type keyHeap struct {
	key   func(p, i int) string
	items []heapItem
}

func (h *keyHeap) at(k int) string {
	it := h.items[k]
	return h.key(it.p, it.i)
}

func (h *keyHeap) init() {
	for i := len(h.items)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *keyHeap) fix() { h.down(0) }

func (h *keyHeap) pop() {
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	if last > 0 {
		h.down(0)
	}
}

func (h *keyHeap) down(i int) {
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.at(r) < h.at(l) {
			m = r
		}
		if h.at(i) <= h.at(m) {
			return
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
}
