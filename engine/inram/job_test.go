package inram

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
)

// memBatch is a batch of rows held in memory, with the same contract as
// the reader's batches: fields in schema order, a sequence number, lines.
type memBatch struct {
	seq   int64
	rows  [][][]byte
	lines []int64
	user  int
}

func (b *memBatch) Seq() int64            { return b.seq }
func (b *memBatch) Len() int              { return len(b.rows) }
func (b *memBatch) Field(i, j int) []byte { return b.rows[i][j] }
func (b *memBatch) User(i int) []byte     { return b.rows[i][b.user] }
func (b *memBatch) Line(i int) int64      { return b.lines[i] }
func (b *memBatch) Row(i int, r *feature.Row) {
	r.Fields = append(r.Fields[:0], b.rows[i]...)
	r.Schema = feature.InvoiceSchema
}

// invoiceRows makes n invoice rows; user u gets a share that falls with u
// (user 0, the "bank", gets heavy of them). invoice_id is the row number,
// so file order can be checked.
func invoiceRows(n int, users int, heavy float64, seed uint64) [][][]byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	rows := make([][][]byte, n)
	for i := range rows {
		u := 0
		if rng.Float64() >= heavy {
			u = 1 + int(float64(users-1)*rng.Float64()*rng.Float64())
		}
		cents := rng.IntN(1_000_000) - 1000
		rows[i] = [][]byte{
			[]byte(strconv.Itoa(i)),
			[]byte(fmt.Sprintf("USR%06d", u)),
			[]byte(fmt.Sprintf("RCV%03d", rng.IntN(50))),
			[]byte(fmt.Sprintf("2024-%02d-%02d 10:%02d:00", 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(60))),
			[]byte(fmt.Sprintf("%d.%02d", cents/100, abs(cents%100))),
			[]byte("MXN"),
			[]byte(`say "hola", señor`),
		}
	}
	return rows
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// batches cuts rows into batches of size per and shuffles their order.
func batches(rows [][][]byte, per int, seed uint64) []*memBatch {
	var bs []*memBatch
	for s := 0; s*per < len(rows); s++ {
		lo, hi := s*per, min((s+1)*per, len(rows))
		b := &memBatch{seq: int64(s), rows: rows[lo:hi], user: feature.InvoiceSchema.User()}
		for i := lo; i < hi; i++ {
			b.lines = append(b.lines, int64(i+2))
		}
		bs = append(bs, b)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	rng.Shuffle(len(bs), func(i, j int) { bs[i], bs[j] = bs[j], bs[i] })
	return bs
}

// addAll adds the batches from several goroutines at once, as the reader does.
func addAll(t testing.TB, j Job, bs []*memBatch, goroutines int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(bs))
	next := make(chan *memBatch)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range next {
				if err := j.Add(b); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, b := range bs {
		next <- b
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func run(t testing.TB, spec feature.Spec, opts Options, bs []*memBatch) (string, Stats, error) {
	t.Helper()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	opts.Spec = &spec
	if opts.File == "" {
		opts.File = "test.csv"
	}
	j, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	addAll(t, j, bs, 4)
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	st, err := j.Finish(context.Background(), w)
	w.Flush()
	return out.String(), st, err
}

// orderSpec's features are the user's row count and its invoice ids in
// the order Reduce saw them.
func orderSpec() feature.Spec {
	return feature.Spec{
		Name: "order",
		Columns: []feature.Column{
			{Name: "n", Type: feature.TypeInt},
			{Name: "ids", Type: feature.TypeString},
		},
		Reduce: func(u *feature.User, rows feature.Rows, out *feature.Record) error {
			var ids []string
			for rows.Next() {
				ids = append(ids, string(rows.Row().Fields[0]))
			}
			out.SetIntAt(0, int64(len(ids)))
			out.SetStringAt(1, strings.Join(ids, " "))
			return nil
		},
	}
}

func TestJob_groupsInFileOrder(t *testing.T) {
	rows := invoiceRows(20000, 500, 0.13, 1)
	want := map[string][]string{}
	for _, r := range rows {
		want[string(r[1])] = append(want[string(r[1])], string(r[0]))
	}
	for _, workers := range []int{1, 3, 8} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			out, st, err := run(t, orderSpec(), Options{Workers: workers}, batches(rows, 97, uint64(workers)))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if lines[0] != "user,n,ids" {
				t.Fatalf("header %q", lines[0])
			}
			lines = lines[1:]
			if len(lines) != len(want) || st.Users != int64(len(want)) || st.Rows != int64(len(rows)) {
				t.Fatalf("%d lines, stats %+v; want %d users, %d rows", len(lines), st, len(want), len(rows))
			}
			if !slices.IsSorted(lines) {
				t.Error("output is not sorted by user")
			}
			for _, ln := range lines {
				f := strings.Split(ln, ",")
				ids := want[f[0]]
				if f[1] != strconv.Itoa(len(ids)) || f[2] != strings.Join(ids, " ") {
					t.Fatalf("user %s: got n=%s ids=%.60s..., want n=%d ids=%.60s... (file order)", f[0], f[1], f[2], len(ids), strings.Join(ids, " "))
				}
			}
			if len(st.WorkerBusy) != workers {
				t.Errorf("busy times for %d workers, want %d", len(st.WorkerBusy), workers)
			}
		})
	}
}

