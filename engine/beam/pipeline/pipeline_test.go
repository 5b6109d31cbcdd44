package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/mce-engine/mce/engine/feature"
)

func TestMain(m *testing.M) {
	flag.Parse()
	beam.Init()
	// Prism's job and worker logs, unless -v.
	if !testing.Verbose() {
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	}
	// Beam leaves an empty beamloopbackworker-* file in the temporary
	// folder per LOOPBACK job: give them one of the tests' own, removed
	// after them (mce beam does the same for its pipelines).
	tmp, err := os.MkdirTemp("", "mce-beam-pipeline-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", tmp)
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// writeCSV writes an invoice file: rows[i] = {user, receiver, amount}.
func writeCSV(t *testing.T, dir, name string, rows [][3]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("invoice_id,issuer,receiver,issued_at,amount,currency,description\n")
	for i, r := range rows {
		fmt.Fprintf(&b, "I%d,%s,%s,2024-01-%02d 10:00:00,%s,MXN,\"line %d, with a comma\"\n", i, r[0], r[1], 1+i%28, r[2], i)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// skewed is one file where "BANK" has most rows and a few users have some.
func skewed(t *testing.T, dir string) string {
	var rows [][3]string
	for i := range 900 {
		rows = append(rows, [3]string{"BANK", "R" + strconv.Itoa(i%17), strconv.Itoa(100+i) + ".25"})
		if i%9 == 0 {
			rows = append(rows, [3]string{"U" + strconv.Itoa(i%5), "R1", "10.5"})
		}
	}
	return writeCSV(t, dir, "skewed.csv", rows)
}

func run(t *testing.T, spec feature.Spec, o Options) (*Summary, error) {
	t.Helper()
	o.Logger = slog.New(slog.DiscardHandler)
	return Run(context.Background(), spec, o)
}

func readOut(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}

// TestRun_FanOut shows a hot user's rows combined on several keys: the
// bank passes HotRows, its rows go to Fanout sub-keys, and its partials
// are merged into the same line a single combine gives.
func TestRun_FanOut(t *testing.T) {
	in := skewed(t, t.TempDir())
	one := filepath.Join(t.TempDir(), "one")
	if _, err := run(t, feature.Invoice(), Options{Inputs: []string{in}, Out: one, Fanout: 1}); err != nil {
		t.Fatal(err)
	}
	fanned := filepath.Join(t.TempDir(), "fanned")
	sum, err := run(t, feature.Invoice(), Options{Inputs: []string{in}, Out: fanned, Fanout: 4, HotRows: 50, HotShare: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	c := sum.Counters
	if c["fanout_users"] != 1 || c["fanout_parts_per_user_max"] != 4 || c["hot_rows"] < 800 || c["salted_partials"] < 3 {
		t.Errorf("the bank was not fanned out over 4 keys: counters %v", c)
	}
	a, b := readOut(t, one)["skewed.csv.features.csv"], readOut(t, fanned)["skewed.csv.features.csv"]
	if a == "" || a != b {
		t.Errorf("fanned-out features differ:\n%s\nvs\n%s", a, b)
	}
	if !strings.Contains(a, "\nBANK,900,") {
		t.Errorf("no BANK line with 900 rows:\n%s", a)
	}
}

// countSpec is a mergeable Spec whose Aggregator cannot be encoded: it
// runs through GroupByKey.
func countSpec(failUser string) feature.Spec {
	return feature.Spec{
		Name:    "count-" + failUser,
		Columns: []feature.Column{{Name: "n", Type: feature.TypeInt}, {Name: "file", Type: feature.TypeString}},
		NewAggregator: func(u *feature.User) feature.Aggregator {
			return &countAgg{user: string(u.Key), file: u.File, fail: failUser}
		},
	}
}

type countAgg struct {
	user, file, fail string
	n                int64
}

func (a *countAgg) Add(*feature.Row) error {
	if a.user == a.fail {
		panic("count: failing on " + a.user)
	}
	a.n++
	return nil
}

func (a *countAgg) Merge(o feature.Aggregator) error { a.n += o.(*countAgg).n; return nil }

func (a *countAgg) Finish(out *feature.Record) error {
	out.SetInt("n", a.n)
	out.SetString("file", a.file)
	return nil
}

func TestRun_MergeableWithoutBinaryState(t *testing.T) {
	dir := t.TempDir()
	in := writeCSV(t, dir, "a.csv", [][3]string{{"X", "R", "1"}, {"Y", "R", "2"}, {"X", "R", "3"}})
	spec := countSpec("")
	if combinable(&spec) {
		t.Fatal("countAgg is not a BinaryMarshaler, yet combinable")
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := run(t, spec, Options{Inputs: []string{in}, Out: out}); err != nil {
		t.Fatal(err)
	}
	// The key column is named after the input's user column, as mce run
	// names it.
	want := "issuer,n,file\nX,2,a.csv\nY,1,a.csv\n"
	if got := readOut(t, out)["a.csv.features.csv"]; got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestRun_FeaturePanicFailsJob: a panic in the feature code on one user
// fails the job with the file, the line and the user, and the output
// folder is left with nothing in it.
func TestRun_FeaturePanicFailsJob(t *testing.T) {
	dir := t.TempDir()
	a := writeCSV(t, dir, "a.csv", [][3]string{{"X", "R", "1"}, {"Y", "R", "2"}})
	b := writeCSV(t, dir, "b.csv", [][3]string{{"Z", "R", "1"}, {"BAD", "R", "2"}, {"Z", "R", "3"}})
	out := filepath.Join(t.TempDir(), "out")
	_, err := run(t, countSpec("BAD"), Options{Inputs: []string{a, b}, Out: out})
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(err.Error(), `b.csv:3: user "BAD": reduce: panic: count: failing on BAD`) &&
		!strings.Contains(err.Error(), `b.csv: user "BAD": reduce: panic: count: failing on BAD`) {
		t.Errorf("error does not name the file and the user:\n%v", err)
	}
	if !strings.HasPrefix(err.Error(), "the job failed: b.csv") {
		t.Errorf("the error does not start with what failed:\n%.200s", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("a failed job left %v in its output folder", ents)
	}

	// The same in a combined Aggregator's Add: the line of the row too.
	out2 := filepath.Join(t.TempDir(), "out")
	failing := feature.Invoice()
	failing.Name = "invoice-failing"
	inner := failing.NewAggregator
	failing.NewAggregator = func(u *feature.User) feature.Aggregator {
		if string(u.Key) == "BAD" {
			return panicAgg{inner(u)}
		}
		return inner(u)
	}
	_, err = run(t, failing, Options{Inputs: []string{a, b}, Out: out2})
	if err == nil || !strings.Contains(err.Error(), `b.csv:3: user "BAD": add: panic: bad row`) {
		t.Errorf("error does not name the file, the line and the user:\n%v", err)
	}
	if ents, _ := os.ReadDir(out2); len(ents) != 0 {
		t.Errorf("a failed job left %v in its output folder", ents)
	}
}

type panicAgg struct{ feature.Aggregator }

func (panicAgg) Add(*feature.Row) error { panic("bad row") }

func TestRun_RefusesFolderWithResults(t *testing.T) {
	dir := t.TempDir()
	in := writeCSV(t, dir, "a.csv", [][3]string{{"X", "R", "1"}})
	out := filepath.Join(t.TempDir(), "out")
	if _, err := run(t, feature.Invoice(), Options{Inputs: []string{in}, Out: out}); err != nil {
		t.Fatal(err)
	}
	var sum Summary
	b, _ := os.ReadFile(filepath.Join(out, SummaryName))
	if err := json.Unmarshal(b, &sum); err != nil || sum.Rows != 1 || sum.Users != 1 || len(sum.Outputs) != 1 {
		t.Errorf("summary: %v %+v", err, sum)
	}
	_, err := run(t, feature.Invoice(), Options{Inputs: []string{in}, Out: out})
	if err == nil || !strings.Contains(err.Error(), "already holds the results") {
		t.Errorf("second job into the same folder: %v", err)
	}
}

func TestRun_AcrossFiles(t *testing.T) {
	dir := t.TempDir()
	a := writeCSV(t, dir, "a.csv", [][3]string{{"X", "R", "1"}, {"Y", "R", "2"}, {"X", "R", "3"}})
	b := writeCSV(t, dir, "b.csv", [][3]string{{"X", "R", "4"}})
	out := filepath.Join(t.TempDir(), "out")
	if _, err := run(t, countSpec(""), Options{Inputs: []string{a, b}, Out: out, AcrossFiles: true}); err != nil {
		t.Fatal(err)
	}
	want := "issuer,n,file\nX,3,\nY,1,\n"
	if got := readOut(t, out)[acrossFilesOutput]; got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestRun_TimesAndKeyName: as mce run writes them, times read without a
// zone are written without one, and in UTC under --tz; the key column is
// named after the input's user column.
func TestRun_TimesAndKeyName(t *testing.T) {
	dir := t.TempDir()
	in := writeCSV(t, dir, "a.csv", [][3]string{{"X", "R", "1"}, {"X", "S", "2"}})
	f := func(reader ReaderOptions, wantLine string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "out")
		if _, err := run(t, feature.Invoice(), Options{Inputs: []string{in}, Out: out, Reader: reader}); err != nil {
			t.Fatal(err)
		}
		got := readOut(t, out)["a.csv.features.csv"]
		if !strings.HasPrefix(got, "issuer,invoice_count,") || !strings.Contains(got, "\n"+wantLine+"\n") {
			t.Errorf("--tz %q: got\n%s\nwant the line\n%s", reader.TZ, got, wantLine)
		}
	}
	f(ReaderOptions{}, "X,2,3,1.5,0.7071067811865476,1,2,2,2024-01-01T10:00:00,2024-01-02T10:00:00,S,2,0")
	f(ReaderOptions{TZ: "America/Mexico_City"}, "X,2,3,1.5,0.7071067811865476,1,2,2,2024-01-01T16:00:00Z,2024-01-02T16:00:00Z,S,2,0")
}

func TestRows_RoundTrip(t *testing.T) {
	lens := []uint32{1, 0, 3}
	b := appendRow(nil, 7, 1234, feature.EncodingCP1252, []byte("k\xe9y"), lens, []byte("abcde"[:4]))
	row := feature.Row{Fields: make([][]byte, 3)}
	h, err := decodeRow(b, &row)
	if err != nil {
		t.Fatal(err)
	}
	if h.file != 7 || h.line != 1234 || string(h.key) != "k\xe9y" || row.Encoding != feature.EncodingCP1252 ||
		string(row.Fields[0]) != "a" || string(row.Fields[1]) != "" || string(row.Fields[2]) != "bcd" {
		t.Errorf("decoded %+v %q", h, row.Fields)
	}
	re := rekey(nil, h, row.Encoding, []byte("other"), row.Fields)
	h2, err := decodeRow(re, &row)
	if err != nil || string(h2.key) != "other" || string(row.Fields[2]) != "bcd" {
		t.Errorf("rekeyed: %v %+v %q", err, h2, row.Fields)
	}
	for i := range b {
		if _, err := decodeRow(b[:i], &row); err == nil {
			t.Errorf("truncated at %d: no error", i)
		}
	}
	gk := appendGroupKey(nil, -1, 3, []byte("u"))
	if f, s, k, err := parseGroupKey(gk); err != nil || f != -1 || s != 3 || string(k) != "u" {
		t.Errorf("group key: %d %d %q %v", f, s, k, err)
	}
}

func TestIterRows_Order(t *testing.T) {
	enc := func(file int, line int64) []byte {
		return appendRow(nil, file, line, 0, []byte("u"), []uint32{1}, []byte("x"))
	}
	iter := func(vals ...[]byte) func(*[]byte) bool {
		return func(b *[]byte) bool {
			if len(vals) == 0 {
				return false
			}
			*b, vals = vals[0], vals[1:]
			return true
		}
	}
	var r iterRows
	r.row.Fields = make([][]byte, 1)
	r.reset(iter(enc(0, 2), enc(0, 5), enc(1, 1)))
	n := 0
	for r.Next() {
		n++
	}
	if n != 3 || r.Err() != nil {
		t.Errorf("in order: %d rows, %v", n, r.Err())
	}
	r.reset(iter(enc(0, 2), enc(0, 5), enc(0, 3)))
	for r.Next() {
	}
	if !errors.Is(r.Err(), ErrOutOfOrder) || r.bad.line != 3 || r.last.line != 5 {
		t.Errorf("out of order: %v, bad %+v last %+v", r.Err(), r.bad, r.last)
	}
	r.reset(sortedValues(iter(enc(1, 1), enc(0, 5), enc(0, 3))))
	var lines []int64
	for r.Next() {
		lines = append(lines, r.last.line)
	}
	if r.Err() != nil || fmt.Sprint(lines) != "[3 5 1]" {
		t.Errorf("sorted: %v %v", lines, r.Err())
	}
}

func TestPartial_Coder(t *testing.T) {
	spec := feature.Invoice()
	var ops aggOps
	if _, err := Register(spec); err != nil {
		t.Fatal(err)
	}
	if err := ops.setup("invoice", nil, []string{"f.csv"}); err != nil {
		t.Fatal(err)
	}
	p := &partial{file: 0, key: []byte("U"), rows: 2, parts: 1}
	if err := ops.live(p); err != nil {
		t.Fatal(err)
	}
	row := feature.Row{Schema: feature.InvoiceSchema, Fields: [][]byte{
		[]byte("1"), []byte("U"), []byte("R"), []byte("2024-01-01"), []byte("12.5"), []byte("MXN"), []byte("d")}}
	p.agg.Add(&row)
	p.agg.Add(&row)
	b, err := encodePartial(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := decodePartial(b)
	if err != nil || q.file != 0 || string(q.key) != "U" || q.rows != 2 || q.parts != 1 || q.state == nil {
		t.Fatalf("decoded %+v, %v", q, err)
	}
	if err := ops.live(q); err != nil {
		t.Fatal(err)
	}
	rec := spec.NewRecord()
	if err := q.agg.Finish(rec); err != nil {
		t.Fatal(err)
	}
	if got := string(rec.AppendField(nil, 1)); got != "25" {
		t.Errorf("amount_total after the round trip = %s", got)
	}
	empty, _ := encodePartial(&partial{file: unsetFile})
	if e, err := decodePartial(empty); err != nil || e.file != unsetFile || e.state != nil {
		t.Errorf("empty partial: %+v %v", e, err)
	}
}
