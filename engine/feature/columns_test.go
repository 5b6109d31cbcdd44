package feature

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// columnRows hands rows out as mce reduce's reader does: each row's
// amount and time in Parsed only (their text nil), and, when cols is
// set, runs of them as Columns, cut at the boundaries in cuts.
type columnRows struct {
	fields  [][][]byte
	units   []int64
	scales  []int // one scale per run, as a store block has one per column
	seconds []int64
	enc     Encoding
	cuts    []int // the first row of each run after the first
	cols    bool
	same    bool // a run whose receivers are all the same is handed as Same

	i   int // the current row
	row Row
	// taken counts the rows handed over as Columns.
	taken int
}

func (r *columnRows) runOf(i int) (k, end int) {
	end = len(r.fields)
	for k = 0; k < len(r.cuts); k++ {
		if i < r.cuts[k] {
			end = r.cuts[k]
			break
		}
	}
	return k, end
}

func (r *columnRows) Next() bool {
	r.i++
	if r.i >= len(r.fields) {
		return false
	}
	k, _ := r.runOf(r.i)
	amount, at := InvoiceSchema.Index(ColAmount), InvoiceSchema.Index(ColIssuedAt)
	f := append([][]byte(nil), r.fields[r.i]...)
	f[amount], f[at] = nil, nil
	r.row = Row{Fields: f, Schema: InvoiceSchema, Encoding: r.enc, Parsed: Parsed{
		Times: 1 << at, Decimals: 1 << amount,
		Values: make([]int64, len(f)), Scales: make([]uint8, len(f)),
	}}
	r.row.Parsed.Values[amount], r.row.Parsed.Scales[amount] = r.units[r.i], uint8(r.scales[k])
	r.row.Parsed.Values[at] = r.seconds[r.i]
	return true
}

func (r *columnRows) Row() *Row       { return &r.row }
func (r *columnRows) Err() error      { return nil }
func (r *columnRows) Schema() *Schema { return InvoiceSchema }

func (r *columnRows) Columns(c *Columns) bool {
	if !r.cols || r.i%5 == 3 { // some runs' first rows one by one
		return false
	}
	k, end := r.runOf(r.i)
	rcv := InvoiceSchema.Index(ColReceiver)
	*c = Columns{N: end - r.i, Units: r.units[r.i:end], Scale: r.scales[k], Seconds: r.seconds[r.i:end], Encoding: r.enc}
	same := true
	for i := r.i; i < end; i++ {
		same = same && string(r.fields[i][rcv]) == string(r.fields[r.i][rcv])
	}
	if same && r.same {
		c.Same = r.fields[r.i][rcv]
	} else {
		for i := r.i; i < end; i++ {
			c.Starts = append(c.Starts, uint32(len(c.Text)))
			c.Text = append(c.Text, r.fields[i][rcv]...)
			c.Ends = append(c.Ends, uint32(len(c.Text)))
		}
	}
	r.taken += end - r.i
	r.i = end - 1
	return true
}

