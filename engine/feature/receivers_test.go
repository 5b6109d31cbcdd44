package feature

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/mce-engine/mce/internal/scratchdir"
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
	for _, sp := range spillSettings {
		t.Run(sp.name, func(t *testing.T) {
			sp.set(t)
			testReceiverSlots(t)
		})
	}
}

// spillSetting is a receivers' limit the receivers' tests run with.
type spillSetting struct {
	name        string
	slots, long int // spillSlots, spillLong
}

// spillSettings are the real limits, and ones so small that users of a
// few dozen receivers have them written to disk, many times over
// (spill.go).
var spillSettings = []spillSetting{
	{"held", spillSlots, spillLong},
	{"spilled", 16, 3},
}

// set sets the limits for the test, and a spill directory of its own,
// which it returns.
func (s spillSetting) set(t *testing.T) (dir string) {
	oldSlots, oldLong := spillSlots, spillLong
	spillSlots, spillLong = s.slots, s.long
	dir = t.TempDir()
	scratchdir.Set(dir)
	t.Cleanup(func() {
		spillSlots, spillLong = oldSlots, oldLong
		scratchdir.Set("")
	})
	return dir
}

// TestInvoice_spill checks what a user whose receivers go to disk leaves
// behind: a table of at most spillSlots slots, no file in the spill
// directory (each is unlinked as soon as it is made), its files closed by
// Finish and by Reset, and the figures of a plain map. A directory it
// cannot write to fails its Finish, naming the directory.
func TestInvoice_spill(t *testing.T) {
	dir := spillSetting{"spilled", 64, 3}.set(t)
	spec := Invoice()
	r := rand.New(rand.NewPCG(15, 16))
	var rows [][][]byte
	sums := map[string]int64{}
	for i := range 3000 {
		name := "R" + strconv.Itoa(r.IntN(1000))
		if i%7 == 0 {
			name = strings.Repeat("L", rcvInline) + name
		}
		cents := r.IntN(100000)
		sums[name] += int64(cents) * 100
		rows = append(rows, [][]byte{[]byte("1"), []byte("U"), []byte(name), []byte("2024-01-01 00:00:00"),
			fmt.Appendf(nil, "%d.%02d", cents/100, cents%100), []byte("MXN"), nil})
	}
	top, topV := "", int64(0)
	for k, v := range sums {
		if top == "" || v > topV || v == topV && k < top {
			top, topV = k, v
		}
	}
	want := fmt.Sprintf("%d,%s,%s", len(sums), top, strconv.FormatFloat(scaled(topV), 'g', -1, 64))
	fill := func() (*invoiceAgg, []*os.File) {
		t.Helper()
		a := spec.NewAggregator(&User{}).(*invoiceAgg)
		for _, f := range rows {
			if err := a.Add(&Row{Schema: InvoiceSchema, Fields: f}); err != nil {
				t.Fatal(err)
			}
		}
		if len(a.big) > spillSlots || len(a.long) > spillLong {
			t.Errorf("the user holds a table of %d slots and %d long names; the limits are %d and %d", len(a.big), len(a.long), spillSlots, spillLong)
		}
		if !a.spilled() {
			t.Fatal("1000 receivers did not go to disk")
		}
		if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
			t.Errorf("the spill directory holds %v (%v); want nothing", left, err)
		}
		return a, slices.Clone(a.ext.spill.files)
	}
	closed := func(files []*os.File, after string) {
		t.Helper()
		for _, f := range files {
			if _, err := f.Stat(); !errors.Is(err, os.ErrClosed) {
				t.Errorf("a spill file is open after %s", after)
			}
		}
	}

	a, files := fill()
	out := spec.NewRecord()
	if err := a.Finish(out); err != nil {
		t.Fatal(err)
	}
	if got := string(out.AppendField(nil, 6)) + "," + string(out.AppendField(nil, 9)) + "," + string(out.AppendField(nil, 10)); got != want {
		t.Errorf("distinct,top,top amount = %s; want %s", got, want)
	}
	closed(files, "Finish")

	a, files = fill()
	a.Reset(&User{})
	closed(files, "Reset")
	if a.spilled() {
		t.Error("a Reset aggregator still has runs")
	}

	scratchdir.Set(filepath.Join(dir, "missing"))
	a = spec.NewAggregator(&User{}).(*invoiceAgg)
	for _, f := range rows {
		if err := a.Add(&Row{Schema: InvoiceSchema, Fields: f}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Finish(spec.NewRecord()); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "missing")) {
		t.Errorf("Finish with a spill directory that is not there: %v; want an error naming it", err)
	}
}

