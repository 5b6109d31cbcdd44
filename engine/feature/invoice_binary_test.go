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
