package output

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/mce-engine/mce/engine/feature"
)

// testSpec has a column of every type, two of them decimals.
func testSpec(t testing.TB) *feature.Spec {
	t.Helper()
	s := &feature.Spec{
		Name: "every_type",
		Columns: []feature.Column{
			{Name: "n", Type: feature.TypeInt},
			{Name: "total", Type: feature.TypeFloat, Scale: 4},
			{Name: "mean", Type: feature.TypeFloat},
			{Name: "first", Type: feature.TypeTime},
			{Name: "top", Type: feature.TypeString},
			{Name: "cents", Type: feature.TypeFloat, Scale: 2},
		},
		Reduce: func(*feature.User, feature.Rows, *feature.Record) error { return nil },
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

// testUser is one line of testSpec's table, as typed values; a nil field
// is unset.
type testUser struct {
	key   string
	n     *int64
	total *float64 // scaled by 10^4 exactly
	mean  *float64
	first *time.Time
	top   *string
	cents *float64
}

func ptr[T any](v T) *T { return &v }

func (u testUser) record(spec *feature.Spec) *feature.Record {
	r := spec.NewRecord()
	if u.n != nil {
		r.SetIntAt(0, *u.n)
	}
	if u.total != nil {
		r.SetFloatAt(1, *u.total)
	}
	if u.mean != nil {
		r.SetFloatAt(2, *u.mean)
	}
	if u.first != nil {
		r.SetTimeAt(3, *u.first)
	}
	if u.top != nil {
		r.SetStringAt(4, *u.top)
	}
	if u.cents != nil {
		r.SetFloatAt(5, *u.cents)
	}
	return r
}

func testUsers() []testUser {
	at := time.Date(2024, 3, 1, 10, 11, 12, 0, time.UTC)
	us := []testUser{
		{key: "AAA010101AAA", n: ptr[int64](3), total: ptr(1132.95), mean: ptr(377.65), first: &at, top: ptr("RFC010101AB1"), cents: ptr(0.5)},
		{key: "a,comma", n: ptr[int64](-1), total: ptr(-0.0001), mean: ptr(math.NaN()), first: ptr(at.Add(123456789 * time.Nanosecond)), top: ptr(`say "hi", twice`), cents: ptr(-12.25)},
		{key: "line\nbreak", n: ptr[int64](math.MaxInt64), total: ptr(99999999999.9999), mean: ptr(math.Inf(1)), first: ptr(time.Date(1969, 12, 31, 23, 59, 59, 999_999_500, time.UTC)), top: ptr("señor ñandú €"), cents: ptr(1e12)},
		{key: "unset"},
		{key: "zeros", n: ptr[int64](0), total: ptr(0.0), mean: ptr(0.0), first: ptr(time.Unix(0, 0).UTC()), top: ptr(""), cents: ptr(0.0)},
		{key: "señor", n: ptr[int64](math.MinInt64), total: ptr(1e-4), mean: ptr(-1.5e-300), first: ptr(time.Date(2200, 12, 31, 23, 59, 59, 999_999_000, time.UTC)), top: ptr("x\r\ny"), cents: ptr(1e15)},
		{key: "wide", total: ptr(12345678901.2345), mean: ptr(math.Inf(-1)), cents: ptr(99.99)},
	}
	for i := range 20 {
		us = append(us, testUser{key: fmt.Sprintf("z%03d", i), n: ptr(int64(i)), total: ptr(float64(i) / 8)})
	}
	return us
}

// csvTable returns the table of us as the modes write it: the header,
// then one AppendRecord line per user.
func csvTable(spec *feature.Spec, us []testUser) []byte {
	b := []byte(Header(spec))
	for _, u := range us {
		b, _ = AppendRecord(b, nil, []byte(u.key), u.record(spec))
	}
	return b
}

// writeChunks writes data to w in chunks of random sizes (all at once
// when seed is 0).
func writeChunks(t *testing.T, w *Writer, data []byte, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	for len(data) > 0 {
		n := len(data)
		if seed != 0 {
			n = min(n, 1+r.IntN(40))
		}
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// localCSV writes table through a CSV Writer told that its times are
// local (SetLocalTimes), in chunks as writeChunks cuts them, and returns
// what it wrote.
func localCSV(t *testing.T, spec *feature.Spec, table []byte, seed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.SetLocalTimes(true)
	writeChunks(t, w, table, seed)
	return buf.Bytes()
}

func TestWriter_CSV(t *testing.T) {
	spec := testSpec(t)
	table := csvTable(spec, testUsers())
	lines := table[len(Header(spec)):]
	f := func(name string, o Options, input, wantKey string) {
		t.Helper()
		for _, seed := range []uint64{0, 1, 2} {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, spec, o)
			if err != nil {
				t.Fatal(err)
			}
			w.SetInputKeyName(input)
			writeChunks(t, w, table, seed)
			want := header(spec, wantKey) + string(lines)
			if buf.String() != want {
				t.Errorf("%s (chunks %d): got\n%q\nwant\n%q", name, seed, buf.String(), want)
			}
		}
	}
	f("default", Options{}, "issuer_id", "issuer_id")
	f("default unknown", Options{}, "", "user")
	f("default named as a feature", Options{}, "TOP", "user")
	f("user", Options{Format: CSV, KeyName: "user"}, "issuer_id", "user")
	f("input", Options{KeyFromInput: true}, "Issuer_ID", "Issuer_ID")
	f("input unknown", Options{KeyFromInput: true}, "", "user")
	f("name", Options{KeyName: "rfc, emisor", KeyFromInput: true}, "Issuer_ID", "rfc, emisor")

	var buf bytes.Buffer
	w, _ := NewWriter(&buf, spec, Options{})
	if err := w.Close(); err != nil || buf.String() != Header(spec) {
		t.Errorf("empty table: %q, %v; want the header alone", buf.String(), err)
	}
	if _, err := NewWriter(&buf, spec, Options{KeyName: "TOP"}); err == nil {
		t.Error("a key named as a feature column was taken")
	}
}

// readParquet reads a Parquet file back with parquet-go's reader: the
// column names, their types in words, the row group sizes and the rows.
func readParquet(t *testing.T, data []byte) (names, types []string, groups []int64, rows []parquet.Row) {
	t.Helper()
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range pf.Schema().Fields() {
		names = append(names, f.Name())
		typ := f.Type().Kind().String()
		if lt := f.Type().LogicalType(); lt != nil && lt.Value != nil {
			typ += " " + lt.String()
		}
		if f.Optional() {
			typ += " optional"
		}
		types = append(types, typ)
	}
	for _, rg := range pf.RowGroups() {
		groups = append(groups, rg.NumRows())
		rr := rg.Rows()
		buf := make([]parquet.Row, 7)
		for {
			n, err := rr.ReadRows(buf)
			for _, r := range buf[:n] {
				rows = append(rows, r.Clone())
			}
			if errors.Is(err, os.ErrClosed) || err != nil {
				break
			}
		}
		rr.Close()
	}
	return names, types, groups, rows
}

func TestWriter_Parquet(t *testing.T) {
	spec := testSpec(t)
	users := testUsers()
	table := csvTable(spec, users)
	for _, seed := range []uint64{0, 1, 7} {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, spec, Options{Format: Parquet, RowGroupRows: 8, KeyFromInput: true})
		if err != nil {
			t.Fatal(err)
		}
		w.SetInputKeyName("Issuer_ID")
		writeChunks(t, w, table, seed)
		names, types, groups, rows := readParquet(t, buf.Bytes())

		wantNames := []string{"Issuer_ID", "n", "total", "mean", "first", "top", "cents"}
		wantTypes := []string{
			"BYTE_ARRAY STRING",
			"INT64 INT(64,true) optional",
			"INT64 DECIMAL(18,4) optional",
			"DOUBLE optional",
			"INT64 TIMESTAMP(isAdjustedToUTC=true,unit=MICROS) optional",
			"BYTE_ARRAY STRING optional",
			"INT64 DECIMAL(18,2) optional",
		}
		if fmt.Sprint(names) != fmt.Sprint(wantNames) {
			t.Errorf("columns %q, want %q", names, wantNames)
		}
		if fmt.Sprint(types) != fmt.Sprint(wantTypes) {
			t.Errorf("types\n%q\nwant\n%q", types, wantTypes)
		}
		if fmt.Sprint(groups) != "[8 8 8 3]" {
			t.Errorf("row groups of %v rows, want [8 8 8 3]", groups)
		}
		if len(rows) != len(users) {
			t.Fatalf("%d rows, want %d", len(rows), len(users))
		}
		for i, u := range users {
			row := rows[i]
			got := func(c int) parquet.Value {
				for _, v := range row {
					if v.Column() == c {
						return v
					}
				}
				t.Fatalf("row %d has no column %d", i, c)
				return parquet.Value{}
			}
			check := func(c int, set bool, ok func(v parquet.Value) bool) {
				t.Helper()
				v := got(c)
				if !set {
					if !v.IsNull() {
						t.Errorf("user %q: %s = %v, want null", u.key, names[c], v)
					}
					return
				}
				if v.IsNull() || !ok(v) {
					t.Errorf("user %q: %s = %v, want %v", u.key, names[c], v, u)
				}
			}
			check(0, true, func(v parquet.Value) bool { return string(v.ByteArray()) == u.key })
			check(1, u.n != nil, func(v parquet.Value) bool { return v.Int64() == *u.n })
			check(2, u.total != nil, func(v parquet.Value) bool { return v.Int64() == int64(math.Round(*u.total*1e4)) })
			check(3, u.mean != nil, func(v parquet.Value) bool {
				return v.Double() == *u.mean || math.IsNaN(*u.mean) && math.IsNaN(v.Double())
			})
			check(4, u.first != nil, func(v parquet.Value) bool {
				return v.Int64() == u.first.UnixMicro() // floor to the microsecond
			})
			// An empty string is an empty CSV field: null, as CSV
			// readers take it.
			check(5, u.top != nil && *u.top != "", func(v parquet.Value) bool { return string(v.ByteArray()) == *u.top })
			check(6, u.cents != nil, func(v parquet.Value) bool { return v.Int64() == int64(math.Round(*u.cents*100)) })
		}
	}
}

func TestWriter_ParquetEmpty(t *testing.T) {
	spec := testSpec(t)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, spec, Options{Format: Parquet})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	names, _, _, rows := readParquet(t, buf.Bytes())
	if len(names) != 7 || names[0] != "user" || len(rows) != 0 {
		t.Errorf("empty table: columns %q, %d rows", names, len(rows))
	}
}

func TestWriter_ParquetBadDecimal(t *testing.T) {
	spec := testSpec(t)
	f := func(cents float64, want string) {
		t.Helper()
		var buf bytes.Buffer
		w, _ := NewWriter(&buf, spec, Options{Format: Parquet})
		table := csvTable(spec, []testUser{{key: "u1", cents: &cents}})
		_, err := w.Write(table)
		if err == nil {
			err = w.Close()
		}
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, errDecimalRange) {
			t.Errorf("cents %v: error %v, want one saying %q", cents, err, want)
		}
		if !strings.Contains(fmt.Sprint(err), `user "u1": feature cents`) {
			t.Errorf("cents %v: error %v does not name the user and feature", cents, err)
		}
	}
	a, b := 0.1, 0.2
	f(a+b, "more than 2 fraction digits")
	f(0.125, "more than 2 fraction digits")
	f(1e17, "more than 18 digits")
}

