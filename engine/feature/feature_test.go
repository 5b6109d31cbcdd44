package feature

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseDecimal(t *testing.T) {
	f := func(in string, digits int, want int64, wantErr bool) {
		t.Helper()
		got, err := ParseDecimal([]byte(in), digits)
		if (err != nil) != wantErr || (!wantErr && got != want) {
			t.Errorf("ParseDecimal(%q, %d) = %d, %v; want %d, err=%v", in, digits, got, err, want, wantErr)
		}
	}
	f("12.5", 4, 125000, false)
	f("12", 2, 1200, false)
	f("-0.01", 2, -1, false)
	f("+3.10", 2, 310, false)
	f(".5", 1, 5, false)
	f("5.", 1, 50, false)
	f("1.234", 2, 0, true) // more digits than kept: no silent rounding
	f("", 2, 0, true)
	f("-", 2, 0, true)
	f(".", 2, 0, true)
	f("1e3", 2, 0, true)
	f("1.2.3", 2, 0, true)
	f("99999999999999999999", 2, 0, true)
	f(" 1", 2, 0, true)
}

func TestParseTime(t *testing.T) {
	f := func(in string, want string, wantErr bool) {
		t.Helper()
		got, err := ParseTime([]byte(in))
		if (err != nil) != wantErr {
			t.Fatalf("ParseTime(%q) err = %v, wantErr %v", in, err, wantErr)
		}
		if !wantErr && got.Format(time.RFC3339Nano) != want {
			t.Errorf("ParseTime(%q) = %s, want %s", in, got.Format(time.RFC3339Nano), want)
		}
	}
	f("2024-01-15 13:45:12", "2024-01-15T13:45:12Z", false)
	f("2024-01-15T13:45:12", "2024-01-15T13:45:12Z", false)
	f("2024-01-15", "2024-01-15T00:00:00Z", false)
	f("2024-01-15T13:45:12+01:00", "2024-01-15T12:45:12Z", false)
	f("2024-01-15T13:45:12.5Z", "2024-01-15T13:45:12.5Z", false)
	f("2024-01-15 13:45:12.25", "2024-01-15T13:45:12.25Z", false)
	f("2023-02-30 10:00:00", "", true)
	f("2024-13-01", "", true)
	f("15/01/2024", "", true)
	f("", "", true)
}

func TestRow_Accessors(t *testing.T) {
	s := InvoiceSchema
	row := &Row{Schema: s, Encoding: EncodingCP1252, Fields: [][]byte{
		[]byte("7"), []byte("ABC010101XY1"), []byte("R1"), []byte("2024-03-01 10:00:00"),
		[]byte("10.50"), []byte("MXN"), []byte("Compa\xf1\xeda de caf\xe9"),
	}}
	if n, err := row.Int(0); err != nil || n != 7 {
		t.Errorf("Int = %d, %v", n, err)
	}
	if v, err := row.Float(4); err != nil || v != 10.5 {
		t.Errorf("Float = %v, %v", v, err)
	}
	if got := row.String(6); got != "Compañía de café" {
		t.Errorf("String(cp1252) = %q", got)
	}
	if _, err := row.Int(1); err == nil || !strings.Contains(err.Error(), "column issuer") {
		t.Errorf("Int(issuer) error should name the column: %v", err)
	}
	var fe *FieldError
	if _, err := row.Time(2); !errors.As(err, &fe) || fe.Column != "receiver" {
		t.Errorf("Time(receiver) = %v", err)
	}
}

func TestDecodeText(t *testing.T) {
	f := func(in string, enc Encoding, want string) {
		t.Helper()
		if got := DecodeText([]byte(in), enc); got != want {
			t.Errorf("DecodeText(%q, %s) = %q, want %q", in, enc, got, want)
		}
	}
	f("plain", EncodingAuto, "plain")
	f("se\xf1or", EncodingAuto, "señor")      // invalid UTF-8: cp1252
	f("señor", EncodingAuto, "señor")         // valid UTF-8 stays
	f("se\xf1or", EncodingCP1252, "señor")    // forced
	f("se\xf1or", EncodingUTF8, "se\ufffdor") // invalid bytes replaced
	f("\x80", EncodingCP1252, "€")
}

