package feature

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestUTF8Text checks the receivers' allocation-free decoding against
// DecodeText on every byte after ASCII and on mixed names, in every
// encoding.
func TestUTF8Text(t *testing.T) {
	f := func(b []byte) {
		t.Helper()
		for _, enc := range []Encoding{EncodingAuto, EncodingUTF8, EncodingCP1252} {
			var buf [4 * rcvInline]byte
			if got, want := string(utf8Text(buf[:0], b, enc)), DecodeText(b, enc); got != want {
				t.Fatalf("utf8Text(%q, %v) = %q, DecodeText %q", b, enc, got, want)
			}
		}
	}
	for c := 0x80; c < 0x100; c++ {
		f([]byte{byte(c)})
		f([]byte{'P', 'E', byte(c), 'A', '0', '1'})
	}
	f([]byte("PEÑA010101AB1"))
	f([]byte("PE\xd1A010101AB1"))
	f([]byte("\xc3"))
	f([]byte(strings.Repeat("\xd1", 40))) // longer than buf
	f(nil)
}

// TestInvoice_receiverSlots checks the receivers' figures against a plain
// map for names of every length around the inline limit (the long ones
// are kept apart), for users of one to thousands of receivers, whole and
// split into merged parts.
func TestInvoice_receiverSlots(t *testing.T) {
	spec := Invoice()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 10))
	for _, distinct := range []int{1, 2, 3, 7, 50, 3000} {
		t.Run(fmt.Sprintf("receivers=%d", distinct), func(t *testing.T) {
			names := make([]string, distinct)
			for i := range names {
				names[i] = strings.Repeat("R", r.IntN(rcvInline+6)) + strconv.Itoa(i)
			}
			sums := map[string]int64{}
			parts := []Aggregator{spec.NewAggregator(&User{}), spec.NewAggregator(&User{}), spec.NewAggregator(&User{})}
			whole := spec.NewAggregator(&User{})
			for i := 0; i < 4*distinct; i++ {
				name := names[r.IntN(distinct)]
				cents := r.IntN(100000)
				row := &Row{Schema: InvoiceSchema, Fields: [][]byte{
					[]byte("1"), []byte("U"), []byte(name), []byte("2024-01-01 00:00:00"),
					fmt.Appendf(nil, "%d.%02d", cents/100, cents%100), []byte("MXN"), nil}}
				sums[name] += int64(cents) * 100
				if err := whole.Add(row); err != nil {
					t.Fatal(err)
				}
				if err := parts[r.IntN(len(parts))].Add(row); err != nil {
					t.Fatal(err)
				}
			}
			top, topV := "", int64(0)
			for k, v := range sums {
				if top == "" || v > topV || v == topV && k < top {
					top, topV = k, v
				}
			}
			want := fmt.Sprintf("%d,%s,%s", len(sums), top, strconv.FormatFloat(scaled(topV), 'g', -1, 64))
			for _, o := range parts[1:] {
				if err := parts[0].Merge(o); err != nil {
					t.Fatal(err)
				}
			}
			for name, agg := range map[string]Aggregator{"whole": whole, "merged": parts[0]} {
				out := spec.NewRecord()
				if err := agg.Finish(out); err != nil {
					t.Fatal(err)
				}
				got := string(out.AppendField(nil, 6)) + "," + string(out.AppendField(nil, 9)) + "," + string(out.AppendField(nil, 10))
				if got != want {
					t.Errorf("%s: distinct,top,top amount = %s; want %s", name, got, want)
				}
			}
		})
	}
}