func TestParseDecimalText(t *testing.T) {
	f := func(in string, scale int, want int64) {
		t.Helper()
		got, err := parseDecimalText([]byte(in), scale)
		if err != nil || got != want {
			t.Errorf("parseDecimalText(%q, %d) = %d, %v; want %d", in, scale, got, err, want)
		}
	}
	f("0", 4, 0)
	f("-0", 4, 0)
	f("1132.95", 4, 11329500)
	f("-0.0001", 4, -1)
	f("+7", 0, 7)
	bad := func(in string, scale int) {
		t.Helper()
		if got, err := parseDecimalText([]byte(in), scale); err == nil {
			t.Errorf("parseDecimalText(%q, %d) = %d, want an error", in, scale, got)
		}
	}
	bad("1e+21", 0)
	bad("NaN", 4)
	bad("+Inf", 4)
	bad("-Inf", 4)
	bad("", 4)
	bad("1.2.3", 4)
	bad("1x", 4)
	bad("0.00001", 4)
	bad("100000000000000", 4)
	f("99999999999999.9999", 4, 999999999999999999)
	f("1e+13", 4, 100000000000000000)
	f("1.5e-03", 4, 15)
	bad("1.5e-04", 4) // 0.00015
}

func TestTable_Commit(t *testing.T) {
	spec := testSpec(t)
	dir := t.TempDir()
	for _, format := range []Format{CSV, Parquet} {
		final := filepath.Join(dir, format.Name("jan.csv.features.csv"))
		tb, err := CreateTable(final, spec, Options{Format: format})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tb.Write(csvTable(spec, testUsers())); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(final); err == nil {
			t.Errorf("%s: the final name exists before Commit", format)
		}
		if _, err := os.Stat(final + TempSuffix); err != nil {
			t.Errorf("%s: no temporary file while writing: %v", format, err)
		}
		if err := tb.Commit(); err != nil {
			t.Fatal(err)
		}
		tb.Abort() // a no-op after Commit
		b, err := os.ReadFile(final)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if format == Parquet {
			if _, _, _, rows := readParquet(t, b); len(rows) != len(testUsers()) {
				t.Errorf("parquet: %d rows, want %d", len(rows), len(testUsers()))
			}
		} else if !bytes.Equal(b, csvTable(spec, testUsers())) {
			t.Error("csv: the file differs from the lines written")
		}

		aborted := filepath.Join(dir, format.Name("feb.csv.features.csv"))
		tb, err = CreateTable(aborted, spec, Options{Format: format})
		if err != nil {
			t.Fatal(err)
		}
		tb.Write([]byte(Header(spec)))
		tb.Abort()
		if m, _ := filepath.Glob(aborted + "*"); len(m) > 0 {
			t.Errorf("%s: Abort left %v", format, m)
		}
	}
	if got := Parquet.Name("jan.csv-2.features.csv"); got != "jan.csv-2.features.parquet" {
		t.Errorf("Parquet.Name = %q", got)
	}
}

