package partition

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mce-engine/mce/internal/userhash"
)

// TestRuns_SortSpillNarrowMerge feeds records through the sorter with a
// tiny buffer (many runs, the last one kept in memory), narrows the runs
// two at a time, and checks that the merge yields every record once,
// grouped by (shard, user) with the right counts, rows in (file, line)
// order; the same with a buffer that holds everything (one in-memory
// run, nothing spilled); and with such a buffer spilled once a little of
// it is filled.
func TestRuns_SortSpillNarrowMerge(t *testing.T) {
	for _, tc := range []struct {
		name      string
		buf, fill int64
		wantSpill bool
		compress  bool
	}{
		{"spilled", 64 << 10, 64 << 10, true, true},
		{"spilled_stored", 64 << 10, 64 << 10, true, false},
		{"in_memory", 16 << 20, 16 << 20, false, true},
		{"spilled_filled", 16 << 20, 64 << 10, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) { testSortSpillNarrowMerge(t, tc.buf, tc.fill, tc.wantSpill, tc.compress) })
	}
}

func testSortSpillNarrowMerge(t *testing.T, buf, fill int64, wantSpill, compress bool) {
	const shards = 8
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(3, 4))
	type rec struct {
		file uint32
		line int64
		val  string
	}
	want := map[string][]rec{} // by "shard/user"
	srt := newSorter(vfs.Default, dir, shards, 2, buf, fill, quiet(), nil, compress)
	var sl slab
	for b := 0; b < 40; b++ {
		sl.reset()
		for i := 0; i < 200; i++ {
			user := []byte(fmt.Sprintf("u%03d", r.IntN(150)))
			if r.IntN(10) == 0 {
				user = append(user, 0, 'x') // a user with a NUL byte
			}
			shard := int(userhash.Sum(user) % shards)
			file := uint32(1 + r.IntN(3))
			line := int64(b*1000 + i + 2)
			val := strings.Repeat("v", r.IntN(40))
			sl.add(shard, file, line, user, nil, [][]byte{[]byte(val)})
			k := fmt.Sprintf("%02d/%s", shard, user)
			want[k] = append(want[k], rec{file, line, val})
		}
		if err := srt.add(context.Background(), &sl); err != nil {
			t.Fatal(err)
		}
	}
	paths, last, err := srt.finish()
	if err != nil {
		t.Fatal(err)
	}
	if wantSpill && len(paths) < 8 || !wantSpill && len(paths) > 0 || last == nil {
		t.Fatalf("%d runs and in-memory rows %v; want spilled runs %v and the last rows in memory", len(paths), last != nil, wantSpill)
	}
	var runs []*run
	for _, p := range paths {
		rn, err := openRun(vfs.Default, p, shards)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, rn)
	}
	runs = append(runs, memRun(last, shards))
	runs, err = narrowRuns(context.Background(), vfs.Default, runs, 2, dir, shards)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, rn := range runs {
			rn.close()
		}
	}()
	if len(runs) > 3 || runs[len(runs)-1].mem == nil {
		t.Fatalf("%d runs after narrowing to 2 (and the in-memory one, last)", len(runs))
	}
	// Merge two shard ranges separately, as merge tasks do.
	got := map[string][]rec{}
	var order []string
	for _, tk := range []task{{0, 3}, {3, shards}} {
		var readers []*runReader
		for _, rn := range runs {
			readers = append(readers, rn.reader(tk.lo, tk.hi))
		}
		m, err := newGroupMerge(readers)
		if err != nil {
			t.Fatal(err)
		}
		for {
			ok, err := m.nextGroup()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if m.shard < tk.lo || m.shard >= tk.hi {
				t.Fatalf("shard %d in task %v", m.shard, tk)
			}
			k := fmt.Sprintf("%02d/%s", m.shard, m.user)
			order = append(order, k)
			for {
				ok, err := m.nextRow()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				fs, err := decodeValue(m.cur.val, m.user, 0, make([][]byte, 2))
				if err != nil {
					t.Fatal(err)
				}
				got[k] = append(got[k], rec{m.cur.file, m.cur.line, string(fs[1])})
			}
			if int64(len(got[k])) != m.rows {
				t.Errorf("%q: header says %d rows, %d read", k, m.rows, len(got[k]))
			}
		}
	}
	if !slices.IsSorted(order) || len(order) != len(want) {
		t.Errorf("groups out of order or missing: %d groups, want %d", len(order), len(want))
	}
	for k, w := range want {
		slices.SortFunc(w, func(a, b rec) int {
			if a.file != b.file {
				return int(a.file) - int(b.file)
			}
			return int(a.line - b.line)
		})
		if !slices.Equal(got[k], w) {
			t.Errorf("%q: got %v\nwant %v", k, got[k], w)
		}
	}
}

// TestRunWriter_WorkersSameBytes writes one run with a runWriter, and in
// pieces cut at shard boundaries on 1 to 8 workers (writeRun), and checks
// that every file has the same bytes, and that a run written in pieces
// reads back whole; its frames compressed, and stored.
func TestRunWriter_WorkersSameBytes(t *testing.T) {
	for _, compress := range []bool{true, false} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) { testRunWriterWorkers(t, compress) })
	}
}

