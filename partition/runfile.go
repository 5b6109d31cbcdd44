package partition

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/klauspost/compress/s2"

	"github.com/mce-engine/mce/internal/prefetch"
)

// A run is a file of rows sorted by (shard, user, file, line), written by a
// spill and read back by the merge, shard range by shard range:
//
//	run    = frame* | index | rows (u64) | magic "MCERUN01"
//	frame  = rawLen (u32) | compLen (u32) | s2(raw)
//	index  = (shards+1) × u64: the offset of the first frame of each shard
//	         (of the next shard with rows when a shard has none), then the
//	         end of the frames
//	raw    = record*, never split across frames; a frame holds one shard
//	record = group | row
//	group  = uvarint(shard) | uvarint(len) | user | uvarint(rows)   then that many rows
//	row    = uvarint(file) | uvarint(line) | uvarint(len) | value
//
// The group header carries the user's row count in the run, so the merge
// knows a user's total rows (the sum over runs) before it writes the
// user's first block, and can decide there whether the user is heavy.
const (
	runMagic      = "MCERUN01"
	frameRawBytes = 64 << 10
	frameHdrBytes = 8
)

// runWriter writes one run. It is not safe for concurrent use.
type runWriter struct {
	f     vfs.File
	w     *bufio.Writer
	path  string
	off   int64
	index []int64
	shard int
	raw   []byte
	comp  []byte
	rows  int64

	// pipe, when the run is written with several workers, compresses the
	// frames on them and writes them in order; nil: each frame is
	// compressed and written by flushFrame.
	pipe *framePipe
	// first is the shard whose first frame the next frame is (-1: none):
	// with a pipe, a shard's offset is known only when its frame is
	// written.
	first int
}

// newRunWriter creates a run at path. With workers > 1 its frames are
// compressed on that many goroutines while the caller fills the next ones
// (the file's bytes are the same: s2 is deterministic); its frames in
// flight are then at most 2·workers (64 KiB each, and their compressed
// copies).
func newRunWriter(fs vfs.FS, path string, shards, workers int) (*runWriter, error) {
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("create run %s: %w", path, err)
	}
	w := &runWriter{f: f, w: bufio.NewWriterSize(f, 1<<20), path: path, index: make([]int64, shards+1), shard: -1, first: -1}
	for i := range w.index {
		w.index[i] = -1
	}
	if workers > 1 {
		w.pipe = newFramePipe(w, workers)
	}
	return w, nil
}

// framePipe is a runWriter's frames in flight: flushFrame hands each to
// work (any compressor) and to order (the writer, which writes them in
// the order they came as each is ready).
type framePipe struct {
	free     chan *pipeFrame // frames not in flight
	work     chan *pipeFrame
	order    chan *pipeFrame
	wg       sync.WaitGroup // the compressors and the writer
	firstErr                // the writer's
}

type pipeFrame struct {
	raw, comp []byte
	first     int           // the shard whose first frame this is, or -1
	ready     chan struct{} // compressed
}

