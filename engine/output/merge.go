package output

import (
	"errors"
	"io"

	"github.com/mce-engine/mce/engine/feature"
)

var errNotStringWriter = errors.New("BUG: output: writer must implement io.StringWriter (use bufio.Writer)")

// WriteSorted writes the header of spec and then the lines of n lists,
// each sorted by key, merged into one list sorted by key: list p has
// size(p) lines, line i has key(p, i) and text line(p, i) (as
// AppendRecord made it). w must also be an io.StringWriter.
func WriteSorted(w io.Writer, spec *feature.Spec, n int, size func(p int) int,
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
	h := &keyHeap{key: key}
	for p := 0; p < n; p++ {
		if size(p) > 0 {
			h.items = append(h.items, heapItem{p: p})
		}
	}
	h.init()
	for len(h.items) > 0 {
		top := &h.items[0]
		if _, err := bw.Write(line(top.p, top.i)); err != nil {
			return err
		}
		top.i++
		if top.i == size(top.p) {
			h.pop()
		} else {
			h.fix()
		}
	}
	return nil
}

type heapItem struct{ p, i int }

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
