package feature

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
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
			{Name: "amount_total", Type: TypeFloat, Doc: "sum of amount"},
			{Name: "amount_mean", Type: TypeFloat, Doc: "mean amount"},
			{Name: "amount_std", Type: TypeFloat, Doc: "sample standard deviation of amount (n-1); empty for one row"},
			{Name: "amount_min", Type: TypeFloat},
			{Name: "amount_max", Type: TypeFloat},
			{Name: "distinct_receivers", Type: TypeInt},
			{Name: "first_issued", Type: TypeTime},
			{Name: "last_issued", Type: TypeTime},
			{Name: "top_receiver", Type: TypeString, Doc: "receiver with the largest total amount (ties: smallest name)"},
			{Name: "top_receiver_amount", Type: TypeFloat},
			{Name: "bad_rows", Type: TypeInt, Doc: "rows whose amount or issue time could not be parsed"},
		},
		NewAggregator: func(*User) Aggregator { return newInvoiceAgg(InvoiceSchema) },
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
	receiverIdx     map[string]int32 // receiver -> index into receiverSum
	receiverSum     []int64
}

func (a *invoiceAgg) addReceiver(name string, v int64) {
	a.receiverIdx[name] = int32(len(a.receiverSum))
	a.receiverSum = append(a.receiverSum, v)
}

func newInvoiceAgg(s *Schema) *invoiceAgg {
	return &invoiceAgg{
		amountCol:   s.Index(ColAmount),
		receiverCol: s.Index(ColReceiver),
		timeCol:     s.Index(ColIssuedAt),
		receiverIdx: make(map[string]int32),
	}
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
		// is looked up without allocating (m[string(b)] does not copy).
		rcv := row.Fields[a.receiverCol]
		if isASCII(rcv) {
			if i, ok := a.receiverIdx[string(rcv)]; ok {
				a.receiverSum[i] += v
			} else {
				a.addReceiver(string(rcv), v)
			}
		} else {
			name := DecodeText(rcv, row.Encoding)
			if i, ok := a.receiverIdx[name]; ok {
				a.receiverSum[i] += v
			} else {
				a.addReceiver(name, v)
			}
		}
	}
	t, err := ParseTime(row.Fields[a.timeCol])
	if err != nil {
		badRow = true
	} else {
		ns := t.UnixNano()
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
	for k, i := range o.receiverIdx {
		if j, ok := a.receiverIdx[k]; ok {
			a.receiverSum[j] += o.receiverSum[i]
		} else {
			a.addReceiver(k, o.receiverSum[i])
		}
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
	out.SetIntAt(6, int64(len(a.receiverSum)))
	if a.nTime > 0 {
		out.SetIntAt(7, a.first)
		out.SetIntAt(8, a.last)
	}
	if len(a.receiverSum) > 0 {
		var top string
		var topV int64
		first := true
		for k, i := range a.receiverIdx {
			v := a.receiverSum[i]
			if first || v > topV || (v == topV && k < top) {
				top, topV, first = k, v, false
			}
		}
		out.SetStringAt(9, top)
		out.SetFloatAt(10, scaled(topV))
	}
	out.SetIntAt(11, a.bad)
	return nil
}

// std computes the sample standard deviation exactly from the integer
// sums: var = (n·Σx² − (Σx)²) / (n(n−1)), then one rounding to float64.
func (a *invoiceAgg) std() float64 {
	n := big.NewInt(a.nAmount)
	sq := new(big.Int).SetUint64(a.sqHi)
	sq.Lsh(sq, 64).Add(sq, new(big.Int).SetUint64(a.sqLo))
	num := new(big.Int).Mul(n, sq)
	s := big.NewInt(a.sum)
	num.Sub(num, s.Mul(s, s))
	den := new(big.Int).Mul(n, big.NewInt(a.nAmount-1))
	den.Mul(den, big.NewInt(amountScale*amountScale))
	q, _ := new(big.Rat).SetFrac(num, den).Float64()
	if q < 0 {
		q = 0
	}
	return math.Sqrt(q)
}