func newFramePipe(w *runWriter, workers int) *framePipe {
	n := 2 * workers
	p := &framePipe{free: make(chan *pipeFrame, n), work: make(chan *pipeFrame, n), order: make(chan *pipeFrame, n)}
	for range n {
		p.free <- &pipeFrame{ready: make(chan struct{}, 1)}
	}
	p.wg.Add(workers + 1)
	for range workers {
		go func() {
			defer p.wg.Done()
			for f := range p.work {
				f.comp = s2.Encode(f.comp[:cap(f.comp)], f.raw)
				f.ready <- struct{}{}
			}
		}()
	}
	go func() {
		defer p.wg.Done()
		for f := range p.order {
			<-f.ready
			if p.failure() == nil {
				if f.first >= 0 {
					w.index[f.first] = w.off
				}
				if err := w.writeFrame(len(f.raw), f.comp); err != nil {
					p.fail(err)
				}
			}
			p.free <- f
		}
	}()
	return p
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

// close waits for every frame handed to the pipe to be written and
// returns the writer's first error.
func (p *framePipe) close() error {
	close(p.work)
	close(p.order)
	p.wg.Wait()
	return p.failure()
}

// abort stops a run that will not be finished: its pipe, and its file.
func (w *runWriter) abort() {
	if w.pipe != nil {
		w.pipe.close()
		w.pipe = nil
	}
	w.f.Close()
}

func (w *runWriter) need(n int) error {
	if len(w.raw) > 0 && len(w.raw)+n > frameRawBytes {
		return w.flushFrame()
	}
	return nil
}

func (w *runWriter) flushFrame() error {
	if len(w.raw) == 0 {
		return nil
	}
	if p := w.pipe; p != nil {
		f := <-p.free
		if err := p.failure(); err != nil {
			p.free <- f
			return err
		}
		f.raw, w.raw = w.raw, f.raw[:0]
		f.first, w.first = w.first, -1
		p.order <- f
		p.work <- f
		return nil
	}
	if w.first >= 0 {
		w.index[w.first], w.first = w.off, -1
	}
	w.comp = s2.Encode(w.comp[:cap(w.comp)], w.raw)
	rawLen := len(w.raw)
	w.raw = w.raw[:0]
	return w.writeFrame(rawLen, w.comp)
}

// writeFrame writes one compressed frame of rawLen bytes.
func (w *runWriter) writeFrame(rawLen int, comp []byte) error {
	var hdr [frameHdrBytes]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(rawLen))
	binary.LittleEndian.PutUint32(hdr[4:], uint32(len(comp)))
	if _, err := w.w.Write(hdr[:]); err != nil {
		return fmt.Errorf("write run %s: %w", w.path, err)
	}
	if _, err := w.w.Write(comp); err != nil {
		return fmt.Errorf("write run %s: %w", w.path, err)
	}
	w.off += int64(frameHdrBytes + len(comp))
	return nil
}

// group starts a user's rows; n is how many rows follow.
func (w *runWriter) group(shard int, user []byte, n int64) error {
	if shard != w.shard {
		if err := w.flushFrame(); err != nil {
			return err
		}
		if shard < w.shard {
			return fmt.Errorf("BUG: run shard %d after %d", shard, w.shard)
		}
		w.shard = shard
		w.first = shard
	}
	if err := w.need(3*binary.MaxVarintLen64 + len(user)); err != nil {
		return err
	}
	w.raw = binary.AppendUvarint(w.raw, uint64(shard))
	w.raw = binary.AppendUvarint(w.raw, uint64(len(user)))
	w.raw = append(w.raw, user...)
	w.raw = binary.AppendUvarint(w.raw, uint64(n))
	return nil
}

func (w *runWriter) row(file uint32, line int64, val []byte) error {
	if err := w.need(3*binary.MaxVarintLen64 + len(val)); err != nil {
		return err
	}
	w.raw = binary.AppendUvarint(w.raw, uint64(file))
	w.raw = binary.AppendUvarint(w.raw, uint64(line))
	w.raw = binary.AppendUvarint(w.raw, uint64(len(val)))
	w.raw = append(w.raw, val...)
	w.rows++
	return nil
}

// finish writes the index and closes the file. Runs are scratch: they are
// not synced (a crash discards them all).
func (w *runWriter) finish() (size int64, err error) {
	defer func() {
		if err != nil {
			w.abort()
		}
	}()
	if err := w.flushFrame(); err != nil {
		return 0, err
	}
	if p := w.pipe; p != nil {
		w.pipe = nil
		if err := p.close(); err != nil {
			return 0, err
		}
	}
	n := len(w.index) - 1
	w.index[n] = w.off
	for s := n - 1; s >= 0; s-- {
		if w.index[s] < 0 {
			w.index[s] = w.index[s+1]
		}
	}
	tail := make([]byte, 0, (n+1)*8+16)
	for _, o := range w.index {
		tail = binary.LittleEndian.AppendUint64(tail, uint64(o))
	}
	tail = binary.LittleEndian.AppendUint64(tail, uint64(w.rows))
	tail = append(tail, runMagic...)
	if _, err := w.w.Write(tail); err != nil {
		return 0, fmt.Errorf("write run %s: %w", w.path, err)
	}
	if err := w.w.Flush(); err != nil {
		return 0, fmt.Errorf("write run %s: %w", w.path, err)
	}
	if err := w.f.Close(); err != nil {
		return 0, fmt.Errorf("close run %s: %w", w.path, err)
	}
	return w.off + int64(len(tail)), nil
}

