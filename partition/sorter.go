package partition

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mce-engine/mce/internal/hugemem"
	"github.com/mce-engine/mce/internal/prefetch"
	"github.com/mce-engine/mce/internal/varint"
)

// An arena buffers rows until it is full, then is sorted and spilled as a
// run. A record in buf is
//
//	shard (2 B BE) | file (4 B BE) | line (8 B BE) | user | uvarint(len) | value
//
// and its entry holds the sort key as numbers (shard and the user's first
// six bytes, the user's next eight, file and line), the record's offset and
// the user's length, so that comparisons of users of up to 14 bytes (an RFC
// has 12 or 13) touch only the entries, never the buffer: sorting was a
// sixth of partition's CPU while it read the buffer.
type arena struct {
	mem     hugemem.Arena // buf's memory
	buf     []byte
	entries []entry
	// fillBuf and fillEntries are how far buf and entries are filled
	// before the arena is spilled; past them (up to their capacity) only
	// when the arena is empty, for a record that needs it.
	fillBuf, fillEntries int
	// writers counts copies into reserved room still running.
	writers sync.WaitGroup
}

type entry struct {
	pfx  uint64 // shard (16 bits), then user bytes 0-5, zero-padded
	sfx  uint64 // user bytes 6-13, zero-padded
	pos  uint64 // file<<40 | line; posMax when the line does not fit
	off  uint32
	ulen uint32
}

// entryBytes is the size of an entry.
const entryBytes = 32

// inEntry is how many bytes of a user the entry holds.
const inEntry = 14

const posMax = 1<<64 - 1

func makeEntry(shard int, file uint32, line int64, user []byte, off int) entry {
	e := entry{pfx: sortPrefix(shard, user), off: uint32(off), ulen: uint32(len(user)), pos: posMax}
	for i := 6; i < inEntry && i < len(user); i++ {
		e.sfx |= uint64(user[i]) << (56 - 8*(i-6))
	}
	if uint64(file) < 1<<24 && line >= 0 && line < 1<<40 {
		e.pos = uint64(file)<<40 | uint64(line)
	}
	return e
}

const recHdr = 14 // shard, file, line

// prefetchAhead is how many records ahead of the one being copied a spill
// or an in-memory run asks the CPU for: records are read in key order,
// which is random order in the buffer.
const prefetchAhead = 8

// maxArenaBytes keeps record offsets within uint32.
const maxArenaBytes = 3 << 30

// newArena makes an arena whose buffer comes from mem: mapped for huge
// pages outside the Go heap, because the two buffers (most of --mem) are
// touched page by page as they first fill, and 4 KiB page faults were a
// sixth of partition's time.
func newArena(bufBytes, entries, fillBuf, fillEntries int) *arena {
	a := &arena{entries: make([]entry, 0, entries), fillBuf: min(fillBuf, bufBytes), fillEntries: min(fillEntries, entries)}
	a.buf = a.mem.Alloc(bufBytes)
	return a
}

// fits reports whether n more bytes in k more records fit: up to the fill
// limits, or to the capacity in an empty arena.
func (a *arena) fits(n, k int) bool {
	maxBuf, maxEntries := a.fillBuf, a.fillEntries
	if len(a.entries) == 0 {
		maxBuf, maxEntries = cap(a.buf), cap(a.entries)
	}
	return len(a.buf)+n <= maxBuf && len(a.entries)+k <= maxEntries
}

// record returns e's file, line and value; the value aliases buf.
func (a *arena) record(e entry) (file uint32, line int64, val []byte) {
	off := int(e.off)
	q := off + recHdr + int(e.ulen)
	vl, m := binary.Uvarint(a.buf[q:])
	return binary.BigEndian.Uint32(a.buf[off+2:]), int64(binary.BigEndian.Uint64(a.buf[off+6:])), a.buf[q+m : q+m+int(vl)]
}

func (a *arena) user(e entry) []byte {
	s := int(e.off) + recHdr
	return a.buf[s : s+int(e.ulen)]
}

func (a *arena) less(x, y entry) int {
	if c := groupCmp(a, x, y); c != 0 {
		return c
	}
	return a.posCmp(x, y)
}

