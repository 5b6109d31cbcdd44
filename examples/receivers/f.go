// Features per receiver: who is invoiced how much, by how many issuers.
//
// Run it with
//
//	mce run --features examples/receivers/f.go --param min_amount=10000 data/
//
// mce compiles this file together with mce (the first time takes a minute;
// then the binary is cached) and runs it on every cluster. It shows the
// three parts of a feature file: a Map step that re-keys rows (here by
// receiver instead of issuer, and drops rows of another currency), a
// Reduce over one group's rows, and --param values.
package receivers

import (
	"time"

	"github.com/mce-engine/mce/engine/feature"
)

// Column positions in the input schema, resolved once.
var (
	schema      = feature.InvoiceSchema
	colIssuer   = schema.Index(feature.ColIssuer)
	colReceiver = schema.Index(feature.ColReceiver)
	colAmount   = schema.Index(feature.ColAmount)
	colCurrency = schema.Index(feature.ColCurrency)
	colIssuedAt = schema.Index(feature.ColIssuedAt)
)

// Features is what mce looks for in a features file.
var Features = feature.Spec{
	Name:   "receivers",
	Schema: schema,
	Columns: []feature.Column{
		{Name: "invoices", Type: feature.TypeInt, Doc: "invoices received"},
		{Name: "amount_total", Type: feature.TypeFloat, Doc: "sum of amounts, in the chosen currency"},
		{Name: "issuers", Type: feature.TypeInt, Doc: "distinct issuers"},
		{Name: "large_invoices", Type: feature.TypeInt, Doc: "invoices of at least --param min_amount (default 1000)"},
		{Name: "last_issued", Type: feature.TypeTime},
	},
	Map: byReceiver,
	// KeyName names the output's key column: the Map groups by receiver,
	// so the input's name for its user column would mislead.
	KeyName: "receiver",
	Reduce:  reduce,
}

// byReceiver groups rows by receiver and keeps only one currency
// (--param currency=MXN by default).
func byReceiver(row *feature.Row, p feature.Params) ([]byte, bool) {
	if string(row.Bytes(colCurrency)) != p.Get("currency", "MXN") {
		return nil, false
	}
	return row.Bytes(colReceiver), true
}

func reduce(u *feature.User, rows feature.Rows, out *feature.Record) error {
	minAmount, err := u.Params.Float("min_amount", 1000)
	if err != nil {
		return err
	}
	var n, large int64
	var totalCents int64
	issuers := map[string]bool{}
	var last int64
	for rows.Next() {
		row := rows.Row()
		cents, err := row.Decimal(colAmount, 2)
		if err != nil {
			return err // fails this file, with the user, in failure.log
		}
		n++
		totalCents += cents
		if float64(cents)/100 >= minAmount {
			large++
		}
		issuers[string(row.Bytes(colIssuer))] = true
		if t, err := row.Time(colIssuedAt); err == nil && t.UnixNano() > last {
			last = t.UnixNano()
		}
	}
	out.SetInt("invoices", n)
	out.SetFloat("amount_total", float64(totalCents)/100)
	out.SetInt("issuers", int64(len(issuers)))
	out.SetInt("large_invoices", large)
	if last != 0 {
		out.SetTime("last_issued", time.Unix(0, last))
	}
	return nil
}