// BenchmarkWriter writes a table of the built-in features of 100k users
// (every line as AppendRecord made it) in each format.
func BenchmarkWriter(b *testing.B) {
	spec := feature.Invoice()
	if err := spec.Validate(); err != nil {
		b.Fatal(err)
	}
	const users = 100_000
	r := rand.New(rand.NewPCG(1, 2))
	rec := spec.NewRecord()
	table := []byte(Header(&spec))
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range users {
		n := int64(1 + r.IntN(50))
		rec.SetIntAt(0, n)
		rec.SetFloatAt(1, float64(r.IntN(1e10))/1e4)
		rec.SetFloatAt(2, r.Float64()*1e5)
		if n > 1 {
			rec.SetFloatAt(3, r.Float64()*1e4)
		}
		rec.SetFloatAt(4, float64(r.IntN(1e8))/1e4)
		rec.SetFloatAt(5, float64(r.IntN(1e9))/1e4)
		rec.SetIntAt(6, int64(r.IntN(20)))
		rec.SetTimeAt(7, base.Add(time.Duration(r.IntN(1e7))*time.Second))
		rec.SetTimeAt(8, base.Add(time.Duration(r.IntN(3e7))*time.Second))
		rec.SetStringAt(9, fmt.Sprintf("RFC%09dXY", r.IntN(1e9)))
		rec.SetFloatAt(10, float64(r.IntN(1e9))/1e4)
		rec.SetIntAt(11, 0)
		table, _ = AppendRecord(table, nil, fmt.Appendf(nil, "AAA%09dZZ", i), rec)
		rec.Reset()
	}
	for _, c := range []struct {
		format Format
		local  bool
	}{{CSV, false}, {CSV, true}, {Parquet, false}} {
		name := "format=" + string(c.format)
		if c.local {
			name += "/local-times" // every line rewritten
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(table)))
			b.ReportAllocs()
			var size int
			for b.Loop() {
				var buf bytes.Buffer
				w, err := NewWriter(&buf, &spec, Options{Format: c.format})
				if err != nil {
					b.Fatal(err)
				}
				w.SetLocalTimes(c.local)
				// Line by line, as WriteSorted writes.
				rest := table
				for len(rest) > 0 {
					i := bytes.IndexByte(rest, '\n')
					if _, err := w.Write(rest[:i+1]); err != nil {
						b.Fatal(err)
					}
					rest = rest[i+1:]
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				size = buf.Len()
			}
			b.ReportMetric(float64(users)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(size)/users, "bytes/row")
		})
	}
}