// TestJob_splitHugeUser checks that cutting the heavy user into pieces on
// several workers gives exactly the features of reducing it whole.
func TestJob_splitHugeUser(t *testing.T) {
	rows := invoiceRows(30000, 300, 0.13, 2)
	whole, st0, err := run(t, feature.Invoice(), Options{Workers: 4, SplitRows: -1, Group: true}, batches(rows, 500, 3))
	if err != nil {
		t.Fatal(err)
	}
	if st0.SplitUsers != 0 {
		t.Fatalf("SplitRows=-1 split %d users", st0.SplitUsers)
	}
	for _, split := range []int64{0, 100, 1000} {
		t.Run(fmt.Sprintf("split=%d", split), func(t *testing.T) {
			got, st, err := run(t, feature.Invoice(), Options{Workers: 4, SplitRows: split, Group: true}, batches(rows, 500, 4))
			if err != nil {
				t.Fatal(err)
			}
			if st.SplitUsers == 0 {
				t.Fatal("no user was split")
			}
			if got != whole {
				t.Fatal("split reduce differs from whole reduce")
			}
		})
	}
	if !strings.Contains(whole, "\nUSR000000,") {
		t.Fatal("heavy user missing")
	}
}

func TestJob_panicNamesUser(t *testing.T) {
	spec := orderSpec()
	inner := spec.Reduce
	spec.Reduce = func(u *feature.User, rows feature.Rows, out *feature.Record) error {
		if string(u.Key) == "USR000007" {
			var s []int
			s[len(u.Key)]++ // index out of range: a runtime panic in user code
		}
		return inner(u, rows, out)
	}
	_, _, err := run(t, spec, Options{Workers: 3, File: "jan.csv"}, batches(invoiceRows(5000, 50, 0.1, 5), 100, 6))
	var ue *UserError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want *UserError", err)
	}
	var pe *feature.PanicError
	if ue.User != "USR000007" || ue.File != "jan.csv" || !errors.As(err, &pe) {
		t.Fatalf("err = %#v, want a panic of user USR000007 in jan.csv", ue)
	}
	if !strings.Contains(pe.Stack, "job_test.go") {
		t.Errorf("stack does not show the panicking code:\n%s", pe.Stack)
	}
}

func TestJob_aggregatorErrorInPiece(t *testing.T) {
	spec := feature.Invoice()
	mk := spec.NewAggregator
	spec.NewAggregator = func(u *feature.User) feature.Aggregator {
		if string(u.Key) == "USR000000" {
			return failingAgg{mk(u)}
		}
		return mk(u)
	}
	_, _, err := run(t, spec, Options{Workers: 4, SplitRows: 50, Group: true}, batches(invoiceRows(5000, 50, 0.2, 7), 100, 8))
	var ue *UserError
	if !errors.As(err, &ue) || ue.User != "USR000000" || !strings.Contains(err.Error(), "no luck") {
		t.Fatalf("err = %v, want the heavy user's error", err)
	}
}

type failingAgg struct{ feature.Aggregator }

func (failingAgg) Add(*feature.Row) error { return errors.New("no luck") }

// TestJob_mapRekeys groups by receiver through Map and drops negative
// amounts.
func TestJob_mapRekeys(t *testing.T) {
	rows := invoiceRows(8000, 100, 0.1, 9)
	spec := orderSpec()
	spec.Map = func(r *feature.Row, p feature.Params) ([]byte, bool) {
		if r.Fields[4][0] == '-' {
			return nil, false
		}
		return r.Fields[2], true
	}
	want := map[string]int{}
	dropped := 0
	for _, r := range rows {
		if r[4][0] == '-' {
			dropped++
			continue
		}
		want[string(r[2])]++
	}
	out, st, err := run(t, spec, Options{Workers: 3}, batches(rows, 64, 10))
	if err != nil {
		t.Fatal(err)
	}
	if st.Dropped != int64(dropped) || dropped == 0 {
		t.Errorf("dropped %d, want %d", st.Dropped, dropped)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")[1:]
	if len(lines) != len(want) {
		t.Fatalf("%d receivers, want %d", len(lines), len(want))
	}
	for _, ln := range lines {
		f := strings.Split(ln, ",")
		if f[1] != strconv.Itoa(want[f[0]]) {
			t.Errorf("receiver %s: %s rows, want %d", f[0], f[1], want[f[0]])
		}
	}
}

func TestJob_mapPanicNamesLine(t *testing.T) {
	spec := orderSpec()
	spec.Map = func(r *feature.Row, p feature.Params) ([]byte, bool) {
		if string(r.Fields[0]) == "1234" {
			panic("bad row")
		}
		return nil, true
	}
	spec.Validate()
	j, _ := New(Options{Spec: &spec, Workers: 2, File: "feb.csv"})
	var err error
	for _, b := range batches(invoiceRows(3000, 30, 0.1, 11), 100, 12) {
		if e := j.Add(b); e != nil {
			err = e
		}
	}
	var ue *UserError
	if !errors.As(err, &ue) || ue.Line != 1236 || ue.File != "feb.csv" || ue.User == "" {
		t.Fatalf("err = %v, want a map error at feb.csv line 1236 naming the user", err)
	}
}

// TestJob_cancel: a cancelled context stops Finish, of the grouping job
// (a Reduce set) and of the one pass (the built-in set).
func TestJob_cancel(t *testing.T) {
	for _, tc := range []struct {
		name        string
		spec        feature.Spec
		seed, seed2 uint64
	}{{"group", orderSpec(), 13, 14}, {"stream", feature.Invoice(), 35, 36}} {
		spec := tc.spec
		spec.Validate()
		j, _ := New(Options{Spec: &spec, Workers: 2})
		addAll(t, j, batches(invoiceRows(2000, 30, 0.1, tc.seed), 100, tc.seed2), 2)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var out bytes.Buffer
		if _, err := j.Finish(ctx, bufio.NewWriter(&out)); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: err = %v, want context.Canceled", tc.name, err)
		}
	}
}