func testRunWriterWorkers(t *testing.T, compress bool) {
	const shards = 64
	r := rand.New(rand.NewPCG(7, 8))
	type group struct {
		shard int
		user  string
		rows  [][]byte
	}
	var groups []group
	for sh := 0; sh < shards; sh += 1 + r.IntN(3) {
		for u := range 1 + r.IntN(40) {
			g := group{shard: sh, user: fmt.Sprintf("U%03d-%d", u, sh)}
			for range 1 + r.IntN(300) {
				g.rows = append(g.rows, []byte(strings.Repeat("x", r.IntN(400))))
			}
			groups = append(groups, g)
		}
	}
	fs := vfs.NewMem()
	encode := func(w *frameEncoder, gs []group) error {
		for _, g := range gs {
			if err := w.group(g.shard, []byte(g.user), int64(len(g.rows))); err != nil {
				return err
			}
			for i, v := range g.rows {
				if err := w.row(1, int64(i), v); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var rows int64
	var cuts []int // pieces of groups, at shard boundaries
	for i, g := range groups {
		if i == 0 || g.shard != groups[i-1].shard && r.IntN(2) == 0 {
			cuts = append(cuts, i)
		}
		rows += int64(len(g.rows))
	}
	cuts = append(cuts, len(groups))
	write := func(path string, workers int) []byte {
		if workers == 0 {
			w, err := newRunWriter(fs, path, shards, compress)
			if err != nil {
				t.Fatal(err)
			}
			if err := encode(&w.frameEncoder, groups); err != nil {
				t.Fatal(err)
			}
			if _, err := w.finish(); err != nil {
				t.Fatal(err)
			}
		} else {
			crashed := 0
			_, err := writeRun(fs, path, shards, workers, len(cuts)-1, rows, compress, func(k int, w *frameEncoder) error {
				return encode(w, groups[cuts[k]:cuts[k+1]])
			}, func() { crashed++ })
			if err != nil {
				t.Fatal(err)
			}
			if crashed != 1 {
				t.Errorf("%d workers: the half-way point was called %d times", workers, crashed)
			}
		}
		f, err := fs.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, _ := f.Stat()
		b := make([]byte, st.Size())
		if _, err := f.ReadAt(b, 0); err != nil {
			t.Fatal(err)
		}
		return b
	}
	want := write("run-0", 0)
	for _, workers := range []int{1, 2, 3, 8} {
		path := fmt.Sprintf("run-%d", workers)
		if got := write(path, workers); !slices.Equal(got, want) {
			t.Fatalf("%d workers: %d bytes, differ from one runWriter's %d", workers, len(got), len(want))
		}
		rn, err := openRun(fs, path, shards)
		if err != nil {
			t.Fatal(err)
		}
		rr := rn.reader(0, shards)
		for _, g := range groups {
			if !rr.nextGroup() || rr.shard != g.shard || string(rr.user) != g.user || rr.left != int64(len(g.rows)) {
				t.Fatalf("%d workers: group %s of shard %d not read back (err %v)", workers, g.user, g.shard, rr.err)
			}
			for range g.rows {
				if !rr.nextRow() {
					t.Fatalf("%d workers: %s: rows end early (err %v)", workers, g.user, rr.err)
				}
			}
		}
		rn.close()
	}
}

// TestSpillCompressed: runs are stored uncompressed only where the run
// folder's file system is known to have room to spare for them.
func TestSpillCompressed(t *testing.T) {
	dir := t.TempDir()
	u, err := vfs.Default.GetDiskUsage(dir)
	if err != nil {
		t.Skipf("no disk usage here: %v", err)
	}
	roomy := (int64(u.AvailBytes) - storeRoomMin) / storeRoomFactor / 2
	for _, tc := range []struct {
		name  string
		fs    vfs.FS
		input int64
		want  bool
	}{
		{"room to spare", vfs.Default, max(roomy, 1), roomy <= 0 || fileSizeLimited()},
		{"not room enough", vfs.Default, int64(u.AvailBytes), true},
		{"input not known", vfs.Default, 0, true},
		{"room not known (in-memory fs)", vfs.NewMem(), 1, true},
	} {
		got, why := spillCompressed(tc.fs, dir, tc.input)
		if got != tc.want {
			t.Errorf("%s: %d bytes with %d available: compressed %v, want %v", tc.name, tc.input, u.AvailBytes, got, tc.want)
		}
		if got == (why == "") {
			t.Errorf("%s: compressed %v, with the reason %q", tc.name, got, why)
		}
	}
}

// TestRunReader_badStoredFrame: a stored frame whose header's two lengths
// disagree is an error naming the run, not rows read from the wrong bytes.
func TestRunReader_badStoredFrame(t *testing.T) {
	const shards = 4
	fs := vfs.NewMem()
	w, err := newRunWriter(fs, "run", shards, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.group(1, []byte("user"), 1); err != nil {
		t.Fatal(err)
	}
	if err := w.row(1, 2, []byte("value")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.finish(); err != nil {
		t.Fatal(err)
	}
	read := func() error {
		rn, err := openRun(fs, "run", shards)
		if err != nil {
			t.Fatal(err)
		}
		defer rn.close()
		rr := rn.reader(0, shards)
		for rr.nextGroup() {
			for rr.nextRow() {
			}
		}
		return rr.err
	}
	if err := read(); err != nil {
		t.Fatalf("intact run: %v", err)
	}
	f, err := fs.OpenReadWrite("run", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	var hdr [frameHdrBytes]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		t.Fatal(err)
	}
	if hdr[3]&0x80 == 0 {
		t.Fatalf("the frame is not marked stored: % x", hdr)
	}
	hdr[4]-- // the stored length one short of the raw length
	if _, err := f.WriteAt(hdr[:], 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := read(); err == nil || !strings.Contains(err.Error(), "run run: bad stored frame at 0") {
		t.Errorf("damaged run: %v, want a bad stored frame", err)
	}
}