func TestOptions_ResolveKeyName(t *testing.T) {
	f := func(flag, specKey, input, want string) {
		t.Helper()
		var o Options
		if err := o.ParseKeyName(flag); err != nil {
			t.Fatal(err)
		}
		spec := &feature.Spec{KeyName: specKey}
		if got := o.ResolveKeyName(spec, input); got != want {
			t.Errorf("--key-name %q, Spec.KeyName %q, input %q: %q, want %q", flag, specKey, input, got, want)
		}
	}
	f("", "", "issuer_id", "issuer_id") // the input's name by default
	f("", "", " issuer_id ", "issuer_id")
	f("", "", "", "user")
	f("user", "", "issuer_id", "user")
	f("input", "", " issuer_id ", "issuer_id")
	f("input", "", "", "user")
	f("input", "receiver", "issuer_id", "receiver") // what Map declares beats the input
	f("", "receiver", "issuer_id", "receiver")
	f("rfc", "receiver", "issuer_id", "rfc") // the command line has the last word
	var o Options
	if err := o.ParseKeyName("a\nb"); err == nil {
		t.Error("a key name with a line break was taken")
	}

	// A Spec with a Map may group rows under another key than the user:
	// the input's name is taken only when asked for.
	withMap := &feature.Spec{Map: func(*feature.Row, feature.Params) ([]byte, bool) { return nil, true }}
	if got := (Options{}).ResolveKeyName(withMap, "issuer_id"); got != "user" {
		t.Errorf("a Spec with a Map, by default: %q, want user", got)
	}
	if got := (Options{KeyFromInput: true}).ResolveKeyName(withMap, "issuer_id"); got != "issuer_id" {
		t.Errorf("a Spec with a Map, --key-name input: %q, want issuer_id", got)
	}
	// By default a name that is also a feature column (compared without
	// case) gives way to user; asked for, it is the Writer's error.
	cols := &feature.Spec{Columns: []feature.Column{{Name: "issuer", Type: feature.TypeInt}}}
	if got := (Options{}).ResolveKeyName(cols, "ISSUER"); got != "user" {
		t.Errorf("an input name that is a feature column: %q, want user", got)
	}
}

