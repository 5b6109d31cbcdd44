// The built-in invoice features written as a plain Reduce: what a user
// who writes features as "all of a user's rows in, one line out" gets.
//
// Run it with
//
//	mce run --features examples/invoice-reduce/f.go data/
//
// It gives the built-in set's columns with the same values (amount_std
// is computed in float64 here, so its last digits may differ from the
// built-in exact one). A Reduce set is grouped (`--mode group`, or disk
// when a file's rows do not fit), not taken in one pass: `make bench`
// reports its speed as the run-reduce row, beside the built-in set's.
package invoicereduce

import (
	"math"
	"time"

	"github.com/mce-engine/mce/engine/feature"
)

var (
	schema      = feature.InvoiceSchema
	colReceiver = schema.Index(feature.ColReceiver)
	colAmount   = schema.Index(feature.ColAmount)
	colIssuedAt = schema.Index(feature.ColIssuedAt)
)

// digits is the amounts' fraction digits, as the built-in set's.
const digits = feature.AmountDigits

var scale = math.Pow10(digits)

// Features is what mce looks for in a features file.
var Features = feature.Spec{
	Name:   "invoice-reduce",
	Schema: schema,
	Columns: []feature.Column{
		{Name: "invoice_count", Type: feature.TypeInt},
		{Name: "amount_total", Type: feature.TypeFloat, Scale: digits},
		{Name: "amount_mean", Type: feature.TypeFloat},
		{Name: "amount_std", Type: feature.TypeFloat},
		{Name: "amount_min", Type: feature.TypeFloat, Scale: digits},
		{Name: "amount_max", Type: feature.TypeFloat, Scale: digits},
		{Name: "distinct_receivers", Type: feature.TypeInt},
		{Name: "first_issued", Type: feature.TypeTime},
		{Name: "last_issued", Type: feature.TypeTime},
		{Name: "top_receiver", Type: feature.TypeString},
		{Name: "top_receiver_amount", Type: feature.TypeFloat, Scale: digits},
		{Name: "bad_rows", Type: feature.TypeInt},
	},
	// The columns reduce reads: mce run then copies only these (and the
	// user) out of each file into the rows it groups, and mce reduce
	// decodes only these from the store.
	Reads: []string{feature.ColReceiver, feature.ColIssuedAt, feature.ColAmount},
	// The features read issued_at through row.Time only, never as text:
	// mce reduce then hands row.Time the seconds the store keeps, without
	// writing the times' text first.
	TimesRead: true,
	// It reads amount through row.Decimal only, never as text: mce reduce
	// then hands row.Decimal the numbers its store keeps, without writing
	// their text first.
	DecimalsRead: []string{feature.ColAmount},
	Reduce:       reduce,
}

func reduce(u *feature.User, rows feature.Rows, out *feature.Record) error {
	var n, nAmount, bad, sum, lo, hi int64
	var sq float64
	var first, last time.Time
	receivers := map[string]int64{}
	for rows.Next() {
		row := rows.Row()
		n++
		badRow := false
		if v, err := row.Decimal(colAmount, digits); err != nil {
			badRow = true
		} else {
			if nAmount == 0 || v < lo {
				lo = v
			}
			if nAmount == 0 || v > hi {
				hi = v
			}
			nAmount++
			sum += v
			sq += float64(v) * float64(v)
			receivers[row.String(colReceiver)] += v
		}
		if t, err := row.Time(colIssuedAt); err != nil {
			badRow = true
		} else {
			if first.IsZero() || t.Before(first) {
				first = t
			}
			if last.IsZero() || t.After(last) {
				last = t
			}
		}
		if badRow {
			bad++
		}
	}
	out.SetInt("invoice_count", n)
	if nAmount > 0 {
		out.SetFloat("amount_total", float64(sum)/scale)
		out.SetFloat("amount_mean", float64(sum)/float64(nAmount)/scale)
		if nAmount > 1 {
			m := float64(sum) / float64(nAmount)
			v := (sq - m*float64(sum)) / float64(nAmount-1)
			out.SetFloat("amount_std", math.Sqrt(max(v, 0))/scale)
		}
		out.SetFloat("amount_min", float64(lo)/scale)
		out.SetFloat("amount_max", float64(hi)/scale)
	}
	out.SetInt("distinct_receivers", int64(len(receivers)))
	if !first.IsZero() {
		out.SetTime("first_issued", first)
		out.SetTime("last_issued", last)
	}
	top, topV, any := "", int64(0), false
	for name, v := range receivers {
		if !any || v > topV || (v == topV && name < top) {
			top, topV, any = name, v, true
		}
	}
	if any {
		out.SetString("top_receiver", top)
		out.SetFloat("top_receiver_amount", float64(topV)/scale)
	}
	out.SetInt("bad_rows", bad)
	return nil
}
