package csvread

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/hugemem"
)

// chunk is a run of whole records cut from the stream by the splitter.
type chunk struct {
	buf   []byte // the block, given back to the free list when parsed
	data  []byte // the records: buf up to the cut
	seq   int64
	line  int64 // physical line of data[0]
	lines int64 // physical lines in data
	eof   bool  // the last chunk: data may end without '\n' or inside quotes
}

// rowTooLongError fails a file whose row (or open quote) passes MaxRowBytes.
type rowTooLongError struct{ limit int }

func (e rowTooLongError) Error() string {
	return "unterminated quote or row longer than " + sizeString(e.limit)
}

func (e rowTooLongError) Is(target error) bool { return target == ErrRowTooLong }

// Scan parses the rest of the file with `workers` parser goroutines and
// calls fn with each chunk's good rows. fn is called concurrently from up
// to `workers` goroutines, and batches may arrive out of file order: Seq
// numbers the chunks 0, 1, 2… in file order (every chunk gets a call, even
// one without good rows) and Line gives each row's line. b is valid only
// during the call. A non-nil error from fn stops the scan and is returned
// as it is; a cancelled ctx stops it with ctx.Err(). Errors that fail the
// file are *FileError; fn may have seen rows of a file that then fails (a
// stream found truncated at its end, too many bad rows), so a caller keeps
// what it made of a file only when Scan returns nil. Scan may be called
// once per File.
func (f *File) Scan(ctx context.Context, workers int, fn func(b *Batch) error) (Stats, error) {
	if f.osFile == nil {
		return Stats{}, fmt.Errorf("scan %s: file is closed", f.Path)
	}
	if f.scanned {
		return Stats{}, fmt.Errorf("scan %s: already scanned", f.Path)
	}
	f.scanned = true
	if workers < 1 {
		workers = 1
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		errMu    sync.Mutex
		firstErr error
	)
	setErr := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		cancel()
	}

	nbuf := workers + 2
	free := make(chan []byte, nbuf)
	chunks := make(chan chunk, workers)
	smp := &sampler{max: f.opts.SampleBadRows}
	var (
		wg         sync.WaitGroup
		splitLines int64
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(chunks)
		var err error
		splitLines, err = f.split(runCtx, chunks, free, nbuf)
		if err != nil {
			setErr(err)
		}
	}()
	counts := make([][6]int64, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[w] = f.work(runCtx, chunks, free, fn, setErr, smp)
		}()
	}
	wg.Wait()
	// Keep the buffers for the next scan in this process.
	for done := false; !done; {
		select {
		case b := <-free:
			reuse.putBuf(b)
		default:
			done = true
		}
	}

	st := Stats{Bytes: f.bytesRead.Load(), Lines: f.headerLines + splitLines, Samples: smp.list}
	for _, c := range counts {
		st.Rows += c[0]
		st.BadRows += c[1]
		st.BadValues += c[2]
		st.EmptiedValues += c[5]
		st.ZonedTimes += c[3]
		st.LocalTimes += c[4]
	}
	if firstErr != nil {
		return st, firstErr
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if share := f.opts.MaxBadRowShare; share >= 0 && st.BadRows > 0 &&
		float64(st.BadRows) > share*float64(st.Rows+st.BadRows) {
		first := ""
		for _, s := range st.Samples {
			if !errors.Is(s.Err, ErrValueEmptied) { // a bad row
				first = fmt.Sprintf("; first at line %d: %v: %q", s.Line, s.Err, s.Text)
				break
			}
		}
		return st, f.fail(0, fmt.Errorf("%w: %d of %d rows (%.2f%%, more than --max-bad-rows %.2f%%)%s",
			ErrTooManyBadRows, st.BadRows, st.Rows+st.BadRows,
			100*float64(st.BadRows)/float64(st.Rows+st.BadRows), 100*share, first))
	}
	return st, nil
}