// posCmp orders records of one user by (file, line).
func (a *arena) posCmp(x, y entry) int {
	if x.pos != posMax && y.pos != posMax {
		return cmp.Compare(x.pos, y.pos)
	}
	// file and line: 12 bytes big-endian after the shard.
	return bytes.Compare(a.buf[x.off+2:x.off+recHdr], a.buf[y.off+2:y.off+recHdr])
}

func sortPrefix(shard int, user []byte) uint64 {
	p := uint64(shard) << 48
	for i := 0; i < 6 && i < len(user); i++ {
		p |= uint64(user[i]) << (40 - 8*i)
	}
	return p
}

// slab is one batch's records, built without a lock, then copied into the
// arena. Its entries' offsets are relative to its own buf.
type slab struct {
	buf     []byte
	entries []entry
}

func (s *slab) reset() { s.buf, s.entries = s.buf[:0], s.entries[:0] }

// add appends a record. fields excludes the user column; rawUser is the
// user field as it was in the file when it differs from user (nil else).
func (s *slab) add(shard int, file uint32, line int64, user, rawUser []byte, fields [][]byte) {
	off := len(s.buf)
	s.buf = binary.BigEndian.AppendUint16(s.buf, uint16(shard))
	s.buf = binary.BigEndian.AppendUint32(s.buf, file)
	s.buf = binary.BigEndian.AppendUint64(s.buf, uint64(line))
	s.buf = append(s.buf, user...)
	s.buf = appendValue(s.buf, rawUser, fields)
	s.entries = append(s.entries, makeEntry(shard, file, line, user, off))
}

// Row values in runs: flag | (uvarint(len) | bytes) per field. The flag
// says whether the user field as written in the file differs from the
// user key (a cp1252 user, converted to UTF-8 for the key); if so it comes
// first. The other fields follow in schema order without the user column.
func appendValue(dst, rawUser []byte, fields [][]byte) []byte {
	size := 1
	if rawUser != nil {
		size += varint.Len(uint64(len(rawUser))) + len(rawUser)
	}
	for _, f := range fields {
		size += varint.Len(uint64(len(f))) + len(f)
	}
	dst = binary.AppendUvarint(dst, uint64(size))
	if rawUser != nil {
		dst = append(dst, 1)
		dst = binary.AppendUvarint(dst, uint64(len(rawUser)))
		dst = append(dst, rawUser...)
	} else {
		dst = append(dst, 0)
	}
	for _, f := range fields {
		dst = binary.AppendUvarint(dst, uint64(len(f)))
		dst = append(dst, f...)
	}
	return dst
}

// decodeValue fills fields (one per schema column) from a run value: the
// user column gets rawUser when the value has one, else user.
func decodeValue(val, user []byte, userCol int, fields [][]byte) ([][]byte, error) {
	if len(val) == 0 {
		return nil, fmt.Errorf("empty row value")
	}
	p := val[1:]
	next := func() ([]byte, error) {
		l, n := binary.Uvarint(p)
		if n <= 0 || l > uint64(len(p)-n) {
			return nil, fmt.Errorf("bad row value")
		}
		b := p[n : n+int(l)]
		p = p[n+int(l):]
		return b, nil
	}
	u := user
	if val[0] == 1 {
		var err error
		if u, err = next(); err != nil {
			return nil, err
		}
	}
	for j := range fields {
		if j == userCol {
			fields[j] = u
			continue
		}
		f, err := next()
		if err != nil {
			return nil, err
		}
		fields[j] = f
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("row value has %d extra bytes", len(p))
	}
	return fields, nil
}

// sorter collects rows from concurrent readers into arenas and spills
// each full arena as a sorted run, in the background, while the other
// arena fills.
type sorter struct {
	fs     vfs.FS
	dir    string
	shards int
	cpus   int
	logger *slog.Logger
	crash  *crasher

	bufBytes, entryCap   int
	fillBuf, fillEntries int      // an arena's fill limits (arena's own)
	arenas               []*arena // every arena made, to release them
	scratch              []entry  // the radix sort's second array, shared by the arenas

	mu     sync.Mutex
	cur    *arena
	free   chan *arena
	spills chan *arena
	done   chan struct{}

	firstErr

	runs       []string
	spillBytes int64
	// compress says whether runs are s2-compressed (spillCompressed).
	compress bool
}