func TestCommonKeyName(t *testing.T) {
	f := func(names []string, want string) {
		t.Helper()
		if got := CommonKeyName(names); got != want {
			t.Errorf("CommonKeyName(%q) = %q, want %q", names, got, want)
		}
	}
	f(nil, "")
	f([]string{"issuer_id"}, "issuer_id")
	f([]string{"issuer_id", "ISSUER_ID", " Issuer_Id"}, "issuer_id")
	f([]string{"issuer_id", "emisor"}, "")
	f([]string{"", "issuer_id"}, "")
}

// TestWriter_LocalTimes writes a table whose times were read without a
// zone: CSV drops each time's "Z" and changes nothing else; Parquet types
// the time column TIMESTAMP(isAdjustedToUTC=false) and holds the same
// wall-clock microseconds.
func TestWriter_LocalTimes(t *testing.T) {
	spec := testSpec(t)
	users := testUsers()
	table := csvTable(spec, users)
	for _, seed := range []uint64{0, 3} {
		got := strings.Split(string(localCSV(t, spec, table, seed)), "\n")
		want := strings.Split(string(table), "\n")
		if len(got) != len(want) {
			t.Fatalf("chunks %d: %d lines, want %d", seed, len(got), len(want))
		}
		zones := 0
		for i := range want {
			// The time column is the fifth; only its "Z" may go.
			if i > 0 && strings.Contains(want[i], "Z,") {
				zones++
			}
			if fixed := strings.Replace(want[i], "Z,", ",", 1); got[i] != fixed && !(i == 0 && got[i] == want[i]) {
				t.Errorf("chunks %d, line %d:\n%q\nwant\n%q", seed, i+1, got[i], fixed)
			}
		}
		if zones != 5 {
			t.Errorf("the table has %d times, want 5", zones)
		}
	}
	// A user whose time is set and whose string holds "Z," in quotes.
	at := time.Date(2024, 3, 1, 10, 11, 12, 500_000_000, time.UTC)
	one := csvTable(spec, []testUser{{key: "u", first: &at, top: ptr("Z,Z")}})
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, spec, Options{})
	w.SetLocalTimes(true)
	writeChunks(t, w, one, 0)
	if want := Header(spec) + "u,,,,2024-03-01T10:11:12.5,\"Z,Z\",\n"; buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}

	buf.Reset()
	w, _ = NewWriter(&buf, spec, Options{Format: Parquet})
	w.SetLocalTimes(true)
	writeChunks(t, w, table, 0)
	_, types, _, rows := readParquet(t, buf.Bytes())
	if want := "INT64 TIMESTAMP(isAdjustedToUTC=false,unit=MICROS) optional"; types[4] != want {
		t.Errorf("time column %q, want %q", types[4], want)
	}
	for i, u := range users {
		if u.first == nil {
			continue
		}
		for _, v := range rows[i] {
			if v.Column() == 4 && v.Int64() != u.first.UnixMicro() {
				t.Errorf("user %q: %d, want %d", u.key, v.Int64(), u.first.UnixMicro())
			}
		}
	}

	w, _ = NewWriter(&buf, spec, Options{})
	w.Write([]byte(Header(spec)))
	w.SetLocalTimes(true)
	if err := w.Close(); err == nil {
		t.Error("SetLocalTimes after the header was taken")
	}
}