// split is the splitter goroutine: it reads the stream into blocks, cuts
// each after its last record and sends the chunks. It returns the physical
// lines it handed out.
func (f *File) split(ctx context.Context, out chan<- chunk, free chan []byte, nbuf int) (lines int64, err error) {
	chunkBytes := f.opts.ChunkBytes
	allocated := 0
	var r io.Reader = f.src
	if f.headEOF {
		r = eofReader{}
	}
	var cur []byte
	// inHead: cur is the end of the buffer Open read the header into,
	// whose chunk hands back the whole buffer (headBuf), so that the next
	// file's Open finds it in reuse at its full size.
	inHead := false
	headBuf := f.headBuf
	if len(f.head) <= chunkBytes && cap(f.head) >= chunkBytes/2 {
		// Go on filling the buffer Open read the header into.
		cur = f.head
		inHead = true
		allocated++
	} else {
		r = io.MultiReader(bytes.NewReader(f.head), r)
		defer reuse.putBuf(headBuf) // read through once split returns
	}
	f.head, f.headBuf = nil, nil
	// bufOf is the buffer that goes back to free once cur's chunk is
	// parsed.
	bufOf := func(cur []byte) []byte {
		if inHead {
			inHead = false
			return headBuf
		}
		return cur
	}
	// get returns an empty buffer of at least minCap bytes, waiting for a
	// parser to give one back when all nbuf are in use; nil when ctx ends.
	get := func(minCap int) []byte {
		var b []byte
		select {
		case b = <-free:
		default:
			if allocated < nbuf {
				allocated++
				if b := reuse.buf(max(chunkBytes, minCap)); b != nil {
					return b
				}
				return make([]byte, 0, max(chunkBytes, minCap))
			}
			select {
			case b = <-free:
			case <-ctx.Done():
				return nil
			}
		}
		if cap(b) < minCap {
			reuse.putBuf(b)
			return make([]byte, 0, minCap)
		}
		return b[:0]
	}

	line := f.dataLine
	var seq int64
	var spans []int
	if cur == nil {
		if cur = get(chunkBytes); cur == nil {
			return 0, nil
		}
	}
	for {
		var eof bool
		cur, eof, err = readFull(r, cur)
		if err != nil {
			return lines, f.streamErr(err, line+int64(bytes.Count(cur, []byte{'\n'})))
		}
		if eof {
			if len(cur) == 0 {
				return lines, nil
			}
			n := int64(bytes.Count(cur, []byte{'\n'}))
			if cur[len(cur)-1] != '\n' {
				n++
			}
			select {
			case out <- chunk{buf: bufOf(cur), data: cur, seq: seq, line: line, lines: n, eof: true}:
				lines += n
			case <-ctx.Done():
			}
			return lines, nil
		}
		var cut int
		cut, spans = lastRecordEnd(cur, f.Delimiter, spans)
		if cut < 0 {
			// The block is one unfinished record: read on into a bigger
			// buffer, up to MaxRowBytes.
			if len(cur) > f.opts.MaxRowBytes {
				return lines, f.fail(line, rowTooLongError{f.opts.MaxRowBytes})
			}
			cur = growCap(cur, min(2*cap(cur), f.opts.MaxRowBytes+1))
			inHead = false // the head's buffer is garbage now
			continue
		}
		carry := cur[cut:]
		next := get(max(chunkBytes, len(carry)+chunkBytes/2))
		if next == nil {
			return lines, nil
		}
		next = append(next, carry...)
		data := cur[:cut]
		n := int64(bytes.Count(data, []byte{'\n'}))
		select {
		case out <- chunk{buf: bufOf(cur), data: data, seq: seq, line: line, lines: n}:
		case <-ctx.Done():
			return lines, nil
		}
		seq++
		line += n
		lines += n
		cur = next
	}
}

// work is a parser goroutine. It returns the good rows, the bad rows, the
// bad values, the times with and without a zone it saw, and the bad values
// it emptied.
func (f *File) work(ctx context.Context, chunks <-chan chunk, free chan<- []byte,
	fn func(*Batch) error, setErr func(error), smp *sampler) [6]int64 {
	var rows int64
	p := newParser(f)
	b := reuse.batch()
	b.file, b.ncols, b.user = f, f.Schema.Len(), f.Schema.User()
	defer reuse.putBatch(b)
	for c := range chunks {
		if ctx.Err() != nil {
			free <- c.buf // drain, so the splitter is never stuck
			continue
		}
		b.reset(c.seq, len(c.data), int(c.lines))
		p.parse(&c, b)
		free <- c.buf
		rows += int64(b.Len())
		if len(p.samples) > 0 {
			smp.add(p.samples)
			p.samples = p.samples[:0]
		}
		if p.failErr != nil {
			setErr(p.failErr)
			continue
		}
		if err := fn(b); err != nil {
			setErr(err)
		}
	}
	return [6]int64{rows, p.bad, p.badValues, p.zonedTimes, p.localTimes, p.emptied}
}

// sampler keeps the first bad rows of a file, in line order.
type sampler struct {
	mu   sync.Mutex
	max  int
	list []*RowError
}

func (s *sampler) add(rows []*RowError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, rows...)
	sort.Slice(s.list, func(i, j int) bool { return s.list[i].Line < s.list[j].Line })
	if len(s.list) > s.max {
		s.list = s.list[:s.max]
	}
}

// Seq returns the chunk's index in file order, from 0.
func (b *Batch) Seq() int64 { return b.seq }

// Len returns the number of good rows in the batch.
func (b *Batch) Len() int { return len(b.lines) }

// Field returns row i's field for schema column j, as it was in the file.
// It aliases the batch: valid only during the call to Scan's fn.
func (b *Batch) Field(i, j int) []byte {
	k := i*(b.ncols+1) + j
	var s uint32
	if k > 0 {
		s = b.ends[k-1]
	}
	e := b.ends[k]
	return b.buf[s:e:e]
}

// User returns row i's user field as UTF-8: the field itself when it is
// ASCII or UTF-8, else its conversion from cp1252. The same user has the
// same User bytes in files of different encodings.
func (b *Batch) User(i int) []byte {
	k := i*(b.ncols+1) + b.ncols
	s, e := b.ends[k-1], b.ends[k]
	if s == e {
		return b.Field(i, b.user)
	}
	return b.buf[s:e:e]
}