// newSorter makes a sorter with two arenas of arenaBytes each (buffer and
// entries together), spilled once fillBytes of them are filled (or when a
// record needs more of an empty one), whose runs are s2-compressed when
// compress.
func newSorter(fs vfs.FS, dir string, shards, cpus int, arenaBytes, fillBytes int64, logger *slog.Logger, crash *crasher, compress bool) *sorter {
	bufBytes, entryCap := arenaSplit(arenaBytes)
	fillBuf, fillEntries := arenaSplit(min(fillBytes, arenaBytes))
	s := &sorter{
		fs: fs, dir: dir, shards: shards, cpus: cpus, logger: logger, crash: crash,
		bufBytes: bufBytes, entryCap: entryCap, fillBuf: fillBuf, fillEntries: fillEntries, compress: compress,
		free: make(chan *arena, 2), spills: make(chan *arena, 1), done: make(chan struct{}),
	}
	go s.spiller()
	return s
}

// arenaSplit splits an arena's bytes between its buffer and its entries.
// Entries (32 B each) get a fifth: records of 128 bytes or more on average
// (an invoice row is ~165 with its header) fill the buffer before the
// entries; smaller ones just make smaller runs. The radix sort's scratch
// array, one for both arenas (one is sorted at a time), is paid for by
// each arena's buffer in halves.
func arenaSplit(arenaBytes int64) (bufBytes, entries int) {
	entries = int(arenaBytes / 5 / entryBytes)
	return int(min(arenaBytes-int64(entries)*entryBytes*3/2, maxArenaBytes)), entries
}

