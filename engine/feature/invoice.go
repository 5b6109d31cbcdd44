package feature

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/big"
	"math/bits"
	"sync"
	"unsafe"

	"github.com/mce-engine/mce/internal/ascii"
	"github.com/mce-engine/mce/internal/hugemem"
)

// AmountDigits is the number of fraction digits the built-in invoice
// features keep: amounts are summed as exact fixed-point integers, so a
// user's figures do not depend on the order of its rows or on how a huge
// user was split across workers.
const AmountDigits = 4

const amountScale = 10000 // 10^AmountDigits

// Invoice returns the built-in feature set "invoice", used when a job names
// no --features: per user, the invoice count, total, mean, sample standard
// deviation (n-1), min and max amount, distinct receivers, first and last
// issue time, and the receiver with the largest total amount. Rows whose
// amount or issue time cannot be parsed are counted in bad_rows and left
// out of the figures that need them. It is mergeable.
func Invoice() Spec {
	cols := newInvoiceCols(InvoiceSchema)
	return Spec{
		Name:   "invoice",
		Schema: InvoiceSchema,
		Columns: []Column{
			{Name: "invoice_count", Type: TypeInt, Doc: "rows of the user"},
			{Name: "amount_total", Type: TypeFloat, Scale: AmountDigits, Doc: "sum of amount"},
			{Name: "amount_mean", Type: TypeFloat, Doc: "mean amount"},
			{Name: "amount_std", Type: TypeFloat, Doc: "sample standard deviation of amount (n-1); empty for one row"},
			{Name: "amount_min", Type: TypeFloat, Scale: AmountDigits},
			{Name: "amount_max", Type: TypeFloat, Scale: AmountDigits},
			{Name: "distinct_receivers", Type: TypeInt},
			{Name: "first_issued", Type: TypeTime},
			{Name: "last_issued", Type: TypeTime},
			{Name: "top_receiver", Type: TypeString, Doc: "receiver with the largest total amount (ties: smallest name)"},
			{Name: "top_receiver_amount", Type: TypeFloat, Scale: AmountDigits},
			{Name: "bad_rows", Type: TypeInt, Doc: "rows whose amount or issue time could not be parsed"},
		},
		NewAggregator: func(*User) Aggregator { return &invoiceAgg{cols: cols} },
		Reads:         []string{ColReceiver, ColIssuedAt, ColAmount},
		TimesRead:     true,
		DecimalsRead:  []string{ColAmount},
		columns:       true,
	}
}

// Builtin returns the built-in feature set of that name.
func Builtin(name string) (Spec, error) {
	switch name {
	case "", "invoice":
		return Invoice(), nil
	}
	return Spec{}, fmt.Errorf("no built-in feature set %q (have: invoice)", name)
}

type invoiceAgg struct {
	cols *invoiceCols

	n, nAmount, bad int64
	sum             int64
	sqHi, sqLo      uint64 // sum of squares, 128 bits
	min, max        int64
	first, last     int64 // unix nanos
	nTime           int64

	// The receivers' totals, keyed by the receiver's UTF-8 text (so that
	// the same receiver matches across cp1252 and UTF-8 files), the names
	// held in the slots themselves: most users have a handful, scanned in
	// small in order of first appearance; past smallReceivers they move to
	// big, an open-addressing table at most half full. A name longer than
	// rcvInline bytes (RFCs have 12 or 13) is kept in long instead. A
	// receiver's lookup then touches one cache line, where a map of strings
	// touched three (its control word, its slot, the name's bytes): a big
	// user's receivers do not stay in cache when its rows come between
	// other users' rows (`mce run --mode stream`). The aggregator is kept
	// small (192 bytes) because `mce run`'s one-pass job holds one per
	// user and worker.
	//
	// A user whose receivers pass spillSlots slots has them written out
	// instead (spill.go), so that its memory stays that table's.
	nIn   int32 // receivers in small, or in big once it is made
	small [smallReceivers]rcvSlot
	big   []rcvSlot // at most three quarters full
	long  map[string]int64

	// ext holds what few aggregators need: the spare tables of one that
	// is reused (Reset), the runs of one that spilled its receivers.
	ext *invoiceExt
}

