package feature

import (
	"encoding"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestInvoice_BinaryRoundTrip checks that parts encoded with MarshalBinary
// and restored into fresh aggregators merge to exactly what one aggregator
// over all rows gives: what lets the Beam pipeline combine a user's rows on
// several workers.
func TestInvoice_BinaryRoundTrip(t *testing.T) {
	spec := Invoice()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	u := &User{Key: []byte("U1")}
	for trial := 0; trial < 40; trial++ {
		rows := invoiceRows(r, r.IntN(400))
		if trial%2 == 1 { // past smallReceivers: the indexed receivers
			for _, f := range rows {
				f[2] = []byte("R" + strconv.Itoa(r.IntN(1+trial*2)))
			}
		}
		whole := spec.NewRecord()
		if err := spec.ReduceUser(u, NewSliceRows(InvoiceSchema, EncodingAuto, rows), whole); err != nil {
			t.Fatal(err)
		}
		k := 1 + r.IntN(5)
		parts := make([]Aggregator, k)
		for i := range parts {
			parts[i] = spec.NewAggregator(u)
		}
		for _, fields := range rows {
			if err := parts[r.IntN(k)].Add(&Row{Fields: fields, Schema: InvoiceSchema}); err != nil {
				t.Fatal(err)
			}
		}
		acc := spec.NewAggregator(u)
		for _, p := range parts {
			state, err := p.(encoding.BinaryMarshaler).MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			back := spec.NewAggregator(u)
			if err := back.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
				t.Fatalf("trial %d: %v", trial, err)
			}
			if err := acc.Merge(back); err != nil {
				t.Fatal(err)
			}
		}
		merged := spec.NewRecord()
		if err := acc.Finish(merged); err != nil {
			t.Fatal(err)
		}
		if a, b := format(whole), format(merged); a != b {
			t.Fatalf("trial %d: decoded parts differ\nwhole  %s\nmerged %s", trial, a, b)
		}
	}
}

func TestInvoice_UnmarshalBinaryRejectsCorrupt(t *testing.T) {
	spec := Invoice()
	a := spec.NewAggregator(&User{})
	rows := invoiceRows(rand.New(rand.NewPCG(5, 6)), 30)
	for _, f := range rows {
		if err := a.Add(&Row{Fields: f, Schema: InvoiceSchema}); err != nil {
			t.Fatal(err)
		}
	}
	state, _ := a.(encoding.BinaryMarshaler).MarshalBinary()
	f := func(name string, b []byte) {
		t.Helper()
		if err := spec.NewAggregator(&User{}).(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	f("empty", nil)
	f("version", append([]byte{9}, state[1:]...))
	f("truncated", state[:len(state)-1])
	f("trailing", append(append([]byte(nil), state...), 0))
	if err := a.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err == nil {
		t.Error("UnmarshalBinary into an aggregate with rows: no error")
	}
}

// FuzzInvoiceState feeds UnmarshalBinary arbitrary bytes (it decodes what
// crosses machines in the Beam pipeline): it must return an error or a
// state that finishes without a panic, and that encodes again to a state
// that decodes to the same features.
func FuzzInvoiceState(f *testing.F) {
	spec := Invoice()
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 5, 30, 200} {
		a := spec.NewAggregator(&User{})
		for _, fields := range invoiceRows(r, n) {
			if err := a.Add(&Row{Fields: fields, Schema: InvoiceSchema}); err != nil {
				f.Fatal(err)
			}
		}
		state, err := a.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(state)
	}
	f.Add([]byte{invoiceStateVersion})
	decode := func(t *testing.T, b []byte) (Aggregator, error) {
		a := spec.NewAggregator(&User{Key: []byte("U1")})
		return a, a.(encoding.BinaryUnmarshaler).UnmarshalBinary(b)
	}
	finish := func(t *testing.T, a Aggregator) string {
		rec := spec.NewRecord()
		if err := a.Finish(rec); err != nil {
			return "error: " + err.Error()
		}
		return format(rec)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decode(t, b)
		if err != nil {
			return
		}
		again, err := a.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of a decoded state: %v", err)
		}
		back, err := decode(t, again)
		if err != nil {
			t.Fatalf("a decoded state, encoded again, does not decode: %v", err)
		}
		if x, y := finish(t, a), finish(t, back); x != y {
			t.Fatalf("a decoded state and its copy finish differently:\n%s\n%s", x, y)
		}
	})
}
