package output

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mce-engine/mce/engine/feature"
)

// sortedListsOf deals users at random into n lists, each sorted by key,
// with every user's line as AppendRecord makes it.
func sortedListsOf(spec *feature.Spec, us []testUser, n int, seed uint64) (keys [][]string, lines [][][]byte) {
	r := rand.New(rand.NewPCG(seed, 2))
	byList := make([][]testUser, n)
	for _, u := range us {
		p := r.IntN(n)
		byList[p] = append(byList[p], u)
	}
	keys = make([][]string, n)
	lines = make([][][]byte, n)
	for p, l := range byList {
		slices.SortFunc(l, func(a, b testUser) int { return strings.Compare(a.key, b.key) })
		for _, u := range l {
			line, _ := AppendRecord(nil, nil, []byte(u.key), u.record(spec))
			keys[p] = append(keys[p], u.key)
			lines[p] = append(lines[p], line)
		}
	}
	return keys, lines
}

// manyUsers returns testUsers and n more, with random values, every key
// distinct.
func manyUsers(n int) []testUser {
	us := testUsers()
	r := rand.New(rand.NewPCG(7, 7))
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		u := testUser{key: fmt.Sprintf("U%08d", r.Uint32()%100_000_000*100+uint32(i%100))}
		if i%5 != 0 {
			u.n, u.total = ptr(int64(r.IntN(1000))), ptr(float64(r.IntN(1e8))/1e4)
			u.first = ptr(at.Add(time.Duration(r.IntN(1e9)) * time.Second))
		}
		if i%7 == 0 {
			u.top = ptr(fmt.Sprintf("say \"%d\",\nthen Z,", i))
		}
		us = append(us, u)
	}
	slices.SortFunc(us, func(a, b testUser) int { return strings.Compare(a.key, b.key) })
	return slices.CompactFunc(us, func(a, b testUser) bool { return a.key == b.key })
}

// TestWriteSorted_Workers checks that the merge gives the same bytes on
// any number of workers, whatever writes the table: a plain buffer (the
// lines as made), a CSV Writer (with local times or not) and a Parquet
// Writer; and that they are the users' lines in key order.
func TestWriteSorted_Workers(t *testing.T) {
	spec := testSpec(t)
	users := manyUsers(3 * parallelMinLines)
	truth := csvTable(spec, users) // users are sorted by key
	sinks := []struct {
		name  string
		opts  *Options // nil: a bufio.Writer
		local bool
		want  []byte // nil: as on one worker
	}{
		{name: "bufio", want: truth},
		{name: "csv", opts: &Options{}, want: truth},
		{name: "csv-local", opts: &Options{}, local: true, want: localCSV(t, spec, truth, 0)},
		{name: "parquet", opts: &Options{Format: Parquet}},
		{name: "parquet-local", opts: &Options{Format: Parquet}, local: true},
	}
	for _, sk := range sinks {
		for _, lists := range []int{1, 5, 64} {
			keys, lines := sortedListsOf(spec, users, lists, uint64(lists))
			var one []byte
			for _, workers := range []int{1, 2, 3, 8} {
				t.Run(fmt.Sprintf("%s/lists=%d/workers=%d", sk.name, lists, workers), func(t *testing.T) {
					var buf bytes.Buffer
					var err error
					if sk.opts == nil {
						bw := bufio.NewWriter(&buf)
						err = errors.Join(writeLists(bw, spec, workers, keys, lines), bw.Flush())
					} else {
						w, werr := NewWriter(&buf, spec, *sk.opts)
						if werr != nil {
							t.Fatal(werr)
						}
						w.SetLocalTimes(sk.local)
						err = errors.Join(writeLists(w, spec, workers, keys, lines), w.Close())
					}
					if err != nil {
						t.Fatal(err)
					}
					if workers == 1 {
						one = buf.Bytes()
					}
					if sk.want != nil && !bytes.Equal(buf.Bytes(), sk.want) {
						t.Fatalf("%d bytes differ from the %d wanted at byte %d", buf.Len(), len(sk.want), firstDiff(buf.Bytes(), sk.want))
					}
					if !bytes.Equal(buf.Bytes(), one) {
						t.Fatalf("%d bytes differ from one worker's %d at byte %d", buf.Len(), len(one), firstDiff(buf.Bytes(), one))
					}
				})
			}
		}
	}
}

func writeLists(w interface {
	Write([]byte) (int, error)
	WriteString(string) (int, error)
}, spec *feature.Spec, workers int, keys [][]string, lines [][][]byte) error {
	return WriteSorted(w, spec, workers, len(keys),
		func(p int) int { return len(keys[p]) },
		func(p, i int) string { return keys[p][i] },
		func(p, i int) []byte { return lines[p][i] })
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// failAfter fails every write once n bytes were written.
type failAfter struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errDiskFull
	}
	return len(p), nil
}

// TestWriteSorted_WriteError checks that a failing destination stops the
// merge on every number of workers, with its error (no goroutine left
// waiting: the test would hang).
func TestWriteSorted_WriteError(t *testing.T) {
	spec := testSpec(t)
	users := manyUsers(3 * parallelMinLines)
	keys, lines := sortedListsOf(spec, users, 16, 1)
	for _, workers := range []int{1, 2, 8} {
		for _, local := range []bool{false, true} {
			w, err := NewWriter(&failAfter{n: 100_000}, spec, Options{})
			if err != nil {
				t.Fatal(err)
			}
			w.SetLocalTimes(local)
			err = errors.Join(writeLists(w, spec, workers, keys, lines), w.Close())
			if !errors.Is(err, errDiskFull) {
				t.Errorf("workers %d, local %v: got %v, want %v", workers, local, err, errDiskFull)
			}
		}
	}
}

// TestWriteSorted_ManyShortLists: lists too short to be sampled (each
// shorter than the sampling stride) are merged as one piece, whole.
func TestWriteSorted_ManyShortLists(t *testing.T) {
	spec := testSpec(t)
	users := manyUsers(parallelMinLines + 1000)
	keys, lines := sortedListsOf(spec, users, 5000, 3)
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	if err := errors.Join(writeLists(bw, spec, 8, keys, lines), bw.Flush()); err != nil {
		t.Fatal(err)
	}
	if want := csvTable(spec, users); !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("%d bytes differ from the %d wanted at byte %d", buf.Len(), len(want), firstDiff(buf.Bytes(), want))
	}
}
