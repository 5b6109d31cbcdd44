package feature

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"os"
	"slices"
	"sync"
	"unsafe"

	"github.com/mce-engine/mce/internal/hugemem"
	"github.com/mce-engine/mce/internal/scratchdir"
)

// Receivers written to disk.
//
// A user with very many receivers in one file (the generated data's bank
// has 200,000 in a month of 2 GB of invoices, 400,000 at 4 GB) held every
// receiver's total in memory until its Finish: its table doubled with the
// data, and was what made `mce reduce`'s memory grow with it. Instead, a
// table that would grow past spillSlots slots is written out as one run of
// (name, total) pairs, cut into rcvParts parts by the names' hash, and
// cleared; the names too long for a slot go with it once spillLong of
// them are held. Finish (and MarshalBinary) then add up one part at a
// time: that part's pairs of every run, in a table of their own. The
// user's receivers so take at most a table of spillSlots slots, then one
// of a part's pairs (a 64th of them), whatever the size of the data; the
// totals are exact integers, so the features are the same to the byte.
//
// The runs go to one file per aggregator, in the directory package
// scratchdir names (a cluster's run directory), unlinked as soon as it is
// made: the kernel frees its space when the aggregator is done with it, or
// when the process ends, killed or not.

// rcvParts is how many parts a run is cut into, by the top bits of the
// names' hash (rcvPartBits of them).
const (
	rcvPartBits = 6
	rcvParts    = 1 << rcvPartBits
)

// spillSlots is the largest receivers' table a user keeps: 65,536 slots
// (1.5 MiB), holding up to 49,152 receivers. A var for the tests.
var spillSlots = 1 << 16

// spillLong is how many names too long for a slot a user keeps. A var for
// the tests.
var spillLong = 4096

// rcvSpill is an aggregator's spilled receivers: its runs, and the files
// they are in.
type rcvSpill struct {
	f     *os.File // the file this aggregator appends its runs to
	end   int64    // f's size
	runs  []rcvRun
	files []*os.File // every file of runs: f, and those Merge took over
	err   error      // the first spill that failed; no other is tried
}

// rcvRun is one spilled table, cut into parts. Part p is the bytes
// [off+end[p-1], off+end[p]) of f (end[-1] being 0): first the n[p]
// receivers a slot holds, each as its slot (rcvRecord bytes: the key's two
// words and the total, little-endian), then nLong[p] longer names, each
// as uvarint(len(name)), name, varint(total).
type rcvRun struct {
	f        *os.File
	off      int64
	end      [rcvParts]int64
	n, nLong [rcvParts]int32
}

// rcvRecord is the size of a slot in a run.
const rcvRecord = 24

// part returns where part p of the run is in its file.
func (r *rcvRun) part(p int) (off int64, size int) {
	var start int64
	if p > 0 {
		start = r.end[p-1]
	}
	return r.off + start, int(r.end[p] - start)
}

// release closes the files and forgets the runs.
func (sp *rcvSpill) release() {
	for _, f := range sp.files {
		f.Close()
	}
	*sp = rcvSpill{}
}

// spilled reports whether a has receivers on disk, or failed to write
// them there.
func (a *invoiceAgg) spilled() bool {
	return a.ext != nil && (len(a.ext.spill.runs) > 0 || a.ext.spill.err != nil)
}

// longSeed seeds the hash of the names too long for a slot.
var longSeed = maphash.MakeSeed()

// keyPart is the part of a receiver a slot holds, and namePart that of
// any name: a name has one part, whichever way it is held.
func keyPart(k *rcvKey) int { return int(k.hash() >> (64 - rcvPartBits)) }

func namePart(name []byte) int {
	if len(name) <= rcvInline {
		k := packName(name)
		return keyPart(&k)
	}
	return int(maphash.Bytes(longSeed, name) >> (64 - rcvPartBits))
}

// spill writes the receivers a holds (small's or big's, and long's) out as
// a run and clears them. It returns false when it cannot: the receivers
// stay where they are, the error is kept for Finish, and no other spill
// is tried.
func (a *invoiceAgg) spill() bool {
	if a.ext == nil {
		a.ext = new(invoiceExt)
	}
	sp := &a.ext.spill
	if sp.err != nil {
		return false
	}
	if err := a.writeRun(sp); err != nil {
		sp.err = fmt.Errorf("writing a user's receivers to %s: %w", scratchdir.Get(), err)
		return false
	}
	if a.big != nil {
		clear(a.big)
	} else {
		a.small = [smallReceivers]rcvSlot{}
	}
	a.nIn = 0
	clear(a.long)
	return true
}

// spillBufs are the runs' encoding buffers, shared by a process's
// aggregators.
var spillBufs sync.Pool