// invoiceExt is the part of an aggregator that few need, behind one
// pointer so that the aggregator keeps its size.
type invoiceExt struct {
	// spares, once the aggregator is reused (keep), are the cleared tables
	// its users outgrew or left, for the next users' big.
	spares rcvSpares
	keep   bool
	spill  rcvSpill
}

// Reset implements Resetter. The receivers' tables are kept, cleared, for
// the next user: a Reducer's aggregator (one per worker) then takes its
// tables from memory it has touched, where fresh tables were a tenth of
// `mce reduce`'s CPU, mostly the kernel handing out their pages.
func (a *invoiceAgg) Reset(*User) {
	x := a.ext
	if x == nil {
		x = new(invoiceExt)
	}
	x.keep = true
	x.spill.release()
	if a.big != nil {
		x.put(a.big)
	}
	*a = invoiceAgg{cols: a.cols, ext: x}
}

// MergeCopies reports whether a.Merge(b) keeps nothing of b's memory, so
// that b may be Reset and used again once merged: true of the built-in
// set's aggregator, false of any other (a feature file's Merge may well
// keep what it was given).
func MergeCopies(b Aggregator) bool {
	_, ok := b.(*invoiceAgg)
	return ok
}

// rcvSpares holds at most one cleared receiver table of each size, 8 <<
// i slots, up to the largest kept (384 KiB, 768 KiB in all). A table is
// cleared when put, so a user pays for clearing the tables it filled, not
// bigger ones. A table of the same size has the same slots for the same
// inserts, fresh or spare, so the features do not depend on which one a
// user got.
type rcvSpares [spareSizes][]rcvSlot

const spareSizes = 12 // 8 to 16384 slots

func spareIndex(n int) int { return bits.Len(uint(n)) - 4 } // 8 → 0

// put keeps t, cleared, when no table of its size is kept; an aggregator
// never reused (x nil, or not keep) gives it to rcvPools.
func (x *invoiceExt) put(t []rcvSlot) {
	if x == nil || !x.keep {
		if i := spareIndex(len(t)); i < spareSizes {
			rcvPools[i].Put(&t[0])
		}
		return
	}
	if i := spareIndex(len(t)); i < spareSizes && x.spares[i] == nil {
		clear(t)
		x.spares[i] = t
	}
}

// rcvPools hold the tables that aggregators never reused (`mce run`'s
// one pass: one per user and worker) outgrew, by size as rcvSpares, for
// other users' tables: as garbage they were half of what such a job
// allocated, and what its heap held above its live aggregates. A pool
// holds a table's first slot (a pointer, which it stores without
// allocating).
var rcvPools [spareSizes]sync.Pool

// table returns a zeroed table of n slots (a power of two, at least 8).
func (a *invoiceAgg) table(n int) []rcvSlot {
	i := spareIndex(n)
	if x := a.ext; x != nil && x.keep {
		if i < spareSizes && x.spares[i] != nil {
			t := x.spares[i]
			x.spares[i] = nil
			return t
		}
	} else if i < spareSizes {
		if p, _ := rcvPools[i].Get().(*rcvSlot); p != nil {
			t := unsafe.Slice(p, n)
			clear(t)
			return t
		}
	}
	return hugemem.Cleared[rcvSlot](n)
}

// invoiceCols are the columns the invoice features read, found once per
// Spec.
type invoiceCols struct{ amount, receiver, time int }

func newInvoiceCols(s *Schema) *invoiceCols {
	return &invoiceCols{amount: s.Index(ColAmount), receiver: s.Index(ColReceiver), time: s.Index(ColIssuedAt)}
}

// smallReceivers is how many receivers a user has before they are hashed.
// Most users of a month have one or two (in the generated data, 77% of
// those a worker sees), and the slots are part of the aggregator, so that
// such a user costs no other object.
const smallReceivers = 2

// rcvInline is the longest receiver name a slot holds: RFCs have 12 or 13
// bytes.
const rcvInline = 15

// rcvKey is a receiver's name of at most rcvInline bytes packed in two
// words: byte 0 is the name's length + 1 (0: no receiver), bytes 1 to 15
// the name, zero-padded. Two names are equal when both words are, and the
// words are the hash's input: no byte-by-byte work per lookup.
type rcvKey [2]uint64

