// Package userfeat is a features file for reduce's tests: a feature set
// that is not mergeable and depends on the order of a user's rows, so that
// `mce run` and `mce reduce` agree only if both hand the rows over in file
// order. Its Map drops rows below --param min_cents, re-keys rows by
// receiver with --param rekey=1, and its Reduce panics on the user named by
// --param panic_user.
package userfeat

import (
	"github.com/mce-engine/mce/engine/feature"
)

// Features is the feature set; mce's builder compiles it into a features
// binary (e2etest.Main does, for the tests).
func Features() feature.Spec {
	s := feature.InvoiceSchema
	amount, receiver, desc := s.Index(feature.ColAmount), s.Index(feature.ColReceiver), s.Index(feature.ColDescription)
	return feature.Spec{
		Name: "userfeat",
		Columns: []feature.Column{
			{Name: "rows", Type: feature.TypeInt},
			{Name: "amount_cents", Type: feature.TypeInt},
			{Name: "receivers", Type: feature.TypeInt},
			{Name: "first_receiver", Type: feature.TypeString},
			{Name: "last_description", Type: feature.TypeString},
			{Name: "file", Type: feature.TypeString},
		},
		Map: func(row *feature.Row, p feature.Params) ([]byte, bool) {
			if p.Get("rekey", "") != "" {
				return row.Fields[receiver], true
			}
			if min, _ := p.Int("min_cents", 0); min > 0 {
				v, err := feature.ParseDecimal(row.Fields[amount], 2)
				return nil, err == nil && v >= min
			}
			return nil, true
		},
		Reduce: func(u *feature.User, rows feature.Rows, out *feature.Record) error {
			if string(u.Key) == u.Params.Get("panic_user", "") {
				panic("userfeat: refusing user " + string(u.Key))
			}
			var n, cents int64
			seen := map[string]bool{}
			var first, last string
			for rows.Next() {
				r := rows.Row()
				if v, err := feature.ParseDecimal(r.Fields[amount], 2); err == nil {
					cents += v
				}
				rc := r.String(receiver)
				seen[rc] = true
				if n == 0 {
					first = rc
				}
				last = r.String(desc)
				n++
			}
			out.SetIntAt(0, n)
			out.SetIntAt(1, cents)
			out.SetIntAt(2, int64(len(seen)))
			out.SetStringAt(3, first)
			out.SetStringAt(4, last)
			out.SetStringAt(5, u.File)
			return nil
		},
	}
}
