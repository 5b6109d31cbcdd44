package partition

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/klauspost/compress/s2"

	"github.com/mce-engine/mce/internal/ordered"
	"github.com/mce-engine/mce/internal/prefetch"
)

// A run is a file of rows sorted by (shard, user, file, line), written by a
// spill and read back by the merge, shard range by shard range:
//
//	run    = frame* | index | rows (u64) | magic "MCERUN01"
//	frame  = rawLen (u32) | compLen (u32) | s2(raw)
//	       | rawLen|stored (u32) | rawLen (u32) | raw
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
	// storedFrame in a frame's rawLen marks its bytes as stored, not
	// compressed (a row is at most 64 MiB, far below it).
	storedFrame = 1 << 31
)

// packFrame returns how a frame of raw is written: s2-compressed into
// buf, or (stored) raw itself, and the header's rawLen field.
func packFrame(buf, raw []byte, compress bool) (body []byte, rawField int) {
	if !compress {
		return raw, len(raw) | storedFrame
	}
	return s2.Encode(buf, raw), len(raw)
}

// frameEncoder cuts records into a run's frames: a frame holds records of
// one shard, never a split one, up to frameRawBytes (more for one big
// record). It hands each whole frame to emit, which must be done with raw
// when it returns. A run's frames depend on each shard's records alone,
// so shards can be encoded apart and their frames written in order
// (writeRun).
type frameEncoder struct {
	raw   []byte
	shard int // the shard of the last group; -1: none yet
	first int // the shard whose first frame the next frame is (-1: none)
	rows  int64
	emit  func(first int, raw []byte) error
}

func newFrameEncoder(emit func(first int, raw []byte) error) frameEncoder {
	return frameEncoder{shard: -1, first: -1, emit: emit}
}

func (e *frameEncoder) need(n int) error {
	if len(e.raw) > 0 && len(e.raw)+n > frameRawBytes {
		return e.flushFrame()
	}
	return nil
}

func (e *frameEncoder) flushFrame() error {
	if len(e.raw) == 0 {
		return nil
	}
	err := e.emit(e.first, e.raw)
	e.first, e.raw = -1, e.raw[:0]
	return err
}

// group starts a user's rows; n is how many rows follow.
func (e *frameEncoder) group(shard int, user []byte, n int64) error {
	if shard != e.shard {
		if err := e.flushFrame(); err != nil {
			return err
		}
		if shard < e.shard {
			return fmt.Errorf("BUG: run shard %d after %d", shard, e.shard)
		}
		e.shard = shard
		e.first = shard
	}
	if err := e.need(3*binary.MaxVarintLen64 + len(user)); err != nil {
		return err
	}
	e.raw = binary.AppendUvarint(e.raw, uint64(shard))
	e.raw = binary.AppendUvarint(e.raw, uint64(len(user)))
	e.raw = append(e.raw, user...)
	e.raw = binary.AppendUvarint(e.raw, uint64(n))
	return nil
}

func (e *frameEncoder) row(file uint32, line int64, val []byte) error {
	if err := e.need(3*binary.MaxVarintLen64 + len(val)); err != nil {
		return err
	}
	e.raw = binary.AppendUvarint(e.raw, uint64(file))
	e.raw = binary.AppendUvarint(e.raw, uint64(line))
	e.raw = binary.AppendUvarint(e.raw, uint64(len(val)))
	e.raw = append(e.raw, val...)
	e.rows++
	return nil
}

// runWriter writes one run, frame by frame as its frameEncoder cuts them,
// compressed or stored. It is not safe for concurrent use.
type runWriter struct {
	frameEncoder
	f     vfs.File
	w     *bufio.Writer
	path  string
	off   int64
	index []int64
	comp  []byte
}

