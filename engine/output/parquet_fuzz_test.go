package output

import (
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/mce-engine/mce/engine/feature"
)

// fuzzBytes hands out the bytes of a fuzz input; past its end, zeros.
type fuzzBytes []byte

func (b *fuzzBytes) u64() uint64 {
	var x [8]byte
	n := copy(x[:], *b)
	*b = (*b)[n:]
	return binary.LittleEndian.Uint64(x[:])
}

func (b *fuzzBytes) bytes(n int) []byte {
	n = min(n, len(*b))
	out := slices.Clone((*b)[:n])
	*b = (*b)[n:]
	return out
}

// fuzzUsers makes the lines of testSpec's table from a fuzz input: per
// user a byte of which features are set, a key, an int, a total and cents
// exact to their scales (at most 15 digits, which a float64 written in
// its shortest form keeps), any double (NaN, infinities, subnormals,
// -0), any time a feature.Record holds (int64 nanoseconds: 1677 to 2262)
// and a string of any bytes.
func fuzzUsers(b fuzzBytes) []testUser {
	var us []testUser
	for len(b) > 0 && len(us) < 64 {
		set := b.bytes(1)[0]
		u := testUser{key: string(b.bytes(int(b.u64() % 12)))}
		if set&1 != 0 {
			u.n = ptr(int64(b.u64()))
		}
		if set&2 != 0 {
			u.total = ptr(float64(int64(b.u64()%2e15)-1e15) / 1e4)
		}
		if set&4 != 0 {
			u.mean = ptr(math.Float64frombits(b.u64()))
		}
		if set&8 != 0 {
			u.first = ptr(time.Unix(0, int64(b.u64())).UTC())
		}
		if set&16 != 0 {
			u.top = ptr(string(b.bytes(int(b.u64() % 24))))
		}
		if set&32 != 0 {
			u.cents = ptr(float64(int64(b.u64()%2e15)-1e15) / 100)
		}
		us = append(us, u)
	}
	return us
}

// FuzzParquetRoundTrip writes random users of every feature type
// (testSpec: int, decimal(18,4), double, timestamp, string, decimal(18,2))
// through the Writer as Parquet, in chunks and row groups of random sizes,
// reads the file back with parquet-go's reader and compares every value:
// ints and strings byte for byte (an empty string is null, as in CSV),
// decimals to the unit of their scale, doubles bit for bit (any NaN for
// a NaN), times to the microsecond below, unset features null. Every
// other input marks the times local (Writer.SetLocalTimes): the Parquet
// column is then not adjusted to UTC, with the same values, and the CSV
// table, written again line by line, differs from the lines given only
// by its times' Z.
func FuzzParquetRoundTrip(f *testing.F) {
	f.Add([]byte{}, uint8(8), uint64(0))
	f.Add([]byte("\x3f\x05keyAB\x01\x02\x03\x04\x05\x06\x07\x08"), uint8(1), uint64(3))
	f.Add(bytes.Repeat([]byte{0xff, 0x07, 'a', ',', '"', '\n', 0xc3, 0x28, 'z'}, 40), uint8(3), uint64(7))
	f.Fuzz(func(t *testing.T, data []byte, groupRows uint8, chunkSeed uint64) {
		spec := testSpec(t)
		users := fuzzUsers(fuzzBytes(data))
		var buf bytes.Buffer
		w, err := NewWriter(&buf, spec, Options{Format: Parquet, RowGroupRows: 1 + int(groupRows%16)})
		if err != nil {
			t.Fatal(err)
		}
		local := chunkSeed&1 == 1
		w.SetLocalTimes(local)
		table := csvTable(spec, users)
		writeChunks(t, w, table, chunkSeed)
		_, types, groups, rows := readParquet(t, buf.Bytes())
		if want := fmt.Sprintf("TIMESTAMP(isAdjustedToUTC=%v,", !local); !strings.Contains(types[4], want) {
			t.Fatalf("local %v: time column %s", local, types[4])
		}
		if local {
			checkLocalCSV(t, spec, table, chunkSeed)
		}
		var n int64
		for _, g := range groups {
			n += g
		}
		if len(rows) != len(users) || n != int64(len(users)) {
			t.Fatalf("%d rows in row groups %v, want %d", len(rows), groups, len(users))
		}
		for i, u := range users {
			vals := map[int]parquet.Value{}
			for _, v := range rows[i] {
				vals[v.Column()] = v
			}
			check := func(c int, set bool, eq func(v parquet.Value) bool) {
				t.Helper()
				v, ok := vals[c]
				switch {
				case !ok:
					t.Fatalf("user %d %q: no column %d", i, u.key, c)
				case !set && !v.IsNull():
					t.Fatalf("user %d %q: column %d = %v, want null", i, u.key, c, v)
				case set && (v.IsNull() || !eq(v)):
					t.Fatalf("user %d %q: column %d = %v; first %v (%d µs)", i, u.key, c, v, u.first, u.first.UnixMicro())
				}
			}
			check(0, true, func(v parquet.Value) bool { return string(v.ByteArray()) == u.key })
			check(1, u.n != nil, func(v parquet.Value) bool { return v.Int64() == *u.n })
			check(2, u.total != nil, func(v parquet.Value) bool { return v.Int64() == int64(math.Round(*u.total*1e4)) })
			check(3, u.mean != nil, func(v parquet.Value) bool {
				return math.Float64bits(v.Double()) == math.Float64bits(*u.mean) || math.IsNaN(*u.mean) && math.IsNaN(v.Double())
			})
			check(4, u.first != nil, func(v parquet.Value) bool { return v.Int64() == u.first.UnixMicro() })
			check(5, u.top != nil && *u.top != "", func(v parquet.Value) bool { return string(v.ByteArray()) == *u.top })
			check(6, u.cents != nil, func(v parquet.Value) bool { return v.Int64() == int64(math.Round(*u.cents*100)) })
		}
	})
}

// checkLocalCSV writes table as CSV with local times and reads both back
// with encoding/csv: the same records, but for the time column's Z.
func checkLocalCSV(t *testing.T, spec *feature.Spec, table []byte, seed uint64) {
	t.Helper()
	local := localCSV(t, spec, table, seed)
	want, err := csv.NewReader(bytes.NewReader(table)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(bytes.NewReader(local)).ReadAll()
	if err != nil {
		t.Fatalf("the local-times CSV does not read back: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		if i > 0 {
			want[i][4] = strings.TrimSuffix(want[i][4], "Z")
		}
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Fatalf("record %d: %q, want %q", i, got[i], want[i])
		}
	}
}