func TestSpec_Validate(t *testing.T) {
	red := func(*User, Rows, *Record) error { return nil }
	f := func(s Spec, want string) {
		t.Helper()
		err := s.Validate()
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("Validate(%s) = %v, want %q", s.Name, err, want)
		}
	}
	cols := []Column{{Name: "n", Type: TypeInt}}
	f(Spec{Name: "ok", Columns: cols, Reduce: red}, "")
	f(Spec{Columns: cols, Reduce: red}, "no Name")
	f(Spec{Name: "x", Reduce: red}, "no Columns")
	f(Spec{Name: "x", Columns: cols}, "exactly one")
	f(Spec{Name: "x", Columns: []Column{{Name: "a,b", Type: TypeInt}}, Reduce: red}, "bad column name")
	f(Spec{Name: "x", Columns: []Column{{Name: "a", Type: TypeInt}, {Name: "a", Type: TypeInt}}, Reduce: red}, "twice")
	f(Spec{Name: "x", Columns: []Column{{Name: "a"}}, Reduce: red}, "no type")
	f(Spec{Name: "reads", Columns: cols, Reduce: red, Reads: []string{"Amount", " receiver "}}, "")
	f(Spec{Name: "x", Columns: cols, Reduce: red, Reads: []string{"amount", "price"}}, `Reads names column "price"`)
	inv := Invoice()
	f(inv, "")
}

func TestSpec_ReduceUserRecoversPanic(t *testing.T) {
	s := Spec{Name: "p", Columns: []Column{{Name: "n", Type: TypeInt}},
		Reduce: func(u *User, rows Rows, out *Record) error {
			var s []int
			s[len(u.Key)]++ // index out of range
			return nil
		}}
	err := s.ReduceUser(&User{Key: []byte("u")}, NewSliceRows(InvoiceSchema, EncodingAuto, nil), s.NewRecord())
	var pe *PanicError
	if !errors.As(err, &pe) || !strings.Contains(pe.Stack, "feature_test.go") {
		t.Fatalf("want *PanicError with stack, got %v", err)
	}
}

// invoiceRows makes n random invoice rows for one user.
func invoiceRows(r *rand.Rand, n int) [][][]byte {
	rows := make([][][]byte, n)
	for i := range rows {
		amount := strconv.FormatFloat(float64(r.IntN(10_000_000))/100, 'f', 2, 64)
		day := 1 + r.IntN(28)
		rows[i] = [][]byte{
			[]byte(strconv.Itoa(i)), []byte("U1"), []byte("R" + strconv.Itoa(r.IntN(7))),
			[]byte("2024-02-" + twoDigits(day) + " 10:00:00"), []byte(amount), []byte("MXN"), []byte("x"),
		}
		if r.IntN(50) == 0 {
			rows[i][4] = []byte("n/a")
		}
	}
	return rows
}

