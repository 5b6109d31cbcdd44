// A Reduce-form features file for the Beam tests: its features depend on
// the order of a user's rows (file order), its text features need CSV
// quoting and cp1252 decoding, and --param panic_user=KEY makes the Reduce
// panic on that user (the failure test).
package main

import (
	"github.com/mce-engine/mce/engine/feature"
)

var (
	schema     = feature.InvoiceSchema
	colInvoice = schema.Index(feature.ColInvoiceID)
	colAmount  = schema.Index(feature.ColAmount)
	colIssued  = schema.Index(feature.ColIssuedAt)
	colDesc    = schema.Index(feature.ColDescription)
)

// Features is what mce looks for in a features file.
var Features = feature.Spec{
	Name:   "ordered",
	Schema: schema,
	Columns: []feature.Column{
		{Name: "rows", Type: feature.TypeInt},
		{Name: "first_invoice", Type: feature.TypeString, Doc: "the user's first invoice in the file"},
		{Name: "last_description", Type: feature.TypeString, Doc: "the description of its last row (commas, quotes, newlines)"},
		{Name: "first_amount", Type: feature.TypeFloat},
		{Name: "largest_rise", Type: feature.TypeFloat, Doc: "largest amount increase from one row to the next"},
		{Name: "first_issued", Type: feature.TypeTime},
		{Name: "file", Type: feature.TypeString},
	},
	Reduce: reduce,
}

func reduce(u *feature.User, rows feature.Rows, out *feature.Record) error {
	if p := u.Params.Get("panic_user", ""); p != "" && p == string(u.Key) {
		panic("ordered: asked to fail on " + p)
	}
	var n int64
	var prev, rise float64
	havePrev, haveRise := false, false
	for rows.Next() {
		r := rows.Row()
		if n == 0 {
			out.SetString("first_invoice", r.String(colInvoice))
			if t, err := r.Time(colIssued); err == nil {
				out.SetTime("first_issued", t)
			}
		}
		n++
		out.SetString("last_description", r.String(colDesc))
		a, err := r.Float(colAmount)
		if err != nil {
			continue
		}
		if !havePrev {
			out.SetFloat("first_amount", a)
		} else if d := a - prev; !haveRise || d > rise {
			rise, haveRise = d, true
		}
		prev, havePrev = a, true
	}
	out.SetInt("rows", n)
	if haveRise {
		out.SetFloat("largest_rise", rise)
	}
	out.SetString("file", u.File)
	return nil
}
