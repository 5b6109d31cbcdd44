package feature

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"sync"
	"unsafe"
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
		NewAggregator: func(*User) Aggregator { return newInvoiceAgg(InvoiceSchema) },
		Reads:         []string{ColReceiver, ColIssuedAt, ColAmount},
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
	amountCol, receiverCol, timeCol int

	n, nAmount, bad int64
	sum             int64
	sqHi, sqLo      uint64 // sum of squares, 128 bits
	min, max        int64
	first, last     int64 // unix nanos
	nTime           int64

	// The receivers' totals, in order of first appearance, and their
	// names: most users have a handful, found by a scan of rcvNames; past
	// smallReceivers the names move to the index rcvIdx (name -> position
	// in rcvSum) and rcvNames is dropped. Names added from a row are copied
	// into nameBuf, which is never written over (a full one is replaced),
	// so that a name costs no allocation of its own.
	rcvSum   []int64
	rcvNames []string
	rcvIdx   map[string]int32
	nameBuf  []byte
	names0   [4]string // rcvNames's first array
	sums0    [4]int64
}

// smallReceivers is how many receivers a user has before they are indexed
// by a map: below it a linear scan is cheaper than hashing and a user
// costs no map (BenchmarkInvoice).
const smallReceivers = 12

func newInvoiceAgg(s *Schema) *invoiceAgg {
	a := &invoiceAgg{
		amountCol:   s.Index(ColAmount),
		receiverCol: s.Index(ColReceiver),
		timeCol:     s.Index(ColIssuedAt),
	}
	a.rcvNames, a.rcvSum = a.names0[:0], a.sums0[:0]
	return a
}

// receiver returns the index of the receiver name, or -1.
func (a *invoiceAgg) receiver(name string) int {
	if a.rcvIdx != nil {
		if i, ok := a.rcvIdx[name]; ok {
			return int(i)
		}
		return -1
	}
	for i, n := range a.rcvNames {
		if n == name {
			return i
		}
	}
	return -1
}

// addReceiver adds a receiver that receiver did not find.
func (a *invoiceAgg) addReceiver(name string, v int64) {
	switch {
	case a.rcvIdx != nil:
		a.rcvIdx[name] = int32(len(a.rcvSum))
	case len(a.rcvNames) == smallReceivers:
		a.rcvIdx = make(map[string]int32, 4*smallReceivers)
		for i, n := range a.rcvNames {
			a.rcvIdx[n] = int32(i)
		}
		a.rcvIdx[name] = int32(len(a.rcvSum))
		a.rcvNames = nil
	default:
		a.rcvNames = append(a.rcvNames, name)
	}
	a.rcvSum = append(a.rcvSum, v)
}

// eachReceiver calls fn with every receiver's name and total, in no
// particular order.
func (a *invoiceAgg) eachReceiver(fn func(name string, sum int64)) {
	if a.rcvIdx != nil {
		for k, i := range a.rcvIdx {
			fn(k, a.rcvSum[i])
		}
		return
	}
	for i, k := range a.rcvNames {
		fn(k, a.rcvSum[i])
	}
}

// keepName returns a copy of b that lives as long as the aggregator.
func (a *invoiceAgg) keepName(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(a.nameBuf)-len(a.nameBuf) < len(b) {
		a.nameBuf = make([]byte, 0, max(min(4*cap(a.nameBuf), 64<<10), 256, len(b)))
	}
	start := len(a.nameBuf)
	a.nameBuf = append(a.nameBuf, b...)
	return unsafe.String(&a.nameBuf[start], len(b))
}

func (a *invoiceAgg) Add(row *Row) error {
	a.n++
	badRow := false
	v, err := ParseDecimal(row.Fields[a.amountCol], AmountDigits)
	if err != nil {
		badRow = true
	} else {
		a.addAmount(v)
		// Receivers are keyed by their UTF-8 text, so that the same
		// receiver matches across cp1252 and UTF-8 files. An ASCII name
		// is looked up in place and copied only when it is new.
		rcv := row.Fields[a.receiverCol]
		if isASCII(rcv) {
			if i := a.receiver(unsafeString(rcv)); i >= 0 {
				a.rcvSum[i] += v
			} else {
				a.addReceiver(a.keepName(rcv), v)
			}
		} else {
			name := DecodeText(rcv, row.Encoding)
			if i := a.receiver(name); i >= 0 {
				a.rcvSum[i] += v
			} else {
				a.addReceiver(name, v)
			}
		}
	}
	ns, err := parseUnixNano(row.Fields[a.timeCol])
	if err != nil {
		badRow = true
	} else {
		if a.nTime == 0 || ns < a.first {
			a.first = ns
		}
		if a.nTime == 0 || ns > a.last {
			a.last = ns
		}
		a.nTime++
	}
	if badRow {
		a.bad++
	}
	return nil
}

func (a *invoiceAgg) addAmount(v int64) {
	if a.nAmount == 0 || v < a.min {
		a.min = v
	}
	if a.nAmount == 0 || v > a.max {
		a.max = v
	}
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
		if a.nAmount == 0 || o.min < a.min {
			a.min = o.min
		}
		if a.nAmount == 0 || o.max > a.max {
			a.max = o.max
		}
		a.nAmount += o.nAmount
		a.sum += o.sum
		var c uint64
		a.sqLo, c = bits.Add64(a.sqLo, o.sqLo, 0)
		a.sqHi, _ = bits.Add64(a.sqHi, o.sqHi, c)
	}
	if o.nTime > 0 {
		if a.nTime == 0 || o.first < a.first {
			a.first = o.first
		}
		if a.nTime == 0 || o.last > a.last {
			a.last = o.last
		}
		a.nTime += o.nTime
	}
	o.eachReceiver(func(k string, v int64) {
		if j := a.receiver(k); j >= 0 {
			a.rcvSum[j] += v
		} else {
			a.addReceiver(k, v)
		}
	})
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
	out.SetIntAt(6, int64(len(a.rcvSum)))
	if a.nTime > 0 {
		out.SetIntAt(7, a.first)
		out.SetIntAt(8, a.last)
	}
	if len(a.rcvSum) > 0 {
		var top string
		var topV int64
		first := true
		a.eachReceiver(func(k string, v int64) {
			if first || v > topV || (v == topV && k < top) {
				top, topV, first = k, v, false
			}
		})
		out.SetStringAt(9, top)
		out.SetFloatAt(10, scaled(topV))
	}
	out.SetIntAt(11, a.bad)
	return nil
}

// std computes the sample standard deviation exactly from the integer
// sums: var = (n·Σx² − (Σx)²) / (n(n−1)), then one rounding to float64.
func (a *invoiceAgg) std() float64 {
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
