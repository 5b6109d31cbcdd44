package inram

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/userhash"
)

// TestStream_sameAsGroup checks that aggregating as rows come gives byte
// for byte the features of grouping every user's rows first, with and
// without a re-keying Map, on any number of workers and batch orders.
func TestStream_sameAsGroup(t *testing.T) {
	rows := invoiceRows(40000, 2000, 0.13, 21)
	byReceiver := func(r *feature.Row, p feature.Params) ([]byte, bool) {
		if r.Fields[4][0] == '-' {
			return nil, false
		}
		return r.Fields[2], true
	}
	for _, tc := range []struct {
		name string
		mapf feature.MapFunc
	}{{"by user", nil}, {"Map by receiver", byReceiver}} {
		spec := feature.Invoice()
		spec.Map = tc.mapf
		want, wst, err := run(t, spec, Options{Workers: 1, Group: true}, batches(rows, 333, 1))
		if err != nil {
			t.Fatal(err)
		}
		for _, workers := range []int{1, 2, 5, 16} {
			t.Run(fmt.Sprintf("%s/workers=%d", tc.name, workers), func(t *testing.T) {
				got, st, err := run(t, spec, Options{Workers: workers}, batches(rows, 97, uint64(workers)))
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("streamed features differ from grouped ones:\n%s", firstDiff(got, want))
				}
				if st.Rows != wst.Rows || st.Users != wst.Users || st.Dropped != wst.Dropped {
					t.Errorf("stats rows/users/dropped %d/%d/%d, grouped %d/%d/%d",
						st.Rows, st.Users, st.Dropped, wst.Rows, wst.Users, wst.Dropped)
				}
				if len(st.WorkerBusy) != workers {
					t.Errorf("busy times for %d workers, want %d", len(st.WorkerBusy), workers)
				}
			})
		}
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d:\n got %s\nwant %s", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(g), len(w))
}

// TestStream_errorsNameUserAndLine: an error or a panic in Add fails the
// job with the row's user and line; a panic in Finish names the user.
func TestStream_errorsNameUserAndLine(t *testing.T) {
	rows := invoiceRows(5000, 50, 0.2, 23)
	line := map[string]int64{} // first line of each user
	for i := len(rows) - 1; i >= 0; i-- {
		line[string(rows[i][1])] = int64(i + 2)
	}
	for _, tc := range []struct {
		name string
		agg  func(feature.Aggregator) feature.Aggregator
		want string
		line bool
	}{
		{"error in Add", func(a feature.Aggregator) feature.Aggregator { return failingAgg{a} }, "no luck", true},
		{"panic in Add", func(a feature.Aggregator) feature.Aggregator { return panickyAgg{a} }, "panic: add boom", true},
		{"panic in Finish", func(a feature.Aggregator) feature.Aggregator { return finishPanicAgg{a} }, "panic: finish boom", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := feature.Invoice()
			mk := spec.NewAggregator
			spec.NewAggregator = func(u *feature.User) feature.Aggregator {
				if string(u.Key) == "USR000003" {
					return tc.agg(mk(u))
				}
				return mk(u)
			}
			// One batch in file order, so the first row seen is the
			// user's first line.
			if err := spec.Validate(); err != nil {
				t.Fatal(err)
			}
			j, err := New(Options{Spec: &spec, Workers: 3, File: "mar.csv"})
			if err != nil {
				t.Fatal(err)
			}
			err = j.Add(batches(rows, len(rows), 1)[0])
			if err == nil {
				_, err = j.Finish(context.Background(), bufio.NewWriter(io.Discard))
			}
			var ue *UserError
			if !errors.As(err, &ue) || ue.User != "USR000003" || ue.File != "mar.csv" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q of user USR000003 in mar.csv", err, tc.want)
			}
			if tc.line && ue.Line != line["USR000003"] {
				t.Errorf("line %d, want %d (the user's first row)", ue.Line, line["USR000003"])
			}
		})
	}
}

type panickyAgg struct{ feature.Aggregator }

func (panickyAgg) Add(*feature.Row) error { panic("add boom") }

type finishPanicAgg struct{ feature.Aggregator }

func (finishPanicAgg) Finish(*feature.Record) error { panic("finish boom") }

