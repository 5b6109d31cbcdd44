package pipeline

import (
	"context"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/mce-engine/mce/engine/feature"
)

// A mergeable Spec runs as two CombinePerKeys. The first combines rows on
// their group key (file, salt, user) into partial aggregates: for most
// users the salt is 0 and this is the whole work; a hot user's rows are
// spread over several salts (mapFn), so several combines (on several
// workers, when the runner spreads keys) each add part of its rows. The
// second drops the salt and merges each user's partials, then Finish
// makes the features line.
//
// The accumulator is a *partial: the Spec's live Aggregator inside a
// worker, and its MarshalBinary state on the wire (Beam encodes
// accumulators between the lifted pre-combine and the merge, and
// between the two stages). A mergeable Spec whose Aggregator is not an
// encoding.BinaryMarshaler and BinaryUnmarshaler runs as a Reduce
// (GroupByKey) instead; the built-in set is one.

var (
	fanoutUsers  = beam.NewCounter(metricsNamespace, "fanout_users")
	fanoutParts  = beam.NewDistribution(metricsNamespace, "fanout_parts_per_user")
	combinedRows = beam.NewCounter(metricsNamespace, "combined_rows")
	saltedParts  = beam.NewCounter(metricsNamespace, "salted_partials")
)

// partial is one user's partial aggregate.
type partial struct {
	file  int    // the row's file; -1 across files; unset (-2) while empty
	key   []byte // the user
	rows  int64  // rows added
	parts int64  // stage-1 partials merged into it (set by the second stage)
	agg   feature.Aggregator
	state []byte // the encoded Aggregator, not yet decoded (agg is nil)
}

const unsetFile = -2

// encodePartial is the accumulator's Beam coder:
//
//	uvarint file+2, uvarint len, key, uvarint rows, uvarint parts, state
func encodePartial(p *partial) ([]byte, error) {
	state := p.state
	if p.agg != nil {
		m, ok := p.agg.(encoding.BinaryMarshaler)
		if !ok {
			return nil, errors.New("BUG: combining an Aggregator that is not a BinaryMarshaler")
		}
		var err error
		if state, err = m.MarshalBinary(); err != nil {
			return nil, fmt.Errorf("user %q: encode aggregate: %w", p.key, err)
		}
	}
	b := make([]byte, 0, 32+len(p.key)+len(state))
	b = binary.AppendUvarint(b, uint64(p.file+2))
	b = binary.AppendUvarint(b, uint64(len(p.key)))
	b = append(b, p.key...)
	b = binary.AppendUvarint(b, uint64(p.rows))
	b = binary.AppendUvarint(b, uint64(p.parts))
	return append(b, state...), nil
}

// decodePartial decodes a partial; its Aggregator is made from the state
// when a CombineFn, which knows the Spec and the params, first uses it.
func decodePartial(b []byte) (*partial, error) {
	var v [4]uint64
	var key []byte
	for i := range v {
		x, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, errors.New("BUG: corrupt partial aggregate")
		}
		b = b[k:]
		v[i] = x
		if i == 1 {
			if x > uint64(len(b)) {
				return nil, errors.New("BUG: corrupt partial aggregate")
			}
			key, b = b[:x], b[x:]
		}
	}
	p := &partial{file: int(v[0]) - 2, key: append([]byte(nil), key...), rows: int64(v[2]), parts: int64(v[3])}
	if len(b) > 0 {
		p.state = append([]byte(nil), b...)
	}
	return p, nil
}

// aggOps is what both stages share: the Spec, and making or decoding a
// partial's Aggregator.
type aggOps struct {
	spec   *feature.Spec
	params feature.Params
	files  []string
	user   feature.User
}

func (o *aggOps) setup(name string, params feature.Params, files []string) error {
	var err error
	o.spec, err = lookup(name)
	o.params, o.files = params, files
	return err
}

func (o *aggOps) fail(p *partial, line int64, op string, err error) error {
	return userError(UserError{File: fileName(o.files, p.file), User: string(p.key), Line: line, Op: op, Err: err})
}

// live makes sure p has its Aggregator: a new one for an empty partial,
// or one decoded from its state.
func (o *aggOps) live(p *partial) error {
	if p.agg != nil {
		return nil
	}
	o.user = feature.User{Key: p.key, File: fileName(o.files, p.file), Params: o.params}
	err := feature.Guard(func() error {
		p.agg = o.spec.NewAggregator(&o.user)
		if p.state == nil {
			return nil
		}
		u, ok := p.agg.(encoding.BinaryUnmarshaler)
		if !ok {
			return errors.New("BUG: combining an Aggregator that is not a BinaryUnmarshaler")
		}
		return u.UnmarshalBinary(p.state)
	})
	if err != nil {
		p.agg = nil
		return o.fail(p, 0, "decode", err)
	}
	p.state = nil
	return nil
}