func packName(name []byte) (k rcvKey) {
	b := (*[16]byte)(unsafe.Pointer(&k))
	b[0] = byte(len(name) + 1)
	copy(b[1:], name)
	return k
}

// name returns the name; it aliases k.
func (k *rcvKey) name() []byte {
	b := (*[16]byte)(unsafe.Pointer(k))
	return b[1:b[0]]
}

// hash multiplies the two words, seeded, as wyhash does.
func (k *rcvKey) hash() uint64 {
	h, l := bits.Mul64(k[0]^rcvSeed[0], k[1]^rcvSeed[1])
	return h ^ l
}

// rcvSeed seeds the receivers' hash; set once, random per process, so that
// no input can be made to collide.
var rcvSeed = func() [2]uint64 {
	s := maphash.MakeSeed()
	return [2]uint64{maphash.Comparable(s, 1), maphash.Comparable(s, 2)}
}()

// rcvSlot is one receiver's total (24 bytes).
type rcvSlot struct {
	key rcvKey // zero: an empty slot
	sum int64
}

func newInvoiceAgg(s *Schema) *invoiceAgg { return &invoiceAgg{cols: newInvoiceCols(s)} }

// addReceiver adds v to the receiver's total (name is its UTF-8 text).
func (a *invoiceAgg) addReceiver(name []byte, v int64) {
	if len(name) > rcvInline {
		if len(a.long) >= spillLong {
			if _, ok := a.long[string(name)]; !ok {
				a.spill()
			}
		}
		if a.long == nil {
			a.long = make(map[string]int64)
		}
		a.long[string(name)] += v
		return
	}
	k := packName(name)
	a.addKey(&k, v)
}

// addKey adds v to the total of the receiver k (copied in, when new).
func (a *invoiceAgg) addKey(k *rcvKey, v int64) {
	if a.big == nil {
		for i := range a.small[:a.nIn] {
			if s := &a.small[i]; s.key == *k {
				s.sum += v
				return
			}
		}
		if a.nIn < smallReceivers {
			a.small[a.nIn] = rcvSlot{key: *k, sum: v}
			a.nIn++
			return
		}
		a.resize(8)
	}
	h := k.hash()
	s := a.bigSlotHash(k, h)
	if s.key == *k {
		s.sum += v
		return
	}
	if 4*(int(a.nIn)+1) > 3*len(a.big) {
		if len(a.big) >= spillSlots && a.spill() {
			s = a.bigSlotHash(k, h)
			*s = rcvSlot{key: *k, sum: v}
			a.nIn++
			return
		}
		a.resize(2 * len(a.big))
		s = a.bigSlotHash(k, h)
	}
	*s = rcvSlot{key: *k, sum: v}
	a.nIn++
}

// reserveSlots is the largest table reserve makes.
const reserveSlots = 1024

// reserve readies the receivers' table for n receivers (at most as many
// as reserveSlots hold): a user whose rows come together (`mce reduce`)
// has at most as many receivers as rows, and a table made at that size
// at once costs less than growing through every size on the way (each
// step a fresh table and every receiver moved again). It changes no
// total: only where the receivers sit.
func (a *invoiceAgg) reserve(n int) {
	if n <= smallReceivers {
		return // most users: the small table holds them
	}
	if size := min(slotsFor(n), reserveSlots, spillSlots); size > len(a.big) {
		a.resize(size)
	}
}

// slotsFor is the size of a receivers' table for n receivers: at most
// three quarters full.
func slotsFor(n int) int {
	size := 8
	for 4*n > 3*size {
		size *= 2
	}
	return size
}

// resize moves the receivers held (small's, or big's) into a table of
// size slots, which becomes big; the old big goes back (ext.put).
func (a *invoiceAgg) resize(size int) {
	old := a.slots()
	t := a.table(size)
	for i := range old {
		if old[i].key[0] != 0 {
			*slotOf(t, &old[i].key, old[i].key.hash()) = old[i]
		}
	}
	if a.big != nil {
		a.ext.put(a.big)
	}
	a.big = t
}

// bigSlot returns k's slot in big, or the empty slot where it goes.
func (a *invoiceAgg) bigSlot(k *rcvKey) *rcvSlot { return a.bigSlotHash(k, k.hash()) }

