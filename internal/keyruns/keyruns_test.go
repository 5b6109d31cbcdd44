package keyruns

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMerge writes three runs into one file (one of them in two segments
// and an empty one) and merges them with chunks smaller than most
// records, and bigger than every run (the buffer is then the run's size):
// every line comes out once, in key order.
func TestMerge(t *testing.T) {
	for _, chunk := range []int{64, 1 << 20} {
		t.Run(fmt.Sprint("chunk=", chunk), func(t *testing.T) { testMerge(t, chunk) })
	}
}

func testMerge(t *testing.T, chunk int) {
	f, err := os.Create(filepath.Join(t.TempDir(), "runs"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var all []string
	var runs [][][2]int64
	var off int64
	for r := range 3 {
		var segs [][2]int64
		var seg []byte
		cut := func() {
			if len(seg) > 0 {
				if _, err := f.Write(seg); err != nil {
					t.Fatal(err)
				}
				segs = append(segs, [2]int64{off, int64(len(seg))})
				off += int64(len(seg))
				seg = seg[:0]
			}
		}
		for i := range 50 {
			key := fmt.Sprintf("u%04d", i*3+r)
			line := key + "," + strings.Repeat("x", (i*37)%200) + "\n"
			all = append(all, line)
			seg = Append(seg, []byte(key), []byte(line))
			if r == 1 && i == 20 {
				cut() // a run of two segments
				segs = append(segs, [2]int64{off, 0})
			}
		}
		cut()
		runs = append(runs, segs)
	}
	var rs []*Reader
	for _, segs := range runs {
		rs = append(rs, NewReader(f, "runs", segs, chunk))
	}
	got, n := mergeAll(t, rs)
	slices.Sort(all)
	if n != int64(len(all)) || !slices.Equal(got, all) {
		t.Errorf("merged %d lines, want %d in key order", n, len(all))
	}
}

// TestMerge_many merges k runs of random keys (short ones, and long ones
// that share their first eight bytes, which the tree compares as a
// number) for run counts on both sides of a power of two, empty runs
// among them: every record comes out once, in bytes.Compare order.
func TestMerge_many(t *testing.T) {
	for _, k := range []int{1, 2, 5, 8, 9, 64, 257} {
		t.Run(fmt.Sprint("runs=", k), func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "runs"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rng := rand.New(rand.NewPCG(uint64(k), 1))
			seen := map[string]bool{}
			var all []string
			var rs []*Reader
			var off int64
			for r := range k {
				var keys []string
				for range rng.IntN(40) * (r % 4) / 2 { // some runs empty
					var key string
					switch rng.IntN(3) {
					case 0:
						key = fmt.Sprint(rng.IntN(1000)) // shorter than eight bytes
					case 1:
						key = "SAMEPREF" + fmt.Sprint(rng.IntN(1000)) // one prefix
					default:
						key = fmt.Sprintf("%08d%d", rng.IntN(100), rng.IntN(100))
					}
					if !seen[key] { // a key is in one run only
						seen[key] = true
						keys = append(keys, key)
					}
				}
				slices.Sort(keys)
				var seg []byte
				for _, key := range keys {
					seg = Append(seg, []byte(key), []byte(key+"\n"))
					all = append(all, key+"\n")
				}
				if _, err := f.Write(seg); err != nil {
					t.Fatal(err)
				}
				rs = append(rs, NewReader(f, "runs", [][2]int64{{off, int64(len(seg))}}, 16))
				off += int64(len(seg))
			}
			got, n := mergeAll(t, rs)
			slices.SortFunc(all, func(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) })
			if n != int64(len(all)) || !slices.Equal(got, all) {
				t.Errorf("merged %d records, want %d in key order:\n%q\nwant\n%q", n, len(all), got, all)
			}
		})
	}
}

// mergeAll merges rs and returns the lines in the order Merge handed
// them, and how many it said it handed.
func mergeAll(t *testing.T, rs []*Reader) ([]string, int64) {
	t.Helper()
	var got []string
	n, err := Merge(context.Background(), func(_, line []byte) error {
		got = append(got, string(line))
		return nil
	}, rs, func(int64) {})
	if err != nil {
		t.Fatal(err)
	}
	return got, n
}

// TestReader_truncated: a segment that ends inside a record is an error,
// not a short run.
func TestReader_truncated(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "runs"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec := Append(nil, []byte("key"), []byte("line\n"))
	if _, err := f.Write(rec); err != nil {
		t.Fatal(err)
	}
	r := NewReader(f, "runs", [][2]int64{{0, int64(len(rec) - 2)}}, 64)
	if r.Next() || r.Err() == nil {
		t.Errorf("a cut record read: next %v, err %v", r.Key(), r.Err())
	}
}

// BenchmarkMerge merges 256 runs of 600 records each, keys like the
// users' RFCs (many sharing their first letters) and lines of about 100
// bytes, as `mce reduce` merges one output's part files (a run per shard).
func BenchmarkMerge(b *testing.B) {
	const runs, perRun = 256, 600
	f, err := os.Create(filepath.Join(b.TempDir(), "runs"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rng := uint64(1)
	next := func() uint64 { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng }
	var segs [][][2]int64
	var off, bytes int64
	for range runs {
		keys := make([]string, perRun)
		for i := range keys {
			x := next()
			keys[i] = fmt.Sprintf("%c%c%c%c%06d%03X", 'A'+x%4, 'A'+x/4%26, 'A'+x/104%26, 'A'+x/2704%26, x/70304%1000000, x>>40%4096)
		}
		slices.Sort(keys)
		var seg []byte
		for _, k := range keys {
			seg = Append(seg, []byte(k), []byte(k+","+strings.Repeat("1", 88)+"\n"))
		}
		if _, err := f.Write(seg); err != nil {
			b.Fatal(err)
		}
		segs = append(segs, [][2]int64{{off, int64(len(seg))}})
		off += int64(len(seg))
		bytes += int64(len(seg))
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var rs []*Reader
		for _, s := range segs {
			rs = append(rs, NewReader(f, "runs", s, 32<<10))
		}
		var sum int
		n, err := Merge(context.Background(), func(_, line []byte) error { sum += len(line); return nil }, rs, func(int64) {})
		if err != nil || n != runs*perRun {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*runs*perRun), "ns/record")
}