func twoDigits(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

func format(r *Record) string {
	var b []byte
	for i := range r.Columns() {
		if i > 0 {
			b = append(b, ',')
		}
		b = r.AppendField(b, i)
	}
	return string(b)
}

// TestInvoice_MergeEqualsSequential checks that splitting a user's rows
// over any number of aggregators and merging gives exactly (bit for bit)
// what one aggregator over all rows gives: what lets the engine split a
// huge user across workers and still match `mce reduce`.
func TestInvoice_MergeEqualsSequential(t *testing.T) {
	spec := Invoice()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 50; trial++ {
		rows := invoiceRows(r, 1+r.IntN(500))
		if trial%2 == 1 { // past smallReceivers: the indexed receivers
			for _, f := range rows {
				f[2] = []byte("R" + strconv.Itoa(r.IntN(1+trial*2)))
			}
		}
		u := &User{Key: []byte("U1")}
		whole := spec.NewRecord()
		if err := spec.ReduceUser(u, NewSliceRows(InvoiceSchema, EncodingAuto, rows), whole); err != nil {
			t.Fatal(err)
		}
		// The receiver figures, from a plain map.
		sums := map[string]int64{}
		for _, f := range rows {
			if v, err := ParseDecimal(f[4], AmountDigits); err == nil {
				sums[string(f[2])] += v
			}
		}
		top, topV := "", int64(0)
		for k, v := range sums {
			if top == "" || v > topV || v == topV && k < top {
				top, topV = k, v
			}
		}
		if got := string(whole.AppendField(nil, 6)) + "," + string(whole.AppendField(nil, 9)); got != strconv.Itoa(len(sums))+","+top {
			t.Fatalf("trial %d: distinct_receivers,top_receiver = %s; want %d,%s", trial, got, len(sums), top)
		}
		// Split into k shuffled parts, merged in another order.
		k := 1 + r.IntN(6)
		parts := make([]Aggregator, k)
		for i := range parts {
			parts[i] = spec.NewAggregator(u)
		}
		for _, fields := range rows {
			if err := parts[r.IntN(k)].Add(&Row{Fields: fields, Schema: InvoiceSchema}); err != nil {
				t.Fatal(err)
			}
		}
		for i := k - 1; i > 0; i-- {
			if err := parts[0].Merge(parts[i]); err != nil {
				t.Fatal(err)
			}
		}
		merged := spec.NewRecord()
		if err := parts[0].Finish(merged); err != nil {
			t.Fatal(err)
		}
		if a, b := format(whole), format(merged); a != b {
			t.Fatalf("trial %d: merged differs\nwhole  %s\nmerged %s", trial, a, b)
		}
	}
}

func TestInvoice_Figures(t *testing.T) {
	spec := Invoice()
	spec.Validate()
	rows := [][][]byte{
		{[]byte("1"), []byte("U"), []byte("B"), []byte("2024-01-03 00:00:00"), []byte("10.00"), []byte("MXN"), nil},
		{[]byte("2"), []byte("U"), []byte("A"), []byte("2024-01-01 00:00:00"), []byte("20.00"), []byte("MXN"), nil},
		{[]byte("3"), []byte("U"), []byte("B"), []byte("2024-01-02 00:00:00"), []byte("10.00"), []byte("MXN"), nil},
		{[]byte("4"), []byte("U"), []byte("C"), []byte("bad"), []byte("x"), []byte("MXN"), nil},
	}
	out := spec.NewRecord()
	if err := spec.ReduceUser(&User{Key: []byte("U")}, NewSliceRows(InvoiceSchema, EncodingAuto, rows), out); err != nil {
		t.Fatal(err)
	}
	// Ties on top receiver (A=20, B=20) go to the smaller name.
	want := "4,40,13.333333333333334,5.773502691896258,10,20,2,2024-01-01T00:00:00Z,2024-01-03T00:00:00Z,A,20,1"
	if got := format(out); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestParams(t *testing.T) {
	p, err := ParseParams([]string{"a=1", "b=x=y", "c="})
	if err != nil {
		t.Fatal(err)
	}
	if p.Get("b", "") != "x=y" || p.Get("c", "d") != "" || p.Get("z", "d") != "d" {
		t.Errorf("params %v", p)
	}
	if n, err := p.Int("a", 0); err != nil || n != 1 {
		t.Errorf("Int = %d, %v", n, err)
	}
	if _, err := p.Float("b", 0); err == nil {
		t.Errorf("Float(b) should fail")
	}
	if _, err := ParseParams([]string{"novalue"}); err == nil {
		t.Errorf("want error for novalue")
	}
}

// TestInvoice_ReceiverAcrossEncodings: a receiver with Ñ written in cp1252
// in one row and UTF-8 in another is one receiver, its amounts summed.
func TestInvoice_ReceiverAcrossEncodings(t *testing.T) {
	spec := Invoice()
	spec.Validate()
	agg := spec.NewAggregator(&User{})
	mk := func(rcv, amount string, enc Encoding) *Row {
		return &Row{Encoding: enc, Schema: InvoiceSchema, Fields: [][]byte{
			[]byte("1"), []byte("U"), []byte(rcv), []byte("2024-01-01 00:00:00"), []byte(amount), []byte("MXN"), nil}}
	}
	for _, r := range []*Row{
		mk("PE\xd1A010101AB1", "10.00", EncodingCP1252),
		mk("PE\xd1A010101AB1", "5.00", EncodingAuto),
		mk("PEÑA010101AB1", "1.00", EncodingUTF8),
		mk("ZED", "15.00", EncodingUTF8),
	} {
		if err := agg.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	out := spec.NewRecord()
	agg.Finish(out)
	got := format(out)
	if !strings.Contains(got, ",2,") || !strings.Contains(got, "PEÑA010101AB1,16,") {
		t.Errorf("want 2 receivers and PEÑA with 16: %s", got)
	}
}

func BenchmarkInvoice_Add(b *testing.B) {
	spec := Invoice()
	spec.Validate()
	rows := invoiceRows(rand.New(rand.NewPCG(3, 4)), 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		agg := spec.NewAggregator(&User{})
		row := &Row{Schema: InvoiceSchema}
		for _, f := range rows {
			row.Fields = f
			agg.Add(row)
		}
	}
}

// BenchmarkInvoice runs the built-in aggregator over whole users (new
// aggregator, every row, Finish) of a few sizes: the generated data has a
// median of about a dozen rows per user, most of them to a handful of
// repeat receivers, and a few users with most of the rows.
func BenchmarkInvoice(b *testing.B) {
	for _, n := range []int{3, 12, 100, 10000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			spec := Invoice()
			spec.Validate()
			r := rand.New(rand.NewPCG(5, 6))
			rows := make([][][]byte, n)
			var bytes int64
			for i := range rows {
				rcv := "RFC" + strconv.Itoa(r.IntN(8)) + "X0101AB1"
				if r.IntN(4) == 0 {
					rcv = "RFC" + strconv.Itoa(r.IntN(1_000_000)) + "Y0101AB1"
				}
				rows[i] = [][]byte{
					[]byte(strconv.Itoa(i)), []byte("AAA010101AAA"), []byte(rcv),
					fmt.Appendf(nil, "2024-%02d-%02d %02d:%02d:%02d", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60)),
					[]byte(strconv.FormatFloat(float64(r.IntN(10_000_000))/100, 'f', 2, 64)), []byte("MXN"), []byte("x"),
				}
				for _, f := range rows[i] {
					bytes += int64(len(f)) + 1
				}
			}
			out := spec.NewRecord()
			row := &Row{Schema: InvoiceSchema}
			b.SetBytes(bytes)
			b.ReportAllocs()
			for b.Loop() {
				agg := spec.NewAggregator(&User{})
				for _, f := range rows {
					row.Fields = f
					agg.Add(row)
				}
				out.Reset()
				agg.Finish(out)
			}
		})
	}
}