// TestUserIndex checks the index's users against a map's: the same
// position for the same key, new users in order of first appearance,
// through the table's growth, with keys that differ in one byte, empty
// and long keys.
func TestUserIndex(t *testing.T) {
	var keys []string
	for i := range 5000 {
		keys = append(keys, fmt.Sprintf("RFC%09d", i), fmt.Sprintf("RFC%09d", i%977), "")
	}
	keys = append(keys, strings.Repeat("x", 300), strings.Repeat("x", 299)+"y")
	x := newUserIndex()
	var users []user
	want := map[string]int32{}
	for _, k := range keys {
		uid := x.find([]byte(k), &users)
		w, ok := want[k]
		if !ok {
			w = int32(len(want))
			want[k] = w
		}
		if uid != w || users[uid].key != k {
			t.Fatalf("find(%q) = %d (%q), want %d", k, uid, users[uid].key, w)
		}
	}
	if len(users) != len(want) || len(x.slots) < 2*len(users) {
		t.Fatalf("%d users in %d slots, want %d in at least twice as many", len(users), len(x.slots), len(want))
	}
}

// TestUvarint checks uvarint against encoding/binary on values of every
// length, and on input that ends inside a value.
func TestUvarint(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 300, 16383, 16384, 1<<21 - 1, 1 << 32, 1<<63 + 5, ^uint64(0)} {
		b := binary.AppendUvarint(nil, v)
		b = append(b, 0x7f) // what follows is not read
		if got, n := uvarint(b); got != v || n != len(b)-1 {
			t.Errorf("uvarint(%x) = %d, %d; want %d, %d", b, got, n, v, len(b)-1)
		}
		if got, n := uvarint(b[:len(b)-2]); got != 0 || n != 0 {
			t.Errorf("uvarint(%x), cut short: %d, %d; want 0, 0", b[:len(b)-2], got, n)
		}
	}
}

// TestJob_carriesReads checks that a grouped row carries the user and the
// Spec's Reads, with their values, and leaves every other column empty
// (as the reader does), whatever the batch held; and every column for a
// Spec that declares no Reads.
func TestJob_carriesReads(t *testing.T) {
	rows := invoiceRows(3000, 40, 0.13, 7)
	byID := map[string][][]byte{}
	for _, r := range rows {
		byID[string(r[0])] = r
	}
	sch := feature.InvoiceSchema
	for _, tc := range []struct {
		name  string
		reads []string
		want  []bool // per column: carried
	}{
		{"no Reads", nil, []bool{true, true, true, true, true, true, true}},
		{"Reads", []string{feature.ColReceiver, "invoice_id"}, []bool{true, true, true, false, false, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var bad []string
			spec := feature.Spec{
				Name: "carried", Schema: sch, Reads: tc.reads,
				Columns: []feature.Column{{Name: "n", Type: feature.TypeInt}},
				Reduce: func(u *feature.User, rs feature.Rows, out *feature.Record) error {
					n := 0
					for rs.Next() {
						n++
						f := rs.Row().Fields
						src := byID[string(f[0])]
						if !tc.want[0] {
							continue
						}
						for c := range sch.Len() {
							want := []byte(nil)
							if tc.want[c] {
								want = src[c]
							}
							if !bytes.Equal(f[c], want) {
								mu.Lock()
								bad = append(bad, fmt.Sprintf("row %s column %s: %q, want %q", f[0], sch.Name(c), f[c], want))
								mu.Unlock()
							}
						}
					}
					out.SetIntAt(0, int64(n))
					return nil
				},
			}
			if _, _, err := run(t, spec, Options{Workers: 3, Group: true}, batches(rows, 128, 1)); err != nil {
				t.Fatal(err)
			}
			if len(bad) > 0 {
				t.Fatalf("%d fields differ; first: %s", len(bad), bad[0])
			}
		})
	}
}