// merge folds b into a and returns a (or b when a is empty).
func (o *aggOps) merge(a, b *partial) (*partial, error) {
	switch {
	case b.file == unsetFile:
		return a, nil
	case a.file == unsetFile:
		return b, nil
	}
	if err := o.live(a); err != nil {
		return nil, err
	}
	if err := o.live(b); err != nil {
		return nil, err
	}
	if err := feature.Guard(func() error { return a.agg.Merge(b.agg) }); err != nil {
		return nil, o.fail(a, 0, "merge", err)
	}
	a.rows += b.rows
	a.parts += b.parts
	return a, nil
}

// addFn is the first stage: rows into partial aggregates, per group key.
type addFn struct {
	Spec   string
	Params feature.Params
	Files  []string

	ops aggOps
	row feature.Row
}

func (f *addFn) Setup() error {
	if err := f.ops.setup(f.Spec, f.Params, f.Files); err != nil {
		return err
	}
	f.row.Schema = f.ops.spec.Schema
	f.row.Fields = make([][]byte, f.ops.spec.Schema.Len())
	return nil
}

func (f *addFn) CreateAccumulator() *partial { return &partial{file: unsetFile} }

func (f *addFn) AddInput(p *partial, b []byte) (*partial, error) {
	h, err := decodeRow(b, &f.row)
	if err != nil {
		return nil, err
	}
	if p.file == unsetFile {
		p.file, p.key = h.file, append([]byte(nil), h.key...)
	}
	if err := f.ops.live(p); err != nil {
		return nil, err
	}
	if err := feature.Guard(func() error { return p.agg.Add(&f.row) }); err != nil {
		return nil, userError(UserError{File: fileName(f.Files, h.file), User: string(h.key), Line: h.line, Op: "add", Err: err})
	}
	p.rows++
	return p, nil
}

func (f *addFn) MergeAccumulators(a, b *partial) (*partial, error) { return f.ops.merge(a, b) }

func (f *addFn) ExtractOutput(p *partial) *partial { return p }

// unsaltFn drops the salt from a first-stage key: the user's partials
// meet under one key. It counts the hot users' sub-keys.
func unsaltFn(ctx context.Context, key []byte, p *partial, emit func([]byte, *partial)) error {
	file, salt, user, err := parseGroupKey(key)
	if err != nil {
		return err
	}
	if salt > 0 {
		saltedParts.Inc(ctx, 1)
	}
	q := *p
	q.parts = 1
	emit(appendGroupKey(nil, file, 0, user), &q)
	return nil
}

// finishFn is the second stage: it merges a user's partials and makes its
// features line (a keyed line).
type finishFn struct {
	Spec   string
	Params feature.Params
	Files  []string

	ops     aggOps
	rec     *feature.Record
	scratch []byte
}

func (f *finishFn) Setup() error {
	if err := f.ops.setup(f.Spec, f.Params, f.Files); err != nil {
		return err
	}
	f.rec = f.ops.spec.NewRecord()
	return nil
}

func (f *finishFn) CreateAccumulator() *partial { return &partial{file: unsetFile} }

func (f *finishFn) AddInput(a, p *partial) (*partial, error) { return f.ops.merge(a, p) }

func (f *finishFn) MergeAccumulators(a, b *partial) (*partial, error) { return f.ops.merge(a, b) }

func (f *finishFn) ExtractOutput(ctx context.Context, p *partial) ([]byte, error) {
	if err := f.ops.live(p); err != nil {
		return nil, err
	}
	if p.parts > 1 {
		fanoutUsers.Inc(ctx, 1)
		fanoutParts.Update(ctx, p.parts)
	}
	combinedRows.Inc(ctx, p.rows)
	err := feature.Guard(func() error {
		f.rec.Reset()
		return p.agg.Finish(f.rec)
	})
	if err != nil {
		return nil, f.ops.fail(p, 0, "finish", err)
	}
	var line []byte
	line, f.scratch = appendRecord(nil, f.scratch, p.key, f.rec)
	return appendKeyedLine(nil, p.key, line), nil
}

// combinable reports whether spec's Aggregator can cross the wire, which
// combining needs.
func combinable(spec *feature.Spec) bool {
	if !spec.Mergeable() {
		return false
	}
	ok := false
	feature.Guard(func() error {
		a := spec.NewAggregator(&feature.User{Params: feature.Params{}})
		_, m := a.(encoding.BinaryMarshaler)
		_, u := a.(encoding.BinaryUnmarshaler)
		ok = m && u
		return nil
	})
	return ok
}