// newRunWriter creates a run at path, its frames s2-compressed or, when
// not compress, stored.
func newRunWriter(fs vfs.FS, path string, shards int, compress bool) (*runWriter, error) {
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("create run %s: %w", path, err)
	}
	w := &runWriter{f: f, w: bufio.NewWriterSize(f, 1<<20), path: path, index: make([]int64, shards+1)}
	for i := range w.index {
		w.index[i] = -1
	}
	w.frameEncoder = newFrameEncoder(func(first int, raw []byte) error {
		body, rawField := packFrame(w.comp[:cap(w.comp)], raw, compress)
		if compress {
			w.comp = body
		}
		return w.writeFrame(first, rawField, body)
	})
	return w, nil
}

// writeRun writes a run at path whose records are cut into pieces at
// shard boundaries: encode(k, e) puts piece k's records into e, and the
// pieces are encoded and compressed on workers goroutines and written in
// order (ordered.Do); stored instead when not compress. The file's bytes
// are those of one runWriter given every record (s2 is deterministic).
// crashHalf is called once half of rows (the run's) are written.
func writeRun(fs vfs.FS, path string, shards, workers, pieces int, rows int64, compress bool,
	encode func(k int, e *frameEncoder) error, crashHalf func()) (int64, error) {
	w, err := newRunWriter(fs, path, shards, compress)
	if err != nil {
		return 0, err
	}
	type frame struct {
		first, rawField int
		body            []byte
	}
	type piece struct {
		frames []frame
		rows   int64
	}
	half := false
	err = ordered.Do(workers, pieces, func(k int) (piece, error) {
		var pc piece
		e := newFrameEncoder(func(first int, raw []byte) error {
			var f frame
			f.body, f.rawField = packFrame(nil, raw, compress)
			if !compress {
				f.body = slices.Clone(raw) // the encoder reuses raw
			}
			f.first = first
			pc.frames = append(pc.frames, f)
			return nil
		})
		err := encode(k, &e)
		if err == nil {
			err = e.flushFrame()
		}
		pc.rows = e.rows
		return pc, err
	}, func(_ int, pc piece) error {
		for _, f := range pc.frames {
			if err := w.writeFrame(f.first, f.rawField, f.body); err != nil {
				return err
			}
		}
		w.rows += pc.rows
		if !half && w.rows >= rows/2 {
			half = true
			crashHalf()
		}
		return nil
	})
	if err != nil {
		w.abort()
		return 0, err
	}
	return w.finish()
}

// abort stops a run that will not be finished.
func (w *runWriter) abort() { w.f.Close() }

// writeFrame writes one frame, body (compressed or stored, as rawField, the
// header's first field, says), the first of shard first (-1: of none).
func (w *runWriter) writeFrame(first, rawField int, body []byte) error {
	if first >= 0 {
		w.index[first] = w.off
	}
	var hdr [frameHdrBytes]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(rawField))
	binary.LittleEndian.PutUint32(hdr[4:], uint32(len(body)))
	if _, err := w.w.Write(hdr[:]); err != nil {
		return fmt.Errorf("write run %s: %w", w.path, err)
	}
	if _, err := w.w.Write(body); err != nil {
		return fmt.Errorf("write run %s: %w", w.path, err)
	}
	w.off += int64(frameHdrBytes + len(body))
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
	stored := rawLen&storedFrame != 0
	rawLen &^= storedFrame
	if int64(compLen) > rr.end-rr.pos {
		rr.err = fmt.Errorf("run %s: frame at %d overruns its range", rr.r.path, rr.pos)
		return false
	}
	if stored {
		if compLen != rawLen {
			rr.err = fmt.Errorf("run %s: bad stored frame at %d: %d bytes for %d", rr.r.path, rr.pos, compLen, rawLen)
			return false
		}
		// Read straight into the frame buffer.
		if cap(rr.frame) < rawLen {
			rr.frame = make([]byte, rawLen)
		}
		rr.frame = rr.frame[:rawLen]
		n, err := rr.r.f.ReadAt(rr.frame, rr.pos+frameHdrBytes)
		if n < rawLen {
			rr.frame = rr.frame[:0]
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			rr.err = fmt.Errorf("read run %s: %w", rr.r.path, err)
			return false
		}
		rr.p = 0
		rr.pos += int64(frameHdrBytes + compLen)
		return true
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