// run is a finished run opened for reading; its file is shared by the
// readers of every shard range (ReadAt is safe for concurrent use).
type run struct {
	path  string
	f     vfs.File
	index []int64
	rows  int64

	// An in-memory run (memRun) has no file: its rows are a sorted arena,
	// read in place (memGroup, memRow), and at[s] is the first entry of
	// shard s (at[shards] the end). index then weighs the records, for
	// planning.
	mem *arena
	at  []int
}

// memRun makes a run of a sorted arena. Closing it releases the arena.
// Its byte index, which only weighs shard ranges against each other,
// counts every record at the arena's mean size: reading each record's size
// would be a random access per row.
func memRun(a *arena, shards int) *run {
	r := &run{path: "in-memory run", mem: a, index: make([]int64, shards+1), at: make([]int, shards+1), rows: int64(len(a.entries))}
	es := a.entries
	mean := int64(len(a.buf)) / max(int64(len(es)), 1)
	i := 0
	for s := 0; s <= shards; s++ {
		for i < len(es) && int(es[i].pfx>>48) < s {
			i++
		}
		r.at[s], r.index[s] = i, int64(i)*mean
	}
	return r
}

func openRun(fs vfs.FS, path string, shards int) (*run, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open run %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open run %s: %w", path, err)
	}
	tailLen := int64((shards+1)*8 + 16)
	if st.Size() < tailLen {
		f.Close()
		return nil, fmt.Errorf("run %s: truncated", path)
	}
	tail := make([]byte, tailLen)
	if _, err := f.ReadAt(tail, st.Size()-tailLen); err != nil {
		f.Close()
		return nil, fmt.Errorf("read run %s: %w", path, err)
	}
	if string(tail[len(tail)-8:]) != runMagic {
		f.Close()
		return nil, fmt.Errorf("run %s: bad magic", path)
	}
	r := &run{path: path, f: f, index: make([]int64, shards+1)}
	for i := range r.index {
		r.index[i] = int64(binary.LittleEndian.Uint64(tail[i*8:]))
	}
	r.rows = int64(binary.LittleEndian.Uint64(tail[(shards+1)*8:]))
	return r, nil
}

func (r *run) close() error {
	if r.f == nil {
		if r.mem != nil {
			r.mem.mem.Release()
			r.mem = nil
		}
		return nil
	}
	return r.f.Close()
}

// bytesIn returns the compressed bytes of shards [lo, hi).
func (r *run) bytesIn(lo, hi int) int64 { return r.index[hi] - r.index[lo] }

// runReader reads the records of one shard range of a run.
type runReader struct {
	r        *run
	pos, end int64
	frame    []byte
	comp     []byte
	p        int
	hdr      [frameHdrBytes]byte
	err      error

	// The current group and row.
	shard int
	user  []byte
	left  int64 // rows of the group not yet read
	file  uint32
	line  int64
	val   []byte
}

func (r *run) reader(lo, hi int) *runReader {
	if r.mem != nil {
		return &runReader{r: r, pos: int64(r.at[lo]), end: int64(r.at[hi])}
	}
	return &runReader{r: r, pos: r.index[lo], end: r.index[hi]}
}