func testReceiverSlots(t *testing.T) {
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

// TestInvoice_slotHint checks that an Add after Slot on the same row (the
// one pass's order: Slot hands Add the receiver's key and hash) gives the
// figures of Add alone, on rows reused as the one pass reuses them (a
// refill sets the fields and keeps the rest): a row whose Slot set a hint
// and whose Add never came (a failed batch), refilled for a user with few
// receivers, must not carry the old receiver into the next Add.
func TestInvoice_slotHint(t *testing.T) {
	spec := Invoice()
	r := rand.New(rand.NewPCG(11, 12))
	names := []string{"AAA010101AAA", "BBB020202BB1", "R", strings.Repeat("L", rcvInline+3), "PEÑA010101AB1", "PE\xd1A010101AB", ""}
	for i := range 40 {
		names = append(names, "N"+strconv.Itoa(i))
	}
	for _, enc := range []Encoding{EncodingAuto, EncodingUTF8, EncodingCP1252} {
		t.Run(enc.String(), func(t *testing.T) {
			const users = 4
			plain := make([]Aggregator, users)
			slotted := make([]Aggregator, users)
			for u := range users {
				plain[u], slotted[u] = spec.NewAggregator(&User{}), spec.NewAggregator(&User{})
			}
			var ring [3]Row
			fields := func(name string, cents int) [][]byte {
				return [][]byte{[]byte("1"), []byte("U"), []byte(name), []byte("2024-01-01 00:00:00"),
					fmt.Appendf(nil, "%d.%02d", cents/100, cents%100), []byte("MXN"), nil}
			}
			hinted := 0
			for i := range 4000 {
				u := r.IntN(users)
				name := names[r.IntN(len(names))]
				if u == 0 {
					name = names[r.IntN(2)] // two receivers: kept in the aggregator, no Slot
				}
				f := fields(name, r.IntN(100000))
				row := &ring[i%len(ring)]
				row.Fields, row.Encoding, row.Schema = f, enc, InvoiceSchema
				if p := slotted[u].(interface{ Slot(*Row) unsafe.Pointer }).Slot(row); p != nil {
					hinted++
				}
				if i%7 == 0 {
					continue // Slot without its Add; the row is refilled later
				}
				if err := slotted[u].Add(row); err != nil {
					t.Fatal(err)
				}
				if err := plain[u].Add(&Row{Fields: f, Encoding: enc, Schema: InvoiceSchema}); err != nil {
					t.Fatal(err)
				}
			}
			if hinted == 0 {
				t.Fatal("no Slot found a slot: the test tests nothing")
			}
			for u := range users {
				want, got := spec.NewRecord(), spec.NewRecord()
				if err := plain[u].Finish(want); err != nil {
					t.Fatal(err)
				}
				if err := slotted[u].Finish(got); err != nil {
					t.Fatal(err)
				}
				for j := range want.Columns() {
					if w, g := want.AppendField(nil, j), got.AppendField(nil, j); string(w) != string(g) {
						t.Errorf("user %d, %s: %q after Slot, %q without", u, want.Columns()[j].Name, g, w)
					}
				}
			}
		})
	}
}

// TestInvoice_topReceiver checks top_receiver and its amount, which the
// aggregator keeps as the rows come, against a plain map: totals that go
// up and down (credit notes) and tie, users of one to thousands of
// receivers, whole, merged from parts, and decoded from MarshalBinary.
// The aggregator stays 192 bytes.
func TestInvoice_topReceiver(t *testing.T) {
	if n := unsafe.Sizeof(invoiceAgg{}); n != 192 {
		t.Errorf("invoiceAgg is %d bytes, want 192", n)
	}
	for _, sp := range spillSettings {
		t.Run(sp.name, func(t *testing.T) {
			sp.set(t)
			testTopReceiver(t)
		})
	}
}

func testTopReceiver(t *testing.T) {
	spec := Invoice()
	r := rand.New(rand.NewPCG(13, 14))
	for _, distinct := range []int{1, 2, 3, 5, 9, 40, 700, 3000} {
		for _, negative := range []bool{false, true} {
			names := make([]string, distinct)
			for i := range names {
				names[i] = fmt.Sprintf("R%0*d", r.IntN(4), i)
				if i%13 == 5 {
					names[i] = strings.Repeat("L", rcvInline) + names[i] // kept apart
				}
			}
			sums := map[string]int64{}
			parts := []Aggregator{spec.NewAggregator(&User{}), spec.NewAggregator(&User{})}
			whole := spec.NewAggregator(&User{})
			for range 6 * distinct {
				name := names[r.IntN(distinct)]
				cents := 100 * r.IntN(5) // few values: many ties
				if negative && r.IntN(4) == 0 {
					cents = -cents
				}
				row := &Row{Schema: InvoiceSchema, Fields: [][]byte{
					[]byte("1"), []byte("U"), []byte(name), []byte("2024-01-01 00:00:00"),
					fmt.Appendf(nil, "%d.%02d", cents/100, max(cents%100, -cents%100)), []byte("MXN"), nil}}
				sums[name] += int64(cents) * 100
				for _, a := range []Aggregator{whole, parts[r.IntN(len(parts))]} {
					if err := a.Add(row); err != nil {
						t.Fatal(err)
					}
				}
			}
			top, topV := "", int64(0)
			for k, v := range sums {
				if top == "" || v > topV || v == topV && k < top {
					top, topV = k, v
				}
			}
			want := top + "," + strconv.FormatFloat(scaled(topV), 'g', -1, 64)
			if err := parts[0].Merge(parts[1]); err != nil {
				t.Fatal(err)
			}
			enc, err := whole.(*invoiceAgg).MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			decoded := spec.NewAggregator(&User{})
			if err := decoded.(*invoiceAgg).UnmarshalBinary(enc); err != nil {
				t.Fatal(err)
			}
			for name, agg := range map[string]Aggregator{"whole": whole, "merged": parts[0], "decoded": decoded} {
				out := spec.NewRecord()
				if err := agg.Finish(out); err != nil {
					t.Fatal(err)
				}
				if got := string(out.AppendField(nil, 9)) + "," + string(out.AppendField(nil, 10)); got != want {
					t.Errorf("%d receivers, negative %v, %s: top, amount = %s; want %s", distinct, negative, name, got, want)
				}
			}
		}
	}
}