// TestInvoice_addColumns checks that the built-in features give the same
// figures from rows handed over as Columns as from the same rows one by
// one: bad amounts (more fraction digits than they keep, past int64),
// times past what UnixNano holds, receivers long, empty, non-ASCII in
// cp1252 and UTF-8, the same in a whole run, and many.
func TestInvoice_addColumns(t *testing.T) {
	spec := Invoice()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	rcvCol := InvoiceSchema.Index(ColReceiver)
	receivers := []string{"", "AAA010101AAA", "BBB020202BB2", "A-RECEIVER-LONGER-THAN-15", "PEÑA010101AB1", "\xd1ANDU010101A"}
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		n := 1 + r.IntN(600)
		rows := invoiceRows(r, n)
		cr := &columnRows{fields: rows, units: make([]int64, n), seconds: make([]int64, n), i: -1}
		cr.enc = []Encoding{EncodingUTF8, EncodingCP1252, EncodingAuto}[trial%3]
		cr.same = trial%2 == 0
		for i := 1; i < n; i++ {
			if r.IntN(40) == 0 {
				cr.cuts = append(cr.cuts, i)
			}
		}
		for range len(cr.cuts) + 1 {
			scale := []int{0, 1, 2, 4, 5, 9}[r.IntN(6)]
			cr.scales = append(cr.scales, scale)
		}
		distinct := 1 + r.IntN(1+trial*3) // past smallReceivers: the table
		for i := range rows {
			switch x := r.IntN(20); {
			case x == 0:
				rows[i][rcvCol] = []byte(receivers[r.IntN(len(receivers))])
			case trial%4 == 1 && x < 15:
				rows[i][rcvCol] = rows[0][rcvCol] // runs of one receiver
			default:
				rows[i][rcvCol] = []byte("R" + strconv.Itoa(r.IntN(distinct)))
			}
			cr.units[i] = r.Int64N(1e9) - 5e8
			switch r.IntN(30) {
			case 0:
				cr.units[i] = 99999999999999999 // past int64 at 4 digits from scale 0 or 1
			case 1:
				cr.units[i] = -922337203685477
			}
			cr.seconds[i] = 1.7e9 + r.Int64N(3e7)
			if r.IntN(50) == 0 {
				cr.seconds[i] = math.MaxInt64 / 1_000_000_000 * []int64{1, -1}[r.IntN(2)] * 2
			}
		}
		u := &User{Key: []byte("U1")}
		byRow, byCols := spec.NewRecord(), spec.NewRecord()
		if err := spec.ReduceUser(u, cr, byRow); err != nil {
			t.Fatal(err)
		}
		cr.i, cr.cols = -1, true
		if err := spec.ReduceUser(u, cr, byCols); err != nil {
			t.Fatal(err)
		}
		if cr.taken == 0 && n > 1 {
			t.Fatalf("trial %d: no rows handed over as Columns", trial)
		}
		if a, b := format(byRow), format(byCols); a != b {
			t.Fatalf("trial %d (%d rows, runs at %v, scales %v):\nby row     %s\nby columns %s", trial, n, cr.cuts, cr.scales, a, b)
		}
	}
}

// oneRun is a ColumnRows that hands its rows over as one run of Columns.
type oneRun struct {
	c    Columns
	left bool
}

func (r *oneRun) Next() bool {
	ok := r.left
	r.left = false
	return ok
}
func (r *oneRun) Columns(c *Columns) bool { *c = r.c; return true }
func (r *oneRun) Row() *Row               { panic("oneRun: rows are handed over as Columns") }
func (r *oneRun) Err() error              { return nil }
func (r *oneRun) Schema() *Schema         { return InvoiceSchema }

// BenchmarkReducer_columns runs the built-in features as `mce reduce`
// does (one Reducer, users one after another, their rows as Columns) on
// 1,000 users of n rows each, whose receivers are mostly all different
// ("distinct") or a handful over and over ("repeat"). Bytes are the
// receivers' names.
func BenchmarkReducer_columns(b *testing.B) {
	for _, shape := range []string{"distinct", "repeat"} {
		for _, n := range []int{12, 40, 200} {
			b.Run(fmt.Sprintf("%s/rows=%d", shape, n), func(b *testing.B) {
				spec := Invoice()
				if err := spec.Validate(); err != nil {
					b.Fatal(err)
				}
				r := rand.New(rand.NewPCG(7, 8))
				const users = 1000
				runs := make([]*oneRun, users)
				var bytes int64
				for u := range runs {
					c := Columns{N: n, Scale: 2, Encoding: EncodingUTF8}
					for range n {
						id := r.IntN(1_000_000)
						if shape == "repeat" {
							id = r.IntN(8)
						}
						c.Starts = append(c.Starts, uint32(len(c.Text)))
						c.Text = fmt.Appendf(c.Text, "RFC%06dAB1", id)
						c.Ends = append(c.Ends, uint32(len(c.Text)))
						c.Units = append(c.Units, r.Int64N(1e7))
						c.Seconds = append(c.Seconds, 1.7e9+r.Int64N(3e7))
					}
					bytes += int64(len(c.Text))
					runs[u] = &oneRun{c: c}
				}
				red, out, user := spec.NewReducer(), spec.NewRecord(), &User{Key: []byte("U")}
				b.SetBytes(bytes)
				b.ReportAllocs()
				for b.Loop() {
					for _, run := range runs {
						run.left = true
						if err := red.ReduceUser(user, run, out); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