// writeRun appends the receivers a holds to sp's file as a run.
func (a *invoiceAgg) writeRun(sp *rcvSpill) error {
	if sp.f == nil {
		f, err := os.CreateTemp(scratchdir.Get(), ".mce-receivers-*")
		if err != nil {
			return err
		}
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return err
		}
		sp.f = f
		sp.files = append(sp.files, f)
	}
	run := rcvRun{f: sp.f, off: sp.end}
	// Each part's size, then the slots and the pairs written where their
	// part's go.
	sl := a.slots()
	for i := range sl {
		if s := &sl[i]; s.key[0] != 0 {
			run.n[keyPart(&s.key)]++
		}
	}
	var longAt [rcvParts]int64 // the long names' bytes, then where they go
	for name, v := range a.long {
		p := namePart(unsafeBytes(name))
		longAt[p] += int64(pairSize(len(name), v))
		run.nLong[p]++
	}
	var at [rcvParts]int64
	var size int64
	for p := range run.end {
		at[p] = size
		size += rcvRecord * int64(run.n[p])
		longAt[p], size = size, size+longAt[p]
		run.end[p] = size
	}
	bp, _ := spillBufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer spillBufs.Put(bp)
	buf := slices.Grow((*bp)[:0], int(size))[:size]
	*bp = buf
	le := binary.LittleEndian
	for i := range sl {
		if s := &sl[i]; s.key[0] != 0 {
			p := keyPart(&s.key)
			r := buf[at[p] : at[p]+rcvRecord]
			le.PutUint64(r, s.key[0])
			le.PutUint64(r[8:], s.key[1])
			le.PutUint64(r[16:], uint64(s.sum))
			at[p] += rcvRecord
		}
	}
	for name, v := range a.long {
		p := namePart(unsafeBytes(name))
		n := longAt[p]
		n += int64(binary.PutUvarint(buf[n:], uint64(len(name))))
		n += int64(copy(buf[n:], name))
		n += int64(binary.PutVarint(buf[n:], v))
		longAt[p] = n
	}
	if _, err := sp.f.WriteAt(buf, sp.end); err != nil {
		return err
	}
	sp.end += size
	sp.runs = append(sp.runs, run)
	return nil
}

// pairSize is the size of a pair in a run.
func pairSize(nameLen int, v int64) int {
	uv := uint64(v) << 1
	if v < 0 {
		uv = ^uv
	}
	return uvarintLen(uint64(nameLen)) + nameLen + uvarintLen(uv)
}

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// takeSpill moves o's runs to a (Merge: a then holds all of o's
// receivers, o those it kept in memory).
func (a *invoiceAgg) takeSpill(o *invoiceAgg) {
	if !o.spilled() {
		return
	}
	if a.ext == nil {
		a.ext = new(invoiceExt)
	}
	sp, osp := &a.ext.spill, &o.ext.spill
	sp.runs = append(sp.runs, osp.runs...)
	sp.files = append(sp.files, osp.files...)
	if sp.err == nil {
		sp.err = osp.err
	}
	*osp = rcvSpill{}
}

var errSpillCorrupt = errors.New("invoice: a user's receivers written to disk read back wrong")

// eachSpilled is eachReceiver for an aggregator whose receivers are partly
// on disk: the receivers it holds are written out as one more run, then
// each part of every run is read back and added up in a table (rcvTable),
// which calls fn once per receiver with its total, part by part.
func (a *invoiceAgg) eachSpilled(fn func(name []byte, sum int64)) error {
	sp := &a.ext.spill
	if a.receivers() > 0 {
		a.spill()
	}
	if sp.err != nil {
		return sp.err
	}
	most := 0 // the most slots a part's runs hold
	for p := range rcvParts {
		n := 0
		for i := range sp.runs {
			n += int(sp.runs[i].n[p])
		}
		most = max(most, n)
	}
	var t rcvTable
	t.slots = hugemem.Cleared[rcvSlot](slotsFor(most))
	t.filled = make([]*rcvSlot, 0, most)
	var buf []byte
	for p := range rcvParts {
		for i := range sp.runs {
			r := &sp.runs[i]
			off, n := r.part(p)
			if n == 0 {
				continue
			}
			buf = slices.Grow(buf[:0], n)[:n]
			if _, err := r.f.ReadAt(buf, off); err != nil {
				return fmt.Errorf("reading a user's receivers back from %s: %w", scratchdir.Get(), err)
			}
			if err := t.add(buf, int(r.n[p]), int(r.nLong[p])); err != nil {
				return err
			}
		}
		t.each(fn)
	}
	return nil
}

// rcvTable adds up one part of the runs: its slots are sized for every
// slot of the part, so it never fills.
type rcvTable struct {
	slots  []rcvSlot
	filled []*rcvSlot // the slots in use, in the order they were filled
	long   map[string]int64
}

// add adds a run's part b: n slots, then nLong pairs.
func (t *rcvTable) add(b []byte, n, nLong int) error {
	if len(b) < rcvRecord*n {
		return errSpillCorrupt
	}
	le := binary.LittleEndian
	for r := b[:rcvRecord*n]; len(r) >= rcvRecord; r = r[rcvRecord:] {
		key := rcvKey{le.Uint64(r), le.Uint64(r[8:])}
		if l := (*[16]byte)(unsafe.Pointer(&key))[0]; l == 0 || l > rcvInline+1 {
			return errSpillCorrupt
		}
		v := int64(le.Uint64(r[16:]))
		if s := slotOf(t.slots, &key, key.hash()); s.key == key {
			s.sum += v
		} else {
			*s = rcvSlot{key: key, sum: v}
			t.filled = append(t.filled, s)
		}
	}
	b = b[rcvRecord*n:]
	for range nLong {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return errSpillCorrupt
		}
		name := b[k : k+int(l)]
		b = b[k+int(l):]
		v, k := binary.Varint(b)
		if k <= 0 {
			return errSpillCorrupt
		}
		b = b[k:]
		if t.long == nil {
			t.long = make(map[string]int64)
		}
		t.long[string(name)] += v
	}
	if len(b) != 0 {
		return errSpillCorrupt
	}
	return nil
}

// each calls fn with every receiver the table holds, and clears it.
func (t *rcvTable) each(fn func(name []byte, sum int64)) {
	for _, s := range t.filled {
		fn(s.key.name(), s.sum)
		*s = rcvSlot{}
	}
	t.filled = t.filled[:0]
	for name, v := range t.long {
		fn(unsafeBytes(name), v)
	}
	clear(t.long)
}

// unsafeBytes returns the bytes of s, which must not be changed.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
