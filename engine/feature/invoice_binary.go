package feature

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// An Aggregator whose partial state must cross machines (the Beam
// pipeline's CombinePerKey encodes its accumulators between the workers
// that add rows and the one that merges them) implements
// encoding.BinaryMarshaler and encoding.BinaryUnmarshaler: MarshalBinary
// returns the state, and UnmarshalBinary, called on a fresh Aggregator of
// the same Spec (from NewAggregator), restores it. The built-in invoice
// Aggregator does.

// invoiceStateVersion is the first byte of an encoded invoice state.
const invoiceStateVersion = 1

// MarshalBinary encodes the aggregate: its counts, sums, extremes and every
// receiver's total. The receivers come in no particular order.
func (a *invoiceAgg) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 96)
	b = append(b, invoiceStateVersion)
	for _, v := range [...]int64{a.n, a.nAmount, a.bad, a.sum, a.min, a.max, a.first, a.last, a.nTime} {
		b = binary.AppendVarint(b, v)
	}
	b = binary.AppendUvarint(b, a.sqHi)
	b = binary.AppendUvarint(b, a.sqLo)
	// How many receivers there are is known once they are added up (some
	// may be on disk: spill.go).
	var n uint64
	pairs := make([]byte, 0, a.receivers()*24)
	err := a.eachReceiver(func(name []byte, sum int64) {
		pairs = binary.AppendUvarint(pairs, uint64(len(name)))
		pairs = append(pairs, name...)
		pairs = binary.AppendVarint(pairs, sum)
		n++
	})
	if err != nil {
		return nil, err
	}
	return append(binary.AppendUvarint(b, n), pairs...), nil
}

var errInvoiceState = errors.New("invoice: corrupt aggregate state")

// UnmarshalBinary restores an aggregate that MarshalBinary encoded into a
// fresh Aggregator (one that has seen no row).
func (a *invoiceAgg) UnmarshalBinary(b []byte) error {
	if a.n != 0 || a.receivers() != 0 {
		return errors.New("invoice: UnmarshalBinary into an aggregate that has rows")
	}
	if len(b) == 0 || b[0] != invoiceStateVersion {
		return fmt.Errorf("%w: version %v", errInvoiceState, b[:min(len(b), 1)])
	}
	b = b[1:]
	varint := func() int64 {
		v, k := binary.Varint(b)
		if k <= 0 {
			b = nil
			return 0
		}
		b = b[k:]
		return v
	}
	uvarint := func() uint64 {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			b = nil
			return 0
		}
		b = b[k:]
		return v
	}
	for _, p := range [...]*int64{&a.n, &a.nAmount, &a.bad, &a.sum, &a.min, &a.max, &a.first, &a.last, &a.nTime} {
		*p = varint()
	}
	a.sqHi, a.sqLo = uvarint(), uvarint()
	nr := uvarint()
	if b == nil || nr > uint64(len(b)) {
		return errInvoiceState
	}
	for range nr {
		l := uvarint()
		if b == nil || l > uint64(len(b)) {
			return errInvoiceState
		}
		name := b[:l:l]
		b = b[l:]
		sum := varint()
		if b == nil {
			return errInvoiceState
		}
		if a.hasReceiver(name) { // of those held: a receiver written to disk is not checked
			return fmt.Errorf("%w: receiver %q twice", errInvoiceState, name)
		}
		a.addReceiver(name, sum)
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d bytes left over", errInvoiceState, len(b))
	}
	return nil
}

// hasReceiver reports whether the user has the receiver name (UTF-8).
func (a *invoiceAgg) hasReceiver(name []byte) bool {
	if len(name) > rcvInline {
		_, ok := a.long[string(name)]
		return ok
	}
	k := packName(name)
	if a.big == nil {
		for i := range a.small[:a.nIn] {
			if a.small[i].key == k {
				return true
			}
		}
		return false
	}
	return a.bigSlot(&k).key == k
}