// fill makes sure unread bytes are in the frame buffer; false at the end
// of the range or on error.
func (rr *runReader) fill() bool {
	if rr.p < len(rr.frame) {
		return true
	}
	if rr.pos >= rr.end || rr.err != nil {
		return false
	}
	if _, err := rr.r.f.ReadAt(rr.hdr[:], rr.pos); err != nil {
		rr.err = fmt.Errorf("read run %s: %w", rr.r.path, err)
		return false
	}
	rawLen := int(binary.LittleEndian.Uint32(rr.hdr[:]))
	compLen := int(binary.LittleEndian.Uint32(rr.hdr[4:]))
	if int64(compLen) > rr.end-rr.pos {
		rr.err = fmt.Errorf("run %s: frame at %d overruns its range", rr.r.path, rr.pos)
		return false
	}
	if cap(rr.comp) < compLen {
		rr.comp = make([]byte, compLen)
	}
	rr.comp = rr.comp[:compLen]
	if _, err := rr.r.f.ReadAt(rr.comp, rr.pos+frameHdrBytes); err != nil && !errors.Is(err, io.EOF) {
		rr.err = fmt.Errorf("read run %s: %w", rr.r.path, err)
		return false
	}
	if cap(rr.frame) < rawLen {
		rr.frame = make([]byte, rawLen)
	}
	out, err := s2.Decode(rr.frame[:cap(rr.frame)], rr.comp)
	if err != nil || len(out) != rawLen {
		rr.err = fmt.Errorf("run %s: bad frame at %d: %v", rr.r.path, rr.pos, err)
		return false
	}
	rr.frame = out
	rr.p = 0
	rr.pos += int64(frameHdrBytes + compLen)
	return true
}

func (rr *runReader) uvarint() uint64 {
	v, n := binary.Uvarint(rr.frame[rr.p:])
	if n <= 0 {
		if rr.err == nil {
			rr.err = fmt.Errorf("run %s: bad record near %d", rr.r.path, rr.pos)
		}
		return 0
	}
	rr.p += n
	return v
}

func (rr *runReader) bytes(n uint64) []byte {
	if n > uint64(len(rr.frame)-rr.p) {
		if rr.err == nil {
			rr.err = fmt.Errorf("run %s: record overruns its frame near %d", rr.r.path, rr.pos)
		}
		return nil
	}
	b := rr.frame[rr.p : rr.p+int(n)]
	rr.p += int(n)
	return b
}

// nextGroup reads the next group header; false at the end (check err).
// The user aliases the frame: valid until the reader moves on.
func (rr *runReader) nextGroup() bool {
	if rr.left != 0 {
		rr.err = fmt.Errorf("BUG: run %s: next group with %d rows left", rr.r.path, rr.left)
		return false
	}
	if rr.r.mem != nil {
		return rr.memGroup()
	}
	if !rr.fill() {
		return false
	}
	rr.shard = int(rr.uvarint())
	rr.user = rr.bytes(rr.uvarint())
	rr.left = int64(rr.uvarint())
	return rr.err == nil
}

// nextRow reads the group's next row; false when the group has no more.
func (rr *runReader) nextRow() bool {
	if rr.r.mem != nil {
		return rr.memRow()
	}
	if rr.left == 0 || !rr.fill() {
		if rr.left != 0 && rr.err == nil {
			rr.err = fmt.Errorf("run %s: group of %q ends early", rr.r.path, rr.user)
		}
		return false
	}
	rr.left--
	rr.file = uint32(rr.uvarint())
	rr.line = int64(rr.uvarint())
	rr.val = rr.bytes(rr.uvarint())
	return rr.err == nil
}

// memGroup is nextGroup for an in-memory run: pos and end are entries,
// and the user aliases the arena.
func (rr *runReader) memGroup() bool {
	if rr.pos >= rr.end {
		return false
	}
	a, es := rr.r.mem, rr.r.mem.entries
	e := es[rr.pos]
	n := rr.pos + 1
	for n < rr.end && groupCmp(a, es[n], e) == 0 {
		n++
	}
	rr.shard, rr.user, rr.left = int(e.pfx>>48), a.user(e), n-rr.pos
	return true
}

// memRow is nextRow for an in-memory run; the value aliases the arena.
func (rr *runReader) memRow() bool {
	if rr.left == 0 {
		return false
	}
	a, es := rr.r.mem, rr.r.mem.entries
	if k := rr.pos + prefetchAhead; k < rr.end {
		prefetch.Lines(unsafe.Pointer(&a.buf[es[k].off]))
	}
	rr.file, rr.line, rr.val = a.record(es[rr.pos])
	rr.left--
	rr.pos++
	return true
}