// tablesJob adds each batch group through a scratch of its own, as that
// many reading goroutines would, so that every user's rows come from
// several of them.
func tablesJob(t *testing.T, spec *feature.Spec, opts Options, groups [][]*memBatch) *streamJob {
	t.Helper()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	opts.Spec = spec
	if opts.File == "" {
		opts.File = "test.csv"
	}
	j, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s := j.(*streamJob)
	tables := make([]*addScratch, len(groups))
	for k := range groups {
		tables[k] = s.take()
	}
	for k, g := range groups {
		for _, b := range g {
			if err := s.add(tables[k], b); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tb := range tables {
		s.give(tb)
	}
	return s
}

func finishString(j Job) (string, Stats, error) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	st, err := j.Finish(context.Background(), w)
	w.Flush()
	return out.String(), st, err
}

// TestStream_mergesTables checks that users spread over more tables than
// workers, with keys short and longer than a slot holds (Map keys them
// by receiver and user, some very long), merge into exactly the grouped
// features, and that the tables' users are counted once.
func TestStream_mergesTables(t *testing.T) {
	rows := invoiceRows(30000, 3000, 0.13, 31)
	long := func(r *feature.Row, p feature.Params) ([]byte, bool) {
		if r.Fields[4][0] == '-' {
			return nil, false
		}
		if r.Fields[2][len(r.Fields[2])-1]%3 == 0 {
			return r.Fields[2], true // short: RCVnnn
		}
		pad := strings.Repeat("x", int(r.Fields[2][len(r.Fields[2])-1]-'0')*4)
		return fmt.Appendf(nil, "%s/%s/%s", r.Fields[2], pad, r.Fields[1]), true
	}
	for _, tc := range []struct {
		name string
		mapf feature.MapFunc
	}{{"by user", nil}, {"long keys", long}} {
		spec := feature.Invoice()
		spec.Map = tc.mapf
		want, wst, err := run(t, spec, Options{Workers: 1, Group: true}, batches(rows, 333, 1))
		if err != nil {
			t.Fatal(err)
		}
		for _, tables := range []int{1, 2, 7} {
			t.Run(fmt.Sprintf("%s/tables=%d", tc.name, tables), func(t *testing.T) {
				bs := batches(rows, 211, uint64(tables))
				groups := make([][]*memBatch, tables)
				for i, b := range bs {
					groups[i%tables] = append(groups[i%tables], b)
				}
				spec := spec
				got, st, err := finishString(tablesJob(t, &spec, Options{Workers: 3}, groups))
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("merged features differ from grouped ones:\n%s", firstDiff(got, want))
				}
				if st.Rows != wst.Rows || st.Users != wst.Users || st.Dropped != wst.Dropped {
					t.Errorf("stats rows/users/dropped %d/%d/%d, grouped %d/%d/%d",
						st.Rows, st.Users, st.Dropped, wst.Rows, wst.Users, wst.Dropped)
				}
			})
		}
	}
}

// mergeFailAgg fails in Merge.
type mergeFailAgg struct{ feature.Aggregator }

func (mergeFailAgg) Merge(feature.Aggregator) error { return errors.New("cannot merge") }