// TestFastUnix checks the arithmetic fast path of ParseTime against
// time.Date over whole years, leap years and centuries included, and the
// normalisations time.Date applies (a date alone past the month's end, a
// leap second within the day; one that would turn the day is refused, as
// before).
func TestFastUnix(t *testing.T) {
	for _, y := range []int{0, 1, 4, 99, 100, 400, 1600, 1899, 1900, 1969, 1970, 1999, 2000, 2023, 2024, 2100, 2199, 2200, 2400, 9999} {
		for m := 1; m <= 12; m++ {
			for d := 1; d <= 31; d++ {
				day := fmt.Sprintf("%04d-%02d-%02d", y, m, d)
				ref := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
				if got, ok := fastUnix([]byte(day)); !ok || got != ref.Unix() {
					t.Fatalf("fastUnix(%q) = %d, %v; want %d", day, got, ok, ref.Unix())
				}
				for _, hms := range [][3]int{{0, 0, 0}, {23, 59, 59}, {12, 34, 56}, {23, 59, 60}} {
					for _, sep := range []string{" ", "T"} {
						ts := fmt.Sprintf("%s%s%02d:%02d:%02d", day, sep, hms[0], hms[1], hms[2])
						ref := time.Date(y, time.Month(m), d, hms[0], hms[1], hms[2], 0, time.UTC)
						got, ok := fastUnix([]byte(ts))
						if real := ref.Day() == d; ok != real || ok && got != ref.Unix() {
							t.Fatalf("fastUnix(%q) = %d, %v; want %d, %v", ts, got, ok, ref.Unix(), real)
						}
						pt, err := ParseTime([]byte(ts))
						if ok && (err != nil || !pt.Equal(ref) || pt.Location() != time.UTC) {
							t.Fatalf("ParseTime(%q) = %v, %v; want %v", ts, pt, err, ref)
						}
						ns, err := parseUnixNano([]byte(ts))
						if ok && nanoRange(ref) && (err != nil || ns != ref.UnixNano()) {
							t.Fatalf("parseUnixNano(%q) = %d, %v; want %d", ts, ns, err, ref.UnixNano())
						}
						if ok && !nanoRange(ref) && !errors.Is(err, errTimeRange) {
							t.Fatalf("parseUnixNano(%q) = %d, %v; want errTimeRange (UnixNano cannot hold it)", ts, ns, err)
						}
					}
				}
			}
		}
	}
	for _, bad := range []string{"2024-13-01", "2024-00-10", "2024-01-32", "2024-02-30 10:00:00", "2023-02-29T00:00:00", "2024-01-01 24:00:00", "2024-01-01 10:60:00", "2024-01-01 10:00:61", "2024/01/01", "2024-1-01 10:00:00"} {
		if _, ok := fastUnix([]byte(bad)); ok {
			t.Errorf("fastUnix(%q) accepted", bad)
		}
	}
}

// TestInvoiceStd checks std's rounding against big.Rat's exact quotient
// (what it computed before) on random and extreme users.
func TestInvoiceStd(t *testing.T) {
	ref := func(a *invoiceAgg) float64 {
		n := big.NewInt(a.nAmount)
		sq := new(big.Int).SetUint64(a.sqHi)
		sq.Lsh(sq, 64).Add(sq, new(big.Int).SetUint64(a.sqLo))
		num := new(big.Int).Mul(n, sq)
		s := big.NewInt(a.sum)
		num.Sub(num, s.Mul(s, s))
		den := new(big.Int).Mul(n, big.NewInt(a.nAmount-1))
		den.Mul(den, big.NewInt(amountScale*amountScale))
		q, _ := new(big.Rat).SetFrac(num, den).Float64()
		return math.Sqrt(max(q, 0))
	}
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 20000 {
		a := newInvoiceAgg(InvoiceSchema)
		n := 2 + r.IntN(50)
		if i%100 == 0 {
			n = 2 + r.IntN(100000)
		}
		scale := []int64{1, 100, 1e6, 1e9, 1e12, math.MaxInt64 / 200000}[r.IntN(6)]
		for range n {
			v := r.Int64N(scale)
			if r.IntN(3) == 0 {
				v = -v
			}
			a.addAmount(v)
		}
		if got, want := a.std(), ref(a); got != want {
			t.Fatalf("user %d (n=%d, scale %d): std %v, exact %v", i, n, scale, got, want)
		}
	}
}

