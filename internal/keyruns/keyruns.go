// Package keyruns keeps sorted runs of features lines in files: each
// record a key (the user, as it sorts) and its line,
//
//	record = uvarint len(key) | key | uvarint len(line) | line
//
// a run one or more segments of a file holding whole records in key
// order. `mce reduce`'s part files hold such runs, and `mce run`'s disk
// path its features lines; Merge writes the runs' records in key order.
package keyruns

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// Append appends the record of key and line to dst.
func Append(dst, key, line []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	dst = binary.AppendUvarint(dst, uint64(len(line)))
	return append(dst, line...)
}

// Reader reads the records of one run in chunks of a bounded size (a run
// holds whole records, never one cut between segments).
type Reader struct {
	f         *os.File
	what      string     // the file, for errors ("part file")
	segs      [][2]int64 // the segments (offset, length) not read yet
	off, end  int64      // what is left of the current segment
	buf       []byte
	pos, n    int // unparsed bytes: buf[pos:n]
	key, line []byte
	err       error
}

// NewReader reads the segments segs (offset, length) of f, which errors
// call what, with a chunk buffer of chunk bytes, or of the run's size
// when it is smaller (grown for a longer record).
//
// A merge has many small runs (`mce reduce`: one per shard and file), and
// a buffer's pages are fresh memory, each a page fault when first
// written: buffers of chunk bytes for runs of a few KiB cost the merge
// more in faults than its reads.
func NewReader(f *os.File, what string, segs [][2]int64, chunk int) *Reader {
	var size int64
	for _, s := range segs {
		size += s[1]
	}
	return &Reader{f: f, what: what, segs: segs, buf: make([]byte, max(1, min(int64(chunk), size)))}
}

// Key and Line are the current record's; they alias the chunk buffer:
// valid until the next call of Next.
func (r *Reader) Key() []byte  { return r.key }
func (r *Reader) Line() []byte { return r.line }

// Err is the error that ended the run early, if any.
func (r *Reader) Err() error { return r.err }

// Next moves to the next record; false at the end or on an error (see
// Err).
func (r *Reader) Next() bool {
	for {
		if r.record() {
			return true
		}
		if r.err != nil || !r.fill() {
			return false
		}
	}
}

// record parses the record at buf[pos:n], if it is all there.
func (r *Reader) record() bool {
	p := r.buf[r.pos:r.n]
	kl, k1 := binary.Uvarint(p)
	if k1 <= 0 || uint64(len(p)-k1) < kl {
		return false
	}
	q := p[k1+int(kl):]
	ll, k2 := binary.Uvarint(q)
	if k2 <= 0 || uint64(len(q)-k2) < ll {
		return false
	}
	r.key = p[k1 : k1+int(kl) : k1+int(kl)]
	r.line = q[k2 : k2+int(ll) : k2+int(ll)]
	r.pos += k1 + int(kl) + k2 + int(ll)
	return true
}

// fill reads more of the run behind the unparsed bytes; false at the end
// of the run or on an error.
func (r *Reader) fill() bool {
	if r.off >= r.end {
		if r.pos < r.n {
			r.err = errors.New("truncated record at the end of a segment")
			return false
		}
		if len(r.segs) == 0 {
			return false
		}
		r.off, r.end = r.segs[0][0], r.segs[0][0]+r.segs[0][1]
		r.segs = r.segs[1:]
		r.pos, r.n = 0, 0
	}
	copy(r.buf, r.buf[r.pos:r.n])
	r.n -= r.pos
	r.pos = 0
	if r.n == len(r.buf) { // one record longer than the buffer
		r.buf = append(r.buf, make([]byte, len(r.buf))...)
	}
	m := int(min(int64(len(r.buf)-r.n), r.end-r.off))
	if _, err := r.f.ReadAt(r.buf[r.n:r.n+m], r.off); err != nil {
		r.err = fmt.Errorf("read %s at %d: %w", r.what, r.off, err)
		return false
	}
	r.off += int64(m)
	r.n += m
	return true
}

// Merge hands the records of every run to put in key order and returns
// how many it handed; progress is called now and then with the records
// handed since the last call. A key must be in one run only.
//
// The runs meet in a tournament tree of losers: a record costs one
// comparison per level of the tree (a binary heap's sift-down costs two),
// and a comparison is of the keys' first eight bytes as a number, the
// bytes compared only when those are equal.
func Merge(ctx context.Context, put func(key, line []byte) error, h []*Reader, progress func(int64)) (int64, error) {
	cs := make([]cursor, 0, len(h))
	for _, r := range h {
		if r.Next() {
			cs = append(cs, cursor{r: r, pfx: Prefix(r.key)})
		} else if r.err != nil {
			return 0, r.err
		}
	}
	k := len(cs)
	if k == 0 {
		progress(0)
		return 0, nil
	}
	// less says whether run a's record comes before run b's; a run at
	// its end comes after every other.
	less := func(a, b int) bool {
		ca, cb := &cs[a], &cs[b]
		switch {
		case ca.done:
			return false
		case cb.done:
			return true
		case ca.pfx != cb.pfx:
			return ca.pfx < cb.pfx
		}
		return bytes.Compare(ca.r.key, cb.r.key) < 0
	}
	// tree[1:k] holds the loser of each match, tree[0] the winner; run i
	// is the leaf k+i of the tree (node j's children are 2j and 2j+1).
	tree := make([]int, k)
	var play func(node int) int
	play = func(node int) int {
		if node >= k {
			return node - k
		}
		a, b := play(2*node), play(2*node+1)
		if less(a, b) {
			tree[node] = b
			return a
		}
		tree[node] = a
		return b
	}
	tree[0] = play(1)
	var n int64
	for {
		w := tree[0]
		c := &cs[w]
		if c.done {
			break
		}
		if err := put(c.r.key, c.r.line); err != nil {
			return n, err
		}
		n++
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			progress(4096)
		}
		if c.r.Next() {
			c.pfx = Prefix(c.r.key)
		} else {
			if c.r.err != nil {
				return n, c.r.err
			}
			c.done = true
		}
		// Replay the winner's path up to the root.
		for node := (w + k) / 2; node > 0; node /= 2 {
			if less(tree[node], w) {
				tree[node], w = w, tree[node]
			}
		}
		tree[0] = w
	}
	progress(n % 4096)
	return n, nil
}

// cursor is a run in Merge: its reader, the current key's prefix, and
// whether it has ended.
type cursor struct {
	r    *Reader
	pfx  uint64
	done bool
}

// Prefix is key's first eight bytes as a big-endian number, zeros after a
// shorter key: keys whose prefixes differ sort as their prefixes do (a
// shorter key before its extensions), so that a sort or merge of keys
// compares the bytes only where two prefixes tie.
func Prefix[K ~string | ~[]byte](key K) uint64 {
	var b [8]byte
	copy(b[:], key)
	return binary.BigEndian.Uint64(b[:])
}