// TestStream_oneAggregatePerUser: however many goroutines add a user's
// rows, at once or not, the one pass makes one aggregate per user and
// never merges (Merge fails here), and gives the grouped features.
func TestStream_oneAggregatePerUser(t *testing.T) {
	rows := invoiceRows(20000, 500, 0.2, 33)
	want, wst, err := run(t, feature.Invoice(), Options{Workers: 1, Group: true}, batches(rows, 333, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 2, 5} {
		spec := feature.Invoice()
		mk := spec.NewAggregator
		var made atomic.Int64
		spec.NewAggregator = func(u *feature.User) feature.Aggregator {
			made.Add(1)
			return mergeFailAgg{mk(u)}
		}
		spec.Validate()
		j, err := New(Options{Spec: &spec, Workers: workers, File: "apr.csv"})
		if err != nil {
			t.Fatal(err)
		}
		addAll(t, j, batches(rows, 97, 34), workers)
		got, st, err := finishString(j)
		if err != nil {
			t.Fatalf("workers=%d: %v", workers, err)
		}
		if got != want {
			t.Fatalf("workers=%d: features differ from grouped ones:\n%s", workers, firstDiff(got, want))
		}
		if made.Load() != wst.Users || st.Users != wst.Users {
			t.Errorf("workers=%d: %d aggregates made, %d users; want %d", workers, made.Load(), st.Users, wst.Users)
		}
	}
}

// TestStream_noRows: a file without rows (a header only, or every row
// bad) finishes with no users and the header alone, in both modes.
func TestStream_noRows(t *testing.T) {
	spec := feature.Invoice()
	spec.Validate()
	for _, group := range []bool{false, true} {
		j, err := New(Options{Spec: &spec, Workers: 2, Group: group})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		st, err := j.Finish(context.Background(), w)
		if err != nil || st.Users != 0 {
			t.Fatalf("group=%v: Finish = %+v, %v", group, st, err)
		}
		w.Flush()
		if n := strings.Count(out.String(), "\n"); n != 1 || !strings.HasPrefix(out.String(), "user,invoice_count,") {
			t.Errorf("group=%v: output %q, want the header alone", group, out.String())
		}
	}
}

// TestAggRange checks the users' table on keys of every length up to
// past the inline limit, zero bytes included, as it grows: each key found again, absent keys
// not found, and the keys read back.
func TestAggRange(t *testing.T) {
	r := &aggRange{slots: make([]aggSlot, minSlots)}
	var keys [][]byte
	for i := 0; i < 5000; i++ {
		keys = append(keys, fmt.Appendf(nil, "%s%d", strings.Repeat("k", i%(2*inlineKey)), i))
	}
	// Keys that differ only in length or in zero bytes.
	for _, k := range []string{"", "\x00", "\x00\x00", "a", "a\x00", "\x00a", strings.Repeat("\x00", inlineKey), strings.Repeat("\x00", inlineKey+1)} {
		keys = append(keys, []byte(k))
	}
	aggs := map[string]feature.Aggregator{}
	for i, k := range keys {
		if _, ok := r.lookup(keyHash(k), k); ok {
			t.Fatalf("key %q found before it was added", k)
		}
		sl, _ := r.lookup(keyHash(k), k)
		agg := &countAgg{}
		r.insert(sl, keyHash(k), k, agg)
		aggs[string(k)] = agg
		if r.n != i+1 || 4*r.n > 3*len(r.slots) {
			t.Fatalf("%d users in %d slots", r.n, len(r.slots))
		}
	}
	for _, k := range keys {
		sl, ok := r.lookup(keyHash(k), k)
		if !ok || sl.agg != aggs[string(k)] || string(r.keyBytes(sl)) != string(k) || r.keyString(sl) != string(k) {
			t.Fatalf("key %q: found %v, its slot holds %q", k, ok, r.keyBytes(sl))
		}
	}
}

// TestAggRange_sortedSlots checks Finish's order of a range's users
// against sorting their keys: keys that share their first 8 bytes, keys
// shorter than 8 bytes and their extensions, zero bytes, and keys kept
// apart for their length.
func TestAggRange_sortedSlots(t *testing.T) {
	r := &aggRange{slots: make([]aggSlot, minSlots)}
	keys := []string{"", "\x00", "\x00\x00", "a", "a\x00", "a\x00\x00", "\x00a", "ab", "abcdefgh", "abcdefg",
		"abcdefgh\x00", "abcdefghi", "abcdefgi", strings.Repeat("z", inlineKey+5), strings.Repeat("z", inlineKey+4) + "a",
		"\xff\xff\xff\xff\xff\xff\xff\xff", "\xff\xff\xff\xff\xff\xff\xff\xff\x00", "\xff"}
	for i := range 3000 {
		keys = append(keys, fmt.Sprintf("BNM84%03d%s", i%500, strings.Repeat("X", i%9))) // RFC-like, prefixes shared
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for _, i := range rand.Perm(len(keys)) {
		k := []byte(keys[i])
		sl, _ := r.lookup(keyHash(k), k)
		r.insert(sl, keyHash(k), k, &countAgg{})
	}
	var got []string
	for _, si := range r.sortedSlots() {
		got = append(got, r.keyString(&r.slots[si]))
	}
	if !slices.Equal(got, keys) {
		for i := range min(len(got), len(keys)) {
			if got[i] != keys[i] {
				t.Fatalf("%d users in order; first difference at %d: %q, want %q", len(got), i, got[i], keys[i])
			}
		}
		t.Fatalf("%d users in order, want %d", len(got), len(keys))
	}
}

type countAgg struct{ n int }

func (a *countAgg) Add(*feature.Row) error           { a.n++; return nil }
func (a *countAgg) Merge(o feature.Aggregator) error { a.n += o.(*countAgg).n; return nil }
func (a *countAgg) Finish(*feature.Record) error     { return nil }

// TestKeyHash checks the one pass's key hash: every key of 0 to 24 bytes
// that differs from another in one byte hashes differently, none hashes
// to 0, and RFC-like keys spread evenly over 256 ranges (top bits) and
// table slots (low bits).
func TestKeyHash(t *testing.T) {
	seen := map[uint64]string{}
	for n := 0; n <= 24; n++ {
		base := []byte(strings.Repeat("ABC4567890XYZ-rfc-key-24", 2)[:n])
		keys := [][]byte{base}
		for i := range n {
			for _, c := range []byte{0, '0', 'Z', 0xff} {
				k := bytes.Clone(base)
				if k[i] == c {
					continue
				}
				k[i] = c
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			h := keyHash(k)
			if h == 0 {
				t.Fatalf("keyHash(%q) = 0", k)
			}
			if o, ok := seen[h]; ok && o != string(k) {
				t.Fatalf("keyHash(%q) = keyHash(%q)", k, o)
			}
			seen[h] = string(k)
		}
	}
	const n = 200_000
	var top, low [256]int
	for i := range n {
		k := fmt.Appendf(nil, "%s%06d%s", []string{"GAR", "LOPE", "XA"}[i%3], (i*7919)%1_000_000, "K3A")
		h := keyHash(k)
		top[h>>56]++
		low[h&255]++
	}
	for name, b := range map[string]*[256]int{"ranges": &top, "slots": &low} {
		if m := slices.Max(b[:]); float64(m) > 1.15*n/256 {
			t.Errorf("%s: fullest bucket %d, mean %d", name, m, n/256)
		}
	}
}

func BenchmarkKeyHash(b *testing.B) {
	key := []byte("GARL800101K3A")
	b.Run("keyHash", func(b *testing.B) {
		b.SetBytes(int64(len(key)))
		var x uint64
		for b.Loop() {
			x += keyHash(key)
		}
		_ = x
	})
	b.Run("xxhash", func(b *testing.B) {
		b.SetBytes(int64(len(key)))
		var x uint64
		for b.Loop() {
			x += userhash.Sum(key)
		}
		_ = x
	})
}