// quo128Ref is quo128 by big.Rat.
func quo128Ref(hi, lo, den uint64) float64 {
	num := new(big.Int).SetUint64(hi)
	num.Lsh(num, 64).Add(num, new(big.Int).SetUint64(lo))
	q, _ := new(big.Rat).SetFrac(num, new(big.Int).SetUint64(den)).Float64()
	return q
}

// TestQuo128 checks the 128-bit quotient's rounding against big.Rat on
// edges (ties, quotients that round up to the next power of two, every
// shift) and random operands.
func TestQuo128(t *testing.T) {
	cases := [][3]uint64{
		{0, 0, 1}, {0, 1, 1}, {0, 1, 3}, {0, 2, 3}, {1, 0, 1}, {1, 0, 3},
		{0, 1<<53 + 1, 1}, {0, 1<<54 + 2, 2}, {0, 1<<53 + 1, 2}, {0, 1<<54 - 1, 1},
		{0, 1<<63 | 1<<10 | 1, 1}, {0, 1<<63 | 1<<10, 1}, {0, 1<<63 | 3<<9, 1},
		{math.MaxUint64, math.MaxUint64, 1}, {math.MaxUint64, math.MaxUint64, math.MaxUint64},
		{1 << 62, 0, 3}, {0, math.MaxUint64, math.MaxUint64 - 1}, {12345, 678910, 200000000},
	}
	for _, c := range cases {
		if got, want := quo128(c[0], c[1], c[2]), quo128Ref(c[0], c[1], c[2]); got != want {
			t.Errorf("quo128(%d, %d, %d) = %v, want %v", c[0], c[1], c[2], got, want)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		hi, lo, den := r.Uint64()>>r.IntN(64), r.Uint64()>>r.IntN(64), r.Uint64()>>r.IntN(64)|1
		if r.IntN(4) == 0 {
			hi = 0
		}
		if got, want := quo128(hi, lo, den), quo128Ref(hi, lo, den); got != want {
			t.Fatalf("quo128(%d, %d, %d) = %v, want %v", hi, lo, den, got, want)
		}
	}
}

func FuzzQuo128(f *testing.F) {
	f.Add(uint64(0), uint64(1<<53+1), uint64(2))
	f.Add(uint64(1), uint64(0), uint64(3))
	f.Fuzz(func(t *testing.T, hi, lo, den uint64) {
		if den == 0 {
			return
		}
		if got, want := quo128(hi, lo, den), quo128Ref(hi, lo, den); got != want {
			t.Fatalf("quo128(%d, %d, %d) = %v, want %v", hi, lo, den, got, want)
		}
	})
}

// TestReducer_reuse: one Reducer over users one after another gives each
// user what a fresh Aggregator gives, whatever the users before it held
// (many receivers, a long name, bad values); it makes one Aggregator of a
// Resetter, and a new one after a user whose Add failed or panicked.
func TestReducer_reuse(t *testing.T) {
	spec := Invoice()
	red := spec.NewReducer()
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 60 {
		rows := invoiceRows(r, 1+r.IntN(300))
		switch trial % 4 {
		case 1: // many receivers: the hashed table
			for _, f := range rows {
				f[2] = []byte("R" + strconv.Itoa(r.IntN(200)))
			}
		case 2: // a name past rcvInline
			rows[0][2] = []byte("A-RECEIVER-WITH-A-LONG-NAME")
		case 3:
			rows = rows[:1]
		}
		u := &User{Key: []byte("U" + strconv.Itoa(trial))}
		fresh, reused := spec.NewRecord(), spec.NewRecord()
		if err := spec.ReduceUser(u, NewSliceRows(InvoiceSchema, EncodingAuto, rows), fresh); err != nil {
			t.Fatal(err)
		}
		if err := red.ReduceUser(u, NewSliceRows(InvoiceSchema, EncodingAuto, rows), reused); err != nil {
			t.Fatal(err)
		}
		if got, want := format(reused), format(fresh); got != want {
			t.Fatalf("user %d: reused %s, fresh %s", trial, got, want)
		}
	}

	made := 0
	counting := Spec{
		Name: "counting", Schema: InvoiceSchema,
		Columns: []Column{{Name: "n", Type: TypeInt}},
		NewAggregator: func(*User) Aggregator {
			made++
			return &countAgg{}
		},
	}
	red = counting.NewReducer()
	reduce := func(rows ...string) (string, error) {
		var in [][][]byte
		for _, v := range rows {
			in = append(in, [][]byte{nil, []byte("u"), nil, nil, []byte(v), nil, nil})
		}
		out := counting.NewRecord()
		err := red.ReduceUser(&User{Key: []byte("u")}, NewSliceRows(InvoiceSchema, EncodingAuto, in), out)
		return format(out), err
	}
	for _, c := range []struct {
		rows      []string
		want      string
		fails     bool
		madeAfter int
	}{
		{[]string{"1", "2"}, "2", false, 1},
		{[]string{"3"}, "1", false, 1},
		{[]string{"1", "fail"}, "", true, 1},
		{[]string{"5", "6", "7"}, "3", false, 2},
		{[]string{"panic"}, "", true, 2},
		{[]string{"8"}, "1", false, 3},
		{[]string{"9"}, "1", false, 3},
	} {
		got, err := reduce(c.rows...)
		if (err != nil) != c.fails || (!c.fails && got != c.want) || made != c.madeAfter {
			t.Fatalf("rows %q: %q, %v, %d Aggregators made; want %q, failing %v, %d made", c.rows, got, err, made, c.want, c.fails, c.madeAfter)
		}
	}
}

// countAgg counts rows; "fail" fails its Add, "panic" panics.
type countAgg struct{ n int64 }

func (a *countAgg) Add(row *Row) error {
	switch string(row.Fields[4]) {
	case "fail":
		return errors.New("fail")
	case "panic":
		panic("panic")
	}
	a.n++
	return nil
}
func (a *countAgg) Merge(o Aggregator) error { a.n += o.(*countAgg).n; return nil }
func (a *countAgg) Finish(out *Record) error { out.SetIntAt(0, a.n); return nil }
func (a *countAgg) Reset(*User)              { a.n = 0 }

// TestInvoiceAgg_spares: an aggregator reused through Reset takes its
// receiver tables from the ones earlier users outgrew or left, and one
// merged into another is reused too (MergeCopies); each user's features
// and its table, slot by slot, are those of a fresh aggregator. The sizes
// go past the largest table kept.
func TestInvoiceAgg_spares(t *testing.T) {
	spec := Invoice()
	r := rand.New(rand.NewPCG(5, 6))
	reused := spec.NewAggregator(&User{}).(*invoiceAgg)
	part := spec.NewAggregator(&User{}).(*invoiceAgg)
	if !MergeCopies(part) {
		t.Fatal("MergeCopies(the built-in aggregator) = false")
	}
	slots := func(a *invoiceAgg) string {
		var b []byte
		a.eachReceiver(func(name []byte, sum int64) {
			b = append(append(append(b, name...), ':'), strconv.FormatInt(sum, 10)...)
			b = append(b, ' ')
		})
		return string(b)
	}
	finish := func(a *invoiceAgg) string {
		rec := spec.NewRecord()
		if err := a.Finish(rec); err != nil {
			t.Fatal(err)
		}
		return format(rec)
	}
	sizes := []int{1, 3, 9, 40, 700, 5000, 20000, 2, 13000, 300, 3, 40000, 6}
	for trial, nrcv := range sizes {
		rows := invoiceRows(r, 2*nrcv+1)
		for i, f := range rows {
			f[2] = []byte("R" + strconv.Itoa(i%(nrcv+1)))
		}
		u := &User{Key: []byte("U" + strconv.Itoa(trial))}
		fresh, freshPart := spec.NewAggregator(u).(*invoiceAgg), spec.NewAggregator(u).(*invoiceAgg)
		reused.Reset(u)
		part.Reset(u)
		half := len(rows) / 2
		for i, f := range rows {
			row := &Row{Fields: f, Schema: InvoiceSchema}
			a, b := fresh, reused
			if i >= half { // the second half through a part, merged
				a, b = freshPart, part
			}
			if err := a.Add(row); err != nil {
				t.Fatal(err)
			}
			if err := b.Add(row); err != nil {
				t.Fatal(err)
			}
		}
		if err := fresh.Merge(freshPart); err != nil {
			t.Fatal(err)
		}
		if err := reused.Merge(part); err != nil {
			t.Fatal(err)
		}
		if got, want := slots(reused), slots(fresh); got != want {
			t.Fatalf("user %d (%d receivers): the reused table's slots differ from a fresh one's", trial, nrcv+1)
		}
		if got, want := finish(reused), finish(fresh); got != want {
			t.Fatalf("user %d: reused %s, fresh %s", trial, got, want)
		}
	}
	kept := 0
	for _, tb := range reused.ext.spares {
		if tb != nil {
			kept++
			for i := range tb {
				if tb[i] != (rcvSlot{}) {
					t.Fatalf("a spare table of %d slots is not cleared", len(tb))
				}
			}
		}
	}
	if kept == 0 {
		t.Error("no spare table kept")
	}
	if MergeCopies(&countAgg{}) {
		t.Error("MergeCopies(a feature file's aggregator) = true")
	}
}

// TestRecord_SetBytesAt: a string set from bytes is a copy (the bytes may
// change after), survives more strings set after it (the record's buffer
// growing), and a Reset clears it for the next user.
func TestRecord_SetBytesAt(t *testing.T) {
	cols := []Column{{Name: "a", Type: TypeString}, {Name: "b", Type: TypeString}, {Name: "n", Type: TypeInt}}
	r := NewRecord(cols)
	line := func() string {
		var b []byte
		for i := range cols {
			if i > 0 {
				b = append(b, ',')
			}
			b = r.AppendField(b, i)
		}
		return string(b)
	}
	for user := range 50 {
		r.Reset()
		src := []byte(strings.Repeat("x", user*13) + strconv.Itoa(user))
		r.SetBytesAt(0, src)
		want0 := string(src)
		copy(src, "changed")
		long := []byte(strings.Repeat("y", 300+user)) // more than the buffer left
		r.SetBytesAt(1, long)
		r.SetIntAt(2, int64(user))
		if got, want := line(), want0+","+string(long)+","+strconv.Itoa(user); got != want {
			t.Fatalf("user %d: line %q, want %q", user, got, want)
		}
	}
	r.Reset()
	r.SetBytesAt(0, nil)
	if !r.IsSet(0) || r.IsSet(1) || line() != ",," {
		t.Fatalf("after Reset: set %v %v, line %q", r.IsSet(0), r.IsSet(1), line())
	}
}

// TestParsed: rows whose times come with their seconds in Parsed give the
// built-in features and Row.Time what the same rows give from their
// text, times of every form and out of range included; a bit for a
// column past 63 or one not set is never read.
func TestParsed(t *testing.T) {
	spec := Invoice()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	col := InvoiceSchema.Index(ColIssuedAt)
	r := rand.New(rand.NewPCG(9, 10))
	rows := invoiceRows(r, 400)
	times := []string{"2024-02-29 23:59:59", "1969-12-31T23:59:59", "1600-01-01 00:00:00", "2300-06-01 12:00:00", "0000-01-01 00:00:00", "9999-12-31 23:59:59"}
	for i := range rows {
		if i%3 == 0 {
			rows[i][col] = []byte(times[r.IntN(len(times))])
		}
	}
	plain, parsed := spec.NewAggregator(&User{}), spec.NewAggregator(&User{})
	for i, f := range rows {
		row := Row{Fields: f, Schema: InvoiceSchema}
		if err := plain.Add(&row); err != nil {
			t.Fatal(err)
		}
		want, wantErr := row.Time(col)
		sec, ok := LocalSeconds(f[col])
		if !ok {
			t.Fatalf("row %d: %q is not a local time", i, f[col])
		}
		row.Parsed = Parsed{Times: 1 << col, Values: make([]int64, len(f))}
		row.Parsed.Values[col] = sec
		if got, err := row.Time(col); !got.Equal(want) || (err != nil) != (wantErr != nil) {
			t.Fatalf("row %d: Time %v, %v from Parsed; %v, %v from %q", i, got, err, want, wantErr, f[col])
		}
		if err := parsed.Add(&row); err != nil {
			t.Fatal(err)
		}
	}
	a, b := spec.NewRecord(), spec.NewRecord()
	plain.Finish(a)
	parsed.Finish(b)
	if format(a) != format(b) {
		t.Fatalf("from the text: %s\nfrom Parsed:   %s", format(a), format(b))
	}
	if (&Parsed{Times: ^uint64(0)}).hasTime(64) || (&Parsed{}).hasTime(3) {
		t.Fatal("hasTime past column 63 or without its bit")
	}
}

// TestParsed_decimals: a decimal handed over in Parsed (its units and
// fraction digits, as mce reduce hands the amounts its store keeps) gives
// Row.Decimal the value and error ParseDecimal gives of its text, at every
// number of digits asked for, near the bounds too; the built-in features
// read it as they read the text, and without the text (Spec.DecimalsRead).
func TestParsed_decimals(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	// The plain spelling of units at scale fraction digits.
	text := func(units int64, scale int) string {
		s := strconv.FormatInt(units, 10)
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		if scale > 0 {
			s = strings.Repeat("0", max(0, scale+1-len(s))) + s
			s = s[:len(s)-scale] + "." + s[len(s)-scale:]
		}
		if neg {
			s = "-" + s
		}
		return s
	}
	var cases [][2]int64 // units, scale
	for scale := int64(0); scale <= 9; scale++ {
		for _, u := range []int64{0, 1, -1, 7, 4055, -4055, 99999999999999999, -99999999999999999, 92233720368547, 922337203685477, 9223372036854775} {
			cases = append(cases, [2]int64{u, scale})
		}
		for range 200 {
			u := r.Int64N(int64(math.Pow10(1 + r.IntN(17))))
			if r.IntN(2) == 0 {
				u = -u
			}
			cases = append(cases, [2]int64{u, scale})
		}
	}
	for _, c := range cases {
		units, scale := c[0], int(c[1])
		f := text(units, scale)
		row := Row{Fields: [][]byte{[]byte(f)}, Parsed: Parsed{Decimals: 1, Values: []int64{units}, Scales: []uint8{uint8(scale)}}}
		for digits := 0; digits <= 10; digits++ {
			want, wantErr := ParseDecimal([]byte(f), digits)
			got, err := row.Decimal(0, digits)
			if got != want || (err == nil) != (wantErr == nil) || (err != nil && !strings.Contains(err.Error(), wantErr.Error())) {
				t.Fatalf("%s (%d at %d digits), Decimal(%d): %d, %v from Parsed; %d, %v from the text", f, units, scale, digits, got, err, want, wantErr)
			}
		}
	}
	// The built-in features: amounts from Parsed, with and without their
	// text, give the features the text gives.
	spec := Invoice()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(spec.DecimalsRead) != 1 || spec.DecimalsRead[0] != ColAmount {
		t.Fatalf("the built-in features' DecimalsRead is %v", spec.DecimalsRead)
	}
	col := InvoiceSchema.Index(ColAmount)
	rows := invoiceRows(r, 400)
	plain, parsed, bare := spec.NewAggregator(&User{}), spec.NewAggregator(&User{}), spec.NewAggregator(&User{})
	for i, f := range rows {
		if i%7 == 0 { // amounts of other scales: more digits than the features keep, none, big
			c := cases[r.IntN(len(cases))]
			f[col] = []byte(text(c[0], int(c[1])))
		}
		row := Row{Fields: f, Schema: InvoiceSchema}
		if err := plain.Add(&row); err != nil {
			t.Fatal(err)
		}
		// A bad amount ("n/a") is never handed over: the text stays.
		units, scale := int64(0), 0
		whole, frac, _ := strings.Cut(string(f[col]), ".")
		if v, err := strconv.ParseInt(whole+frac, 10, 64); err == nil && text(v, len(frac)) == string(f[col]) {
			units, scale = v, len(frac)
			row.Parsed = Parsed{Decimals: 1 << col, Values: make([]int64, len(f)), Scales: make([]uint8, len(f))}
			row.Parsed.Values[col], row.Parsed.Scales[col] = units, uint8(scale)
		}
		if err := parsed.Add(&row); err != nil {
			t.Fatal(err)
		}
		row.Fields = append([][]byte(nil), f...)
		if row.Parsed.Decimals != 0 {
			row.Fields[col] = nil
		}
		if err := bare.Add(&row); err != nil {
			t.Fatal(err)
		}
	}
	a, b, c := spec.NewRecord(), spec.NewRecord(), spec.NewRecord()
	plain.Finish(a)
	parsed.Finish(b)
	bare.Finish(c)
	if format(a) != format(b) || format(a) != format(c) {
		t.Fatalf("from the text: %s\nfrom Parsed:   %s\nwithout text:  %s", format(a), format(b), format(c))
	}
	// Bits past column 63, or unset, hand nothing over.
	if _, has, _ := (&Parsed{Decimals: ^uint64(0)}).decimal(64, 4); has {
		t.Fatal("a decimal past column 63")
	}
	if _, has, _ := (&Parsed{}).decimal(3, 4); has {
		t.Fatal("a decimal without its bit")
	}
}

// TestSpec_TakesColumns: only the built-in features' aggregators take
// Columns, however their Spec is reached; a user's Spec never does.
func TestSpec_TakesColumns(t *testing.T) {
	inv := Invoice()
	named, err := Builtin("invoice")
	if err != nil {
		t.Fatal(err)
	}
	user := Spec{Name: "mine", Schema: inv.Schema, Columns: inv.Columns, NewAggregator: inv.NewAggregator}
	for _, tc := range []struct {
		name string
		spec Spec
		want bool
	}{
		{"Invoice", inv, true},
		{"Builtin(invoice)", named, true},
		{"a user's Spec with the same aggregator", user, false},
		{"a user's Reduce", Spec{Name: "r", Schema: inv.Schema, Reduce: func(*User, Rows, *Record) error { return nil }}, false},
	} {
		if got := tc.spec.TakesColumns(); got != tc.want {
			t.Errorf("%s: TakesColumns() = %v, want %v", tc.name, got, tc.want)
		}
	}
}