// getArena returns an empty arena: a new one while fewer than two exist,
// else the next one the spiller frees.
func (s *sorter) getArena(ctx context.Context) (*arena, error) {
	if len(s.arenas) < 2 {
		a := newArena(s.bufBytes, s.entryCap, s.fillBuf, s.fillEntries)
		s.arenas = append(s.arenas, a)
		return a, nil
	}
	select {
	case a := <-s.free:
		return a, nil
	case <-s.done:
		if err := s.failure(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("BUG: spiller stopped")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// add copies a slab's records into the current arena, rotating arenas as
// they fill. It blocks while both arenas are full (one being spilled).
//
// Only the reservation of room happens under the lock; the copy runs
// outside it, so that parsers copy in parallel. A spill waits for the
// copies into its arena (arena.writers). A caller never waits for an arena
// while it holds a reservation, so the spiller cannot wait on it in turn.
func (s *sorter) add(ctx context.Context, sl *slab) error {
	es := sl.entries
	for len(es) > 0 {
		a, dst, at, ents, k, err := s.reserve(ctx, sl, es)
		if err != nil {
			return err
		}
		start := int(es[0].off)
		end := len(sl.buf)
		if k < len(es) {
			end = int(es[k].off)
		}
		copy(dst, sl.buf[start:end])
		shift := uint32(at) - uint32(start)
		for i, e := range es[:k] {
			e.off += shift
			ents[i] = e
		}
		a.writers.Done()
		es = es[k:]
	}
	return nil
}

// reserve takes room in the current arena for the longest prefix of es
// that fits (rotating arenas when none does) and returns the arena, the
// bytes reserved and their offset, the entries reserved, and how many
// records they hold. The slices are taken under the lock: another add may
// extend a.buf meanwhile.
func (s *sorter) reserve(ctx context.Context, sl *slab, es []entry) (*arena, []byte, int, []entry, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failure(); err != nil {
		return nil, nil, 0, nil, 0, err
	}
	// The records of es[:k] run from es[0].off to es[k].off, or to the
	// end of the slab.
	end := func(k int) int {
		if k == len(es) {
			return len(sl.buf)
		}
		return int(es[k].off)
	}
	start := int(es[0].off)
	for {
		if s.cur == nil {
			a, err := s.getArena(ctx)
			if err != nil {
				return nil, nil, 0, nil, 0, err
			}
			s.cur = a
		}
		k := len(es)
		for k > 0 && !s.cur.fits(end(k)-start, k) {
			k /= 2
		}
		if k == 0 {
			if len(s.cur.entries) == 0 {
				return nil, nil, 0, nil, 0, fmt.Errorf("a row of %d bytes does not fit in the sort buffer; raise --mem", end(1)-start)
			}
			s.spillLocked()
			continue
		}
		a := s.cur
		n := end(k) - start
		b0, e0 := len(a.buf), len(a.entries)
		a.buf = a.buf[:b0+n]
		a.entries = a.entries[:e0+k]
		a.writers.Add(1)
		return a, a.buf[b0 : b0+n], b0, a.entries[e0 : e0+k], k, nil
	}
}

func (s *sorter) spillLocked() {
	if s.cur != nil && len(s.cur.entries) > 0 {
		s.spills <- s.cur
		s.cur = nil
	}
}

// finish waits for the spills under way and returns the runs' paths and,
// when rows are still buffered, their arena, sorted, to be merged from
// memory: the last rows are never written to disk and read back (with
// data that fits the buffer, nothing is). The caller releases it (see
// memRun) once the merge is done.
func (s *sorter) finish() ([]string, *arena, error) {
	s.mu.Lock()
	last := s.cur
	s.cur = nil
	s.mu.Unlock()
	close(s.spills)
	<-s.done
	if last != nil && len(last.entries) > 0 && s.failure() == nil {
		last.writers.Wait()
		if cap(s.scratch) < len(last.entries) {
			s.scratch = make([]entry, len(last.entries))
		}
		// NB: the sorted entries may end in the scratch array, which then
		// becomes the arena's (release drops the sorter's reference).
		last.entries = sortEntriesParallel(last, last.entries, s.scratch[:len(last.entries)], s.shards, s.cpus)
	} else {
		last = nil
	}
	s.release(last)
	return s.runs, last, s.failure()
}

// release unmaps the arenas' buffers but keep's. Only after the spiller
// and every add have stopped: partition calls finish or abort once its
// readers are done.
func (s *sorter) release(keep *arena) {
	s.cur = nil
	for _, a := range s.arenas {
		if a != keep {
			a.mem.Release()
		}
	}
	s.arenas, s.scratch = nil, nil
}

// abort stops the spiller without spilling.
func (s *sorter) abort() {
	s.mu.Lock()
	s.cur = nil
	s.mu.Unlock()
	close(s.spills)
	<-s.done
	s.release(nil)
}

func (s *sorter) spiller() {
	defer close(s.done)
	for a := range s.spills {
		a.writers.Wait()
		if s.failure() == nil {
			t0 := time.Now()
			path := filepath.Join(s.dir, fmt.Sprintf("run-%05d", len(s.runs)))
			size, err := s.spill(a, path)
			if err != nil {
				s.fail(err)
			} else {
				s.runs = append(s.runs, path)
				s.spillBytes += size
				s.logger.Debug("spilled run", "run", len(s.runs), "rows", len(a.entries), "buffer_mib", len(a.buf)>>20,
					"run_mib", size>>20, "took", time.Since(t0).Round(time.Millisecond))
			}
		}
		// Always give the arena back: a reader waiting for one then sees
		// the error instead of waiting for ever.
		a.buf, a.entries = a.buf[:0], a.entries[:0]
		s.free <- a
	}
}

// spill sorts an arena and writes it as a run: sorted on every CPU, cut
// by shard (sortEntriesParallel), then cut at shard boundaries into pieces
// that are encoded and compressed on every CPU and written in order
// (writeRun). (It sorted one piece per CPU and merged the pieces as it
// wrote, on one goroutine, and later encoded every row on one goroutine:
// either kept a partition on 16 CPUs at half of them or less.)
func (s *sorter) spill(a *arena, path string) (int64, error) {
	es := a.entries
	if cap(s.scratch) < len(es) {
		s.scratch = make([]entry, max(len(es), s.entryCap))
	}
	sorted := sortEntriesParallel(a, es, s.scratch[:len(es)], s.shards, s.cpus)
	cuts := shardCuts(sorted, spillPiecesPerCPU*s.cpus)
	return writeRun(s.fs, path, s.shards, s.cpus, len(cuts)-1, int64(len(sorted)), s.compress, func(k int, w *frameEncoder) error {
		part := sorted[cuts[k]:cuts[k+1]]
		for i := 0; i < len(part); {
			g := part[i]
			j := i + 1
			for j < len(part) && groupCmp(a, part[j], g) == 0 {
				j++
			}
			if err := w.group(int(g.pfx>>48), a.user(g), int64(j-i)); err != nil {
				return err
			}
			for r := i; r < j; r++ {
				if r+prefetchAhead < len(part) {
					prefetch.Lines(unsafe.Pointer(&a.buf[part[r+prefetchAhead].off]))
				}
				if err := w.row(a.record(part[r])); err != nil {
					return err
				}
			}
			i = j
		}
		return nil
	}, func() { s.crash.point("spill") })
}

// spillPiecesPerCPU is how many pieces per CPU a spill is encoded in.
const spillPiecesPerCPU = 4

// shardCuts cuts entries sorted by shard into about n pieces of the same
// number of entries, at shard boundaries (a shard is never cut): piece k
// is es[cuts[k]:cuts[k+1]].
func shardCuts(es []entry, n int) []int {
	cuts := []int{0}
	for k := 1; k < n; k++ {
		i := max(k*len(es)/n, cuts[len(cuts)-1])
		if i == 0 || i >= len(es) {
			continue
		}
		shard := es[i].pfx >> 48
		i += sort.Search(len(es)-i, func(j int) bool { return es[i+j].pfx>>48 != shard })
		if i < len(es) && i > cuts[len(cuts)-1] {
			cuts = append(cuts, i)
		}
	}
	return append(cuts, len(es))
}

// firstErr holds the first error set of several goroutines'.
type firstErr struct {
	mu  sync.Mutex
	err error
}

func (e *firstErr) fail(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
}

func (e *firstErr) failure() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// sortEntries sorts es by a.less, using tmp (as long as es) as scratch:
// a least-significant-digit radix sort on the entries' first key word
// (shard and the user's first six bytes), one pass per byte that is not
// the same in every entry, then a comparison sort of each run of entries
// with the same word, which is one user's rows but for rare prefix
// clashes. On partition's data it is several times faster than sorting
// with a.less alone (BenchmarkSortEntries).
func sortEntries(a *arena, es, tmp []entry) {
	if len(es) < 256 {
		slices.SortFunc(es, a.less)
		return
	}
	var counts [8][256]int
	for i := range es {
		k := es[i].pfx
		for d := range 8 {
			counts[d][byte(k>>(8*d))]++
		}
	}
	src, dst := es, tmp[:len(es)]
	for d := range 8 {
		c := &counts[d]
		if c[byte(src[0].pfx>>(8*d))] == len(src) {
			continue // every entry has this byte
		}
		sum := 0
		for b, n := range c {
			c[b] = sum
			sum += n
		}
		shift := 8 * d
		for _, e := range src {
			b := byte(e.pfx >> shift)
			dst[c[b]] = e
			c[b]++
		}
		src, dst = dst, src
	}
	if &src[0] != &es[0] {
		copy(es, src)
	}
	for i := 0; i < len(es); {
		j := i + 1
		simple := es[i].ulen <= inEntry && es[i].pos != posMax
		for j < len(es) && es[j].pfx == es[i].pfx {
			simple = simple && es[j].sfx == es[i].sfx && es[j].ulen == es[i].ulen && es[j].pos != posMax
			j++
		}
		switch {
		case j-i == 1:
		case simple: // one user's rows: by (file, line) alone
			slices.SortFunc(es[i:j], func(x, y entry) int { return cmp.Compare(x.pos, y.pos) })
		default:
			slices.SortFunc(es[i:j], a.less)
		}
		i = j
	}
}

// parallelSortMin is the fewest entries sortEntriesParallel spreads over
// several goroutines.
const parallelSortMin = 1 << 16

// sortEntriesParallel sorts es as sortEntries does, on up to cpus
// goroutines, and returns the sorted entries: es or tmp (as long as es),
// whichever holds them. It first moves the entries into tmp by shard (a
// counting sort on the key's top 16 bits), then cuts the shards into
// one range per goroutine with about as many entries each (shardCuts) and
// sorts the ranges at once, es serving as their scratch. It is what the last
// arena of a partition waits for before the merge can start: sorted on
// one CPU, the whole in-memory run was a serial step (0.26 s of 2.1 M
// rows on the benchmark's data).
func sortEntriesParallel(a *arena, es, tmp []entry, shards, cpus int) []entry {
	if cpus < 2 || len(es) < parallelSortMin {
		sortEntries(a, es, tmp)
		return es
	}
	starts := make([]int, shards+1)
	for i := range es {
		starts[es[i].pfx>>48+1]++
	}
	for s := 1; s <= shards; s++ {
		starts[s] += starts[s-1]
	}
	next := slices.Clone(starts[:shards])
	for _, e := range es {
		sh := e.pfx >> 48
		tmp[next[sh]] = e
		next[sh]++
	}
	var wg sync.WaitGroup
	cuts := shardCuts(tmp, cpus)
	for k := 0; k+1 < len(cuts); k++ {
		lo, hi := cuts[k], cuts[k+1]
		wg.Add(1)
		go func() {
			defer wg.Done()
			sortEntries(a, tmp[lo:hi], es[lo:hi])
		}()
	}
	wg.Wait()
	return tmp
}

// groupCmp orders records by (shard, user) only. Zero-padded words
// compare as the bytes do, except that a user and the same user with zero
// bytes appended tie: the shorter sorts first, as in bytes.Compare.
func groupCmp(a *arena, x, y entry) int {
	if x.pfx != y.pfx {
		return cmp.Compare(x.pfx, y.pfx)
	}
	if x.sfx != y.sfx {
		return cmp.Compare(x.sfx, y.sfx)
	}
	if x.ulen > inEntry || y.ulen > inEntry {
		return bytes.Compare(a.user(x), a.user(y))
	}
	return cmp.Compare(x.ulen, y.ulen)
}

// spillCompressed says whether the runs of a sort of about inputBytes of
// rows are s2-compressed in dir's file system: not when it has room to
// spare for them stored as they are (storeRoomFactor times inputBytes,
// which holds the runs and the store or features written beside them),
// since compressing every spilled row costs about a seventh of a
// partition's CPU; else (or when the room is not known, or a file size
// limit is set) they are, a third smaller, so that a disk with less room
// or a lower limit still holds them. why says why they are compressed.
func spillCompressed(fs vfs.FS, dir string, inputBytes int64) (compress bool, why string) {
	u, err := fs.GetDiskUsage(dir)
	switch {
	case err != nil:
		return true, fmt.Sprintf("the free room of the runs' disk is not known (%v)", err)
	case inputBytes <= 0:
		return true, "the input's size is not known"
	case fileSizeLimited():
		return true, "a file size limit (ulimit -f) is set"
	}
	if need := uint64(storeRoomFactor*inputBytes + storeRoomMin); u.AvailBytes < need {
		return true, fmt.Sprintf("the runs' disk has %d MiB free, less than the %d MiB (twice the input and 1 GiB) to store them as they are",
			u.AvailBytes>>20, need>>20)
	}
	return false, ""
}

// spillMode is spillCompressed, logged: compressed runs take more CPU,
// so a sort that compresses says so, with why, in what (its own words:
// whose rows spill), for whoever compares its times.
func spillMode(fs vfs.FS, dir string, inputBytes int64, logger *slog.Logger, what string) bool {
	compress, why := spillCompressed(fs, dir, inputBytes)
	if compress {
		logger.Info(what+" will be spilled s2-compressed", "dir", dir, "why", why)
	}
	return compress
}

const (
	// storeRoomFactor times the input and storeRoomMin is the room a
	// sort's runs are stored uncompressed in.
	storeRoomFactor = 2
	storeRoomMin    = 1 << 30
)
