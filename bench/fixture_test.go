package bench

import (
	"encoding/csv"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeInvoices writes small default-layout invoice files into dir: UTF-8,
// a comma delimiter, the schema's column order, descriptions quoted when
// they hold a comma or a quote, issuers with Ñ and &, one heavy issuer,
// and one issuer whose two receivers tie on their total (the tie goes to
// the smallest name). It returns the paths.
func writeInvoices(t *testing.T, dir string, files, rows int, seed uint64) []string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	issuers := []string{"BNM840515VB1", "PEÑA900202CD4", "GAMS850101AB3", "ÑUÑO660404JK7", "A&B010101AA1", "LOPR770303GH6", "SOLO010101ZZ9"}
	receivers := []string{"CLI010101AA1", "CLI020202BB2", "MUÑO040404DD4", "CLI050505EE5", "ZZZ990909ZZ9"}
	descs := []string{"Servicios de consultoría", `Mantenimiento, limpieza y jardinería`, `Pieza "A", 2 unidades`, "Renta mensual"}
	var paths []string
	for fi := range files {
		name := fmt.Sprintf("invoices_2024_%02d.csv", 12-fi)
		var b strings.Builder
		b.WriteString("invoice_id,issuer,receiver,issued_at,amount,currency,description\n")
		row := func(id int, issuer, receiver string, ts time.Time, cents int64, desc string) {
			if strings.ContainsAny(desc, `,"`) {
				desc = `"` + strings.ReplaceAll(desc, `"`, `""`) + `"`
			}
			fmt.Fprintf(&b, "%d,%s,%s,%s,%d.%02d,MXN,%s\n", id, issuer, receiver, ts.Format("2006-01-02 15:04:05"), cents/100, cents%100, desc)
		}
		month := time.Date(2024, time.Month(12-fi), 1, 0, 0, 0, 0, time.UTC)
		for i := range rows {
			issuer := issuers[r.IntN(len(issuers)-1)]
			if r.IntN(4) == 0 {
				issuer = issuers[0] // the heavy one
			}
			ts := month.Add(time.Duration(r.IntN(28*86400)) * time.Second)
			row(fi*100000+i, issuer, receivers[r.IntN(len(receivers))], ts, 1+r.Int64N(5_000_000), descs[r.IntN(len(descs))])
		}
		// A tie: 100.00 to ZZZ… and 60.00 + 40.00 to CLI…: CLI wins.
		row(fi*100000+rows, "SOLO010101ZZ9", "ZZZ990909ZZ9", month, 10000, "Renta mensual")
		row(fi*100000+rows+1, "SOLO010101ZZ9", "CLI010101AA1", month.Add(time.Hour), 6000, "Renta mensual")
		row(fi*100000+rows+2, "SOLO010101ZZ9", "CLI010101AA1", month.Add(2*time.Hour), 4000, "Renta mensual")
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// oracle computes the built-in invoice features of the files with
// encoding/csv and exact integers, independently of every system under
// test.
func oracle(t *testing.T, paths []string) *Features {
	t.Helper()
	type acc struct {
		n, sum, min, max int64
		sq               big.Int
		first, last      int64
		rcv              map[string]int64
	}
	fs := &Features{System: "oracle", Fields: AllFields, Rows: map[Key]*Value{}}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		accs := map[string]*acc{}
		for _, rec := range recs[1:] {
			a := accs[rec[1]]
			if a == nil {
				a = &acc{rcv: map[string]int64{}}
				accs[rec[1]] = a
			}
			units, err := parseUnits(rec[4])
			if err != nil {
				t.Fatal(err)
			}
			ts, err := parseTime(rec[3])
			if err != nil {
				t.Fatal(err)
			}
			if a.n == 0 || units < a.min {
				a.min = units
			}
			if a.n == 0 || units > a.max {
				a.max = units
			}
			if a.n == 0 || ts < a.first {
				a.first = ts
			}
			if a.n == 0 || ts > a.last {
				a.last = ts
			}
			a.n++
			a.sum += units
			a.sq.Add(&a.sq, new(big.Int).Mul(big.NewInt(units), big.NewInt(units)))
			a.rcv[rec[2]] += units
		}
		for user, a := range accs {
			v := &Value{Set: AllFields, Count: a.n, Total: a.sum, Min: a.min, Max: a.max,
				First: a.first, Last: a.last, Distinct: int64(len(a.rcv))}
			v.Mean = float64(a.sum) / float64(a.n) / 1e4
			if a.n > 1 {
				num := new(big.Int).Mul(big.NewInt(a.n), &a.sq)
				num.Sub(num, new(big.Int).Mul(big.NewInt(a.sum), big.NewInt(a.sum)))
				den := new(big.Int).Mul(big.NewInt(a.n*(a.n-1)), big.NewInt(1e8))
				q, _ := new(big.Rat).SetFrac(num, den).Float64()
				v.Std = math.Sqrt(q)
			} else {
				v.Set &^= 1 << FieldStd
			}
			first := true
			for name, amt := range a.rcv {
				if first || amt > v.TopAmount || (amt == v.TopAmount && name < v.Top) {
					v.Top, v.TopAmount, first = name, amt, false
				}
			}
			fs.Rows[Key{File: FileStem(p), User: user}] = v
		}
	}
	return fs
}
