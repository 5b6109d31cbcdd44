package keyruns

import (
	"context"
	"fmt"
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
	var got []string
	n, err := Merge(context.Background(), func(_, line []byte) error {
		got = append(got, string(line))
		return nil
	}, rs, func(int64) {})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(all)
	if n != int64(len(all)) || !slices.Equal(got, all) {
		t.Errorf("merged %d lines, want %d in key order", n, len(all))
	}
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