// RowSpan returns row i's fields back to back, in schema order, as they
// were in the file, and sets lens[j] to the length of field j (lens must
// hold Schema.Len() entries). It aliases the batch, like Field.
func (b *Batch) RowSpan(i int, lens []uint32) []byte {
	k := i * (b.ncols + 1)
	var s uint32
	if k > 0 {
		s = b.ends[k-1]
	}
	start := s
	for j := range b.ncols {
		e := b.ends[k+j]
		lens[j] = e - s
		s = e
	}
	return b.buf[start:s:s]
}

// Line returns the 1-based physical line where row i starts.
func (b *Batch) Line(i int) int64 { return b.lines[i] }

// Row fills r with row i, reusing the capacity of r.Fields: the fields as
// they were in the file (the user field too; Row.String decodes it) and the
// file's encoding and schema; the fields of the columns Options.Reads
// leaves out are nil. r's slices alias the batch.
func (b *Batch) Row(i int, r *feature.Row) {
	n := b.ncols
	if cap(r.Fields) < n {
		r.Fields = make([][]byte, n)
	}
	fields := r.Fields[:n]
	k := i * (n + 1)
	var s uint32
	if k > 0 {
		s = b.ends[k-1]
	}
	if f := b.file; f.skip != nil {
		// Only the columns read: the skipped ones are empty in the batch,
		// and a row refilled for the next one mostly has them nil already
		// (writing them cost mce run 1.2% of its CPU, grouping 3.9%).
		ends := b.ends[k : k+n]
		for _, j := range f.readCols {
			e := ends[j]
			if j > 0 {
				s = ends[j-1]
			}
			fields[j] = b.buf[s:e:e]
		}
		for _, j := range f.skipCols {
			if fields[j] != nil {
				fields[j] = nil
			}
		}
	} else {
		// Field(i, j) for every j, walking the row's ends once.
		for j, e := range b.ends[k : k+n] {
			fields[j] = b.buf[s:e:e]
			s = e
		}
	}
	r.Fields = fields
	r.Encoding = b.file.Encoding
	r.Schema = b.file.Schema
}

// File returns the file the batch comes from.
func (b *Batch) File() *File { return b.file }

// reset empties the batch for a chunk of dataLen bytes and at most rows
// rows, making room for them (with some to spare, as chunks differ a
// little in size) so that appends do not reallocate.
func (b *Batch) reset(seq int64, dataLen, rows int) {
	b.seq = seq
	if n := dataLen + dataLen/16; cap(b.buf) < n {
		b.buf = make([]byte, 0, n+n/8)
	}
	if n := rows * (b.ncols + 1); cap(b.ends) < n {
		b.ends = make([]uint32, 0, n+n/8)
	}
	if cap(b.lines) < rows {
		b.lines = make([]int64, 0, rows+rows/8)
	}
	b.buf, b.ends, b.lines = b.buf[:0], b.ends[:0], b.lines[:0]
}

// eofReader is an exhausted stream.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// reuse keeps the chunk buffers and batches of finished scans for the next
// scan in this process. A cluster reads file after file: from the Go heap,
// every file's buffers would be new pages, each a page fault when first
// written (a tenth of a cluster's time on a 2-core VM). Buffers of
// hugemem.MiB's size (the default ChunkBytes) come from it, outside the
// heap; reuse keeps those of other sizes.
var reuse bufReuse

// bufReuse is a bounded free list of chunk buffers and batches.
type bufReuse struct {
	mu      sync.Mutex
	bufs    [][]byte
	batches []*Batch
}

// maxReused bounds what bufReuse keeps: about what one scan on every CPU
// holds.
func maxReused() int { return 2*runtime.GOMAXPROCS(0) + 4 }

// buf returns a kept buffer of minCap to 2·minCap bytes, emptied, or nil
// (a much bigger one would change how the file is cut into chunks).
func (r *bufReuse) buf(minCap int) []byte {
	if n := hugemem.MiB.Size(); minCap <= n && n <= 2*minCap {
		return hugemem.MiB.Get()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.bufs) - 1; i >= 0; i-- {
		if b := r.bufs[i]; cap(b) >= minCap && cap(b) <= 2*minCap {
			r.bufs = slices.Delete(r.bufs, i, i+1)
			return b[:0]
		}
	}
	return nil
}

func (r *bufReuse) putBuf(b []byte) {
	if cap(b) == 0 || hugemem.MiB.Put(b) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bufs) >= maxReused() {
		r.bufs = slices.Delete(r.bufs, 0, 1) // the oldest goes
	}
	r.bufs = append(r.bufs, b[:0])
}

// batch returns a kept batch (with its buffers) or a new one.
func (r *bufReuse) batch() *Batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.batches); n > 0 {
		b := r.batches[n-1]
		r.batches = r.batches[:n-1]
		return b
	}
	return &Batch{}
}

func (r *bufReuse) putBatch(b *Batch) {
	b.file = nil
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.batches) < maxReused() {
		r.batches = append(r.batches, b)
	}
}