// bigSlotHash is bigSlot for a key whose hash h is known.
func (a *invoiceAgg) bigSlotHash(k *rcvKey, h uint64) *rcvSlot { return slotOf(a.big, k, h) }

// slotOf returns k's slot in the table t (a power of two of slots, not
// full), or the empty slot where it goes; h is k's hash.
func slotOf(t []rcvSlot, k *rcvKey, h uint64) *rcvSlot {
	mask := uint64(len(t) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		if s := &t[i]; s.key == *k || s.key[0] == 0 {
			return s
		}
	}
}

// beats reports whether the receiver name with total v comes before top,
// of total topV, as the top receiver: the larger total, on a tie the
// smaller name.
func beats(name []byte, v int64, top []byte, topV int64) bool {
	return v > topV || v == topV && string(name) < string(top)
}

// Slot returns the address of the receiver slot Add(row) will use, or nil
// (a user with few receivers keeps them in the aggregator itself). It is
// for a prefetch only: `mce run`'s one-pass job (engine/inram) asks the
// CPU for it a few rows before Add, since a big user's receivers are
// spread over memory and its rows come between other users' rows.
//
// The receiver's key it packs is left in the row for that Add, which then
// does not pack it again (2% of the one pass's CPU on the bench's data);
// a row Slot left no key in, Add reads as always. Slot clears the row's
// key first, and the one pass calls it on every row it fills, before
// its Add, so that a key never outlives its row.
func (a *invoiceAgg) Slot(row *Row) unsafe.Pointer {
	row.rcv[0] = 0
	if a.big == nil {
		return nil
	}
	rcv := row.Fields[a.cols.receiver]
	if len(rcv) > rcvInline || !ascii.Valid(rcv) {
		return nil
	}
	k := packName(rcv)
	h := k.hash()
	row.rcv = k
	return unsafe.Pointer(&a.big[h&uint64(len(a.big)-1)])
}

// receivers returns how many receivers the user has.
func (a *invoiceAgg) receivers() int { return int(a.nIn) + len(a.long) }

// eachReceiver calls fn with every receiver's name (valid during the call
// only) and total, in no particular order; an error is one of the
// receivers written to disk (spill.go).
func (a *invoiceAgg) eachReceiver(fn func(name []byte, sum int64)) error {
	if a.spilled() {
		return a.eachSpilled(fn)
	}
	sl := a.slots()
	for i := range sl {
		if s := &sl[i]; s.key[0] != 0 {
			fn(s.key.name(), s.sum)
		}
	}
	for k, v := range a.long {
		fn(unsafeBytes(k), v)
	}
	return nil
}

// slots returns the receivers' slots (big has empty ones).
func (a *invoiceAgg) slots() []rcvSlot {
	if a.big != nil {
		return a.big
	}
	return a.small[:a.nIn]
}

func (a *invoiceAgg) Add(row *Row) error {
	a.n++
	badRow := false
	v, err := row.decimal(a.cols.amount, AmountDigits)
	if err != nil {
		badRow = true
	} else {
		a.addAmount(v)
		if row.rcv[0] != 0 {
			// Slot packed the receiver's name (ASCII, short).
			a.addKey(&row.rcv, v)
			row.rcv[0] = 0
		} else {
			var buf [4 * rcvInline]byte
			a.addReceiver(utf8Text(buf[:0], row.Fields[a.cols.receiver], row.Encoding), v)
		}
	}
	if ns, err := row.unixNano(a.cols.time); err != nil {
		badRow = true
	} else {
		a.addTime(ns)
	}
	if badRow {
		a.bad++
	}
	return nil
}

// addTime adds a row's time, in Unix nanoseconds.
func (a *invoiceAgg) addTime(ns int64) {
	widen(&a.first, &a.last, a.nTime, ns, ns)
	a.nTime++
}

// widen makes [*lo, *hi], the range of n values, cover [vlo, vhi]: it
// is [vlo, vhi] when n is 0.
func widen(lo, hi *int64, n, vlo, vhi int64) {
	if n == 0 || vlo < *lo {
		*lo = vlo
	}
	if n == 0 || vhi > *hi {
		*hi = vhi
	}
}