// localByFields is the oracle of appendLocalLine: the line split into its
// unquoted fields and written again, the key and strings quoted as
// AppendCSVField quotes them, the times without their "Z" (what a Writer
// of local times did before appendLocalLine).
func localByFields(t testing.TB, spec *feature.Spec, line []byte) []byte {
	t.Helper()
	sp := newLineSplit(spec)
	b, err := appendByFields(nil, &sp, spec, line)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func appendByFields(b []byte, sp *lineSplit, spec *feature.Spec, line []byte) ([]byte, error) {
	if err := sp.line(line); err != nil {
		return b, err
	}
	b = AppendCSVField(b, sp.fields[0])
	for i, c := range spec.Columns {
		b = append(b, ',')
		f := sp.fields[i+1]
		switch c.Type {
		case feature.TypeString:
			b = AppendCSVField(b, f)
		case feature.TypeTime:
			b = append(b, bytes.TrimSuffix(f, []byte{'Z'})...)
		default:
			b = append(b, f...)
		}
	}
	return append(b, '\n'), nil
}

// TestAppendLocalLine: every line of the test users (quotes, commas and
// line breaks in keys and strings, unset fields) is what splitting it and
// writing its fields again gives; a line with a field too many or too few
// is an error.
func TestAppendLocalLine(t *testing.T) {
	spec := testSpec(t)
	times := timeFields(spec)
	for _, u := range manyUsers(2000) {
		line, _ := AppendRecord(nil, nil, []byte(u.key), u.record(spec))
		line = line[:len(line)-1]
		got, err := appendLocalLine(nil, line, times)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if want := localByFields(t, spec, line); !bytes.Equal(got, want) {
			t.Fatalf("%q:\ngot  %q\nwant %q", line, got, want)
		}
	}
	for _, bad := range []string{"a,1,2,3,2024-01-01T00:00:00Z,x", "a,1,2,3,2024-01-01T00:00:00Z,x,1,extra", `a,1,2,3,"x,y"`} {
		if _, err := appendLocalLine(nil, []byte(bad), times); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// FuzzAppendLocalLine checks appendLocalLine against its oracle on lines
// AppendRecord makes of any key, string and time.
func FuzzAppendLocalLine(f *testing.F) {
	f.Add("AAA010101AAA", `say "hi", twice`, int64(1709287872), int64(3))
	f.Add("line\nbreak", "x\r\ny", int64(-1), int64(0))
	f.Add("", "", int64(0), int64(-5))
	f.Fuzz(func(t *testing.T, key, top string, sec, n int64) {
		spec := testSpec(t)
		at := time.Unix(sec%(1<<34), 0).UTC()
		u := testUser{key: key, n: &n, first: &at, top: &top}
		line, _ := AppendRecord(nil, nil, []byte(key), u.record(spec))
		line = line[:len(line)-1]
		got, err := appendLocalLine(nil, line, timeFields(spec))
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if want := localByFields(t, spec, line); !bytes.Equal(got, want) {
			t.Fatalf("%q:\ngot  %q\nwant %q", line, got, want)
		}
	})
}

// BenchmarkAppendLocalLine: a table's lines of local times through
// appendLocalLine ("walk") and through the split and rewrite it replaced
// (its oracle, "split").
func BenchmarkAppendLocalLine(b *testing.B) {
	spec := testSpec(b)
	times := timeFields(spec)
	var lines [][]byte
	var n int64
	for _, u := range manyUsers(5000) {
		line, _ := AppendRecord(nil, nil, []byte(u.key), u.record(spec))
		lines = append(lines, line[:len(line)-1])
		n += int64(len(line))
	}
	b.Run("walk", func(b *testing.B) {
		b.SetBytes(n)
		var dst []byte
		for b.Loop() {
			for _, l := range lines {
				dst, _ = appendLocalLine(dst[:0], l, times)
			}
		}
	})
	b.Run("split", func(b *testing.B) {
		b.SetBytes(n)
		sp := newLineSplit(spec)
		var dst []byte
		for b.Loop() {
			for _, l := range lines {
				dst, _ = appendByFields(dst[:0], &sp, spec, l)
			}
		}
	})
}

// TestLineFormat_local: a line of local times is, byte for byte, what
// appendLocalLine makes of AppendRecord's line, for every test user (and
// the Z-less format leaves AppendRecord's line as it is).
func TestLineFormat_local(t *testing.T) {
	spec := testSpec(t)
	times := timeFields(spec)
	for _, u := range append(testUsers(), manyUsers(2000)...) {
		rec := u.record(spec)
		line, _ := AppendRecord(nil, nil, []byte(u.key), rec)
		want, err := appendLocalLine(nil, line[:len(line)-1], times)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		got, _ := LineFormat{Local: true}.AppendRecord([]byte("kept"), nil, []byte(u.key), rec)
		if !bytes.Equal(got, append([]byte("kept"), want...)) {
			t.Fatalf("user %q:\ngot  %q\nwant %q", u.key, got, want)
		}
		if same, _ := (LineFormat{}).AppendRecord(nil, nil, []byte(u.key), rec); !bytes.Equal(same, line) {
			t.Fatalf("user %q: the zoned format gives %q, want AppendRecord's %q", u.key, same, line)
		}
	}
}

// TestLinesFor: only a CSV Writer of local times, asked before its first
// line, takes Z-less lines, and writes them as they come: the same table
// as a Writer that drops the "Z" of AppendRecord's lines.
func TestLinesFor(t *testing.T) {
	spec := testSpec(t)
	users := testUsers()
	newWriter := func(format Format, local bool) (*Writer, *bytes.Buffer) {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, spec, Options{Format: format})
		if err != nil {
			t.Fatal(err)
		}
		w.SetLocalTimes(local)
		return w, &buf
	}
	cases := []struct {
		name   string
		format Format
		local  bool
		late   bool // asked after the header
		want   bool
	}{
		{"csv local", CSV, true, false, true},
		{"csv zoned", CSV, false, false, false},
		{"parquet local", Parquet, true, false, false},
		{"csv local, asked late", CSV, true, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, buf := newWriter(c.format, c.local)
			if c.late {
				if _, err := w.Write([]byte(Header(spec))); err != nil {
					t.Fatal(err)
				}
			}
			lf := LinesFor(w)
			if lf.Local != c.want {
				t.Fatalf("LinesFor: Local %v, want %v", lf.Local, c.want)
			}
			if c.format != CSV {
				return
			}
			table := []byte{}
			if !c.late {
				table = []byte(Header(spec))
			}
			for _, u := range users {
				table, _ = lf.AppendRecord(table, nil, []byte(u.key), u.record(spec))
			}
			writeChunks(t, w, table, 3)
			var want []byte
			if c.local {
				want = localCSV(t, spec, csvTable(spec, users), 0)
			} else {
				want = csvTable(spec, users)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("table:\n%s\nwant\n%s", buf.Bytes(), want)
			}
		})
	}
	if lf := LinesFor(&bytes.Buffer{}); lf.Local {
		t.Error("LinesFor of a plain io.Writer: Local")
	}
}
