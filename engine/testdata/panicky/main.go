// Command panicky is a features binary for the engine's tests: invoice
// count and amount total per user, except that the feature function panics
// on the user named by --param panic_user, and leaks memory on every user
// by leak_kib KiB per user when --param leak_kib is set (for --recycle-rss).
package main

import (
	"os"
	"strconv"
	"sync"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/cli"
)

func main() {
	var (
		mu   sync.Mutex
		leak [][]byte
	)
	spec := feature.Spec{
		Name: "panicky",
		Columns: []feature.Column{
			{Name: "invoice_count", Type: feature.TypeInt},
			{Name: "amount_total", Type: feature.TypeFloat},
		},
		Reduce: func(u *feature.User, rows feature.Rows, out *feature.Record) error {
			if string(u.Key) == u.Params.Get("panic_user", "") {
				panic("panicky: refusing user " + string(u.Key))
			}
			if kib, _ := strconv.Atoi(u.Params.Get("leak_kib", "0")); kib > 0 {
				b := make([]byte, kib<<10)
				for i := range b {
					b[i] = 1
				}
				mu.Lock()
				leak = append(leak, b)
				mu.Unlock()
			}
			amount := rows.Schema().Index(feature.ColAmount)
			var n, cents int64
			for rows.Next() {
				v, err := feature.ParseDecimal(rows.Row().Fields[amount], 2)
				if err == nil {
					cents += v
				}
				n++
			}
			out.SetIntAt(0, n)
			out.SetFloatAt(1, float64(cents)/100)
			return nil
		},
	}
	os.Exit(cli.FeaturesMain(os.Args, spec))
}