func (a *invoiceAgg) addAmount(v int64) {
	widen(&a.min, &a.max, a.nAmount, v, v)
	a.nAmount++
	a.sum += v
	abs := uint64(v)
	if v < 0 {
		abs = uint64(-v)
	}
	hi, lo := bits.Mul64(abs, abs)
	var c uint64
	a.sqLo, c = bits.Add64(a.sqLo, lo, 0)
	a.sqHi, _ = bits.Add64(a.sqHi, hi, c)
}

func (a *invoiceAgg) Merge(other Aggregator) error {
	o, ok := other.(*invoiceAgg)
	if !ok {
		return errors.New("invoice: merge with a different aggregator")
	}
	a.n += o.n
	a.bad += o.bad
	if o.nAmount > 0 {
		widen(&a.min, &a.max, a.nAmount, o.min, o.max)
		a.nAmount += o.nAmount
		a.sum += o.sum
		var c uint64
		a.sqLo, c = bits.Add64(a.sqLo, o.sqLo, 0)
		a.sqHi, _ = bits.Add64(a.sqHi, o.sqHi, c)
	}
	if o.nTime > 0 {
		widen(&a.first, &a.last, a.nTime, o.first, o.last)
		a.nTime += o.nTime
	}
	a.takeSpill(o)
	sl := o.slots()
	for i := range sl {
		if s := &sl[i]; s.key[0] != 0 {
			a.addKey(&s.key, s.sum)
		}
	}
	for k, v := range o.long {
		a.addReceiver(unsafeBytes(k), v)
	}
	return nil
}

func scaled(v int64) float64 { return float64(v) / amountScale }

func (a *invoiceAgg) Finish(out *Record) error {
	out.SetIntAt(0, a.n)
	if a.nAmount > 0 {
		out.SetFloatAt(1, scaled(a.sum))
		out.SetFloatAt(2, float64(a.sum)/float64(a.nAmount)/amountScale)
		if a.nAmount > 1 {
			out.SetFloatAt(3, a.std())
		}
		out.SetFloatAt(4, scaled(a.min))
		out.SetFloatAt(5, scaled(a.max))
	}
	if a.nTime > 0 {
		out.SetIntAt(7, a.first)
		out.SetIntAt(8, a.last)
	}
	out.SetIntAt(11, a.bad)
	if a.spilled() {
		return a.finishSpilled(out)
	}
	out.SetIntAt(6, int64(a.receivers()))
	if a.receivers() > 0 {
		var top []byte
		var topV int64
		first := true
		a.eachReceiver(func(k []byte, v int64) {
			if first || beats(k, v, top, topV) {
				top, topV, first = k, v, false
			}
		})
		out.SetBytesAt(9, top)
		out.SetFloatAt(10, scaled(topV))
	}
	return nil
}

// finishSpilled is Finish's receivers for a user whose receivers are
// partly on disk; it is the user's last use of them, so their files are
// closed.
func (a *invoiceAgg) finishSpilled(out *Record) error {
	var top []byte
	var topV, n int64
	err := a.eachReceiver(func(k []byte, v int64) {
		if n == 0 || beats(k, v, top, topV) {
			top, topV = append(top[:0], k...), v // k is the read-back's
		}
		n++
	})
	a.ext.spill.release()
	if err != nil {
		return err
	}
	out.SetIntAt(6, n)
	out.SetBytesAt(9, top)
	out.SetFloatAt(10, scaled(topV))
	return nil
}

// std computes the sample standard deviation exactly from the integer
// sums: var = (n·Σx² − (Σx)²) / (n(n−1)), then one rounding to float64.
func (a *invoiceAgg) std() float64 {
	if q, ok := a.variance128(); ok {
		return math.Sqrt(q)
	}
	w := stdPool.Get().(*stdScratch)
	defer stdPool.Put(w)
	w.n.SetInt64(a.nAmount)
	w.sq.SetUint64(a.sqHi)
	w.sq.Lsh(&w.sq, 64)
	w.t.SetUint64(a.sqLo)
	w.sq.Add(&w.sq, &w.t)
	w.num.Mul(&w.n, &w.sq)
	w.s.SetInt64(a.sum)
	w.t.Mul(&w.s, &w.s)
	w.num.Sub(&w.num, &w.t)
	w.t.SetInt64(a.nAmount - 1)
	w.den.Mul(&w.n, &w.t)
	w.t.SetInt64(amountScale * amountScale)
	w.den.Mul(&w.den, &w.t)
	// The quotient rounded once to float64's 53 bits, as big.Rat's Float64
	// would give it, without the Rat's normalising GCD.
	w.fnum.SetInt(&w.num)
	w.fden.SetInt(&w.den)
	q, _ := w.q.Quo(&w.fnum, &w.fden).Float64()
	if q < 0 {
		q = 0
	}
	return math.Sqrt(q)
}

// variance128 is std's quotient in 128-bit integers, for the users whose
// sums allow it (Σx² < 2^64 and n(n−1)·10^8 < 2^64: all but the heaviest,
// at a fraction of what big numbers cost); ok is false for the others.
func (a *invoiceAgg) variance128() (q float64, ok bool) {
	n := uint64(a.nAmount)
	if a.sqHi != 0 || n >= 1<<32 {
		return 0, false
	}
	dh, den := bits.Mul64(n*(n-1), amountScale*amountScale)
	if dh != 0 {
		return 0, false
	}
	// num = n·Σx² − (Σx)², both < 2^128; it is ≥ 0 (Cauchy–Schwarz).
	ph, pl := bits.Mul64(n, a.sqLo)
	abs := uint64(a.sum)
	if a.sum < 0 {
		abs = uint64(-a.sum)
	}
	sh, sl := bits.Mul64(abs, abs)
	lo, b := bits.Sub64(pl, sl, 0)
	hi, b := bits.Sub64(ph, sh, b)
	if b != 0 {
		return 0, true
	}
	return quo128(hi, lo, den), true
}

// quo128 returns (hi·2^64 + lo) / den rounded once to the nearest float64
// (ties to even), as big.Rat's Float64 would; den > 0.
func quo128(hi, lo, den uint64) float64 {
	if hi == 0 && lo == 0 {
		return 0
	}
	// Shift the numerator so that the quotient has 55 or 56 bits: 53 for
	// the mantissa, one to round by, and the remainder as the sticky bit.
	l := 128 - bits.LeadingZeros64(hi)
	if hi == 0 {
		l = 64 - bits.LeadingZeros64(lo)
	}
	k := 55 + bits.Len64(den) - l // the shift: num<<k has 55+len(den) bits
	var sticky bool
	switch {
	case k > 0:
		if k >= 64 {
			hi, lo = lo<<(k-64), 0
		} else {
			hi, lo = hi<<k|lo>>(64-k), lo<<k
		}
	case k <= -64:
		s := -k - 64 // < 64: l ≤ 128 and len(den) ≥ 1
		sticky = lo != 0 || hi&(1<<s-1) != 0
		hi, lo = 0, hi>>s
	case k < 0:
		s := -k
		sticky = lo&(1<<s-1) != 0
		hi, lo = hi>>s, lo>>s|hi<<(64-s)
	}
	// The quotient is below 2^56: hi / den is 0, and hi is the remainder.
	q, r := bits.Div64(hi, lo, den)
	sticky = sticky || r != 0
	e := -k
	if n := bits.Len64(q); n > 54 {
		d := n - 54
		sticky = sticky || q&(1<<d-1) != 0
		q >>= d
		e += d
	}
	// q has 54 bits: the mantissa and the rounding bit.
	m, half := q>>1, q&1 != 0
	e++
	if half && (sticky || m&1 != 0) {
		m++
	}
	return math.Ldexp(float64(m), e)
}

// stdScratch is std's exact arithmetic, reused: a user's Finish would
// otherwise allocate a dozen big numbers.
type stdScratch struct {
	n, sq, t, num, s, den big.Int
	fnum, fden, q         big.Float
}

var stdPool = sync.Pool{New: func() any {
	w := new(stdScratch)
	w.fnum.SetPrec(256) // exact: num < 2^191, den < 2^153
	w.fden.SetPrec(256)
	w.q.SetPrec(53).SetMode(big.ToNearestEven)
	return w
}}
