package reduce

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/internal/keyruns"
)

// A part file is what one first-phase task (a range of shards, or heavy
// users) leaves for the merges: for every output section (an input file,
// or the one section of --across-files) some sorted runs of features
// lines, and the section's counters and failures.
//
//	part   = segment* | footer JSON | uint64 LE len(footer) | partMagic
//	segment = record*             (up to segmentBytes; a run is a list of
//	                               segments, in order)
//	record  = uvarint len(key) | key | uvarint len(line) | line
//
// key is the user key as it sorts (raw bytes); line is the CSV line as the
// features file holds it (quoted where needed, ending in '\n').
const partMagic = "MCEPART1"

// segmentBytes is how many bytes of one section's lines a worker buffers
// before writing them out: memory is sections × segmentBytes per worker,
// whatever the number of users.
const segmentBytes = 32 << 10

// partBufferBytes is the write buffer of a part file.
const partBufferBytes = 1 << 20

// partFooter describes a part file.
type partFooter struct {
	Sections int `json:"sections"`
	// LocalLines are the sections whose lines have their times' "Z" left
	// out (taskArgs.LocalLines). A part file of an older mce has none:
	// its times all end in "Z".
	LocalLines []int          `json:"local_lines,omitempty"`
	Runs       []partRun      `json:"runs"`
	Stats      []sectionStats `json:"stats"`
	Failures   []partFailure  `json:"failures,omitempty"`
	// Sum is the xxhash64 of the segments (every byte before the footer),
	// in hex: a part file is not synced (output.CreateScratch), and
	// --resume checks it (partFile.check) before it trusts it. A part
	// file of an older mce, synced, has none.
	Sum string `json:"sum,omitempty"`
}

// partRun is one sorted run of one section: its segments, in order.
type partRun struct {
	Section int        `json:"section"`
	Segs    [][2]int64 `json:"segs"` // offset, length
}

// sectionStats counts one section's work.
type sectionStats struct {
	Rows    int64 `json:"rows"`    // rows read
	Dropped int64 `json:"dropped"` // rows Map dropped
	Users   int64 `json:"users"`   // features lines
	Bytes   int64 `json:"bytes"`   // field bytes read
}

func (s sectionStats) minus(o sectionStats) sectionStats {
	return sectionStats{Rows: s.Rows - o.Rows, Dropped: s.Dropped - o.Dropped, Users: s.Users - o.Users, Bytes: s.Bytes - o.Bytes}
}

func (s *sectionStats) add(o sectionStats) {
	s.Rows += o.Rows
	s.Dropped += o.Dropped
	s.Users += o.Users
	s.Bytes += o.Bytes
}

// partFailure is a user whose features failed: its section's file fails,
// as in `mce run`.
type partFailure struct {
	Section int    `json:"section"`
	User    string `json:"user"`
	Line    int64  `json:"line,omitempty"`
	Message string `json:"message"`
	Stack   string `json:"stack,omitempty"`
}

// partWriter writes a part file; its methods are safe for concurrent use.
type partWriter struct {
	mu  sync.Mutex
	out *output.File
	// w buffers the segments: a worker writes one per shard and section
	// (12,288 segments of 2.5 KiB for 48 files at 300 MB), a write(2)
	// each when they went to out one by one.
	w      *bufio.Writer
	off    int64
	footer partFooter
	failed []atomic.Bool  // by section
	sum    *xxhash.Digest // of the segments written
}

func newPartWriter(out *output.File, sections int) *partWriter {
	return &partWriter{
		out:    out,
		w:      bufio.NewWriterSize(out, partBufferBytes),
		footer: partFooter{Sections: sections, Stats: make([]sectionStats, sections)},
		failed: make([]atomic.Bool, sections),
		sum:    xxhash.New(),
	}
}

// newRun starts a run of section sec and returns its number.
func (p *partWriter) newRun(sec int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.footer.Runs = append(p.footer.Runs, partRun{Section: sec})
	return len(p.footer.Runs) - 1
}

// appendSegment writes data as the next segment of run.
func (p *partWriter) appendSegment(run int, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.w.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", p.out.Name(), err)
	}
	p.sum.Write(data)
	r := &p.footer.Runs[run]
	r.Segs = append(r.Segs, [2]int64{p.off, int64(len(data))})
	p.off += int64(len(data))
	return nil
}

// fail records the first failure of a section; later ones are dropped
// (the file fails on its first bad user, as in `mce run`).
func (p *partWriter) fail(f partFailure) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed[f.Section].Swap(true) {
		return
	}
	p.footer.Failures = append(p.footer.Failures, f)
}

// hasFailed reports whether section sec has failed in this part.
func (p *partWriter) hasFailed(sec int) bool { return p.failed[sec].Load() }

func (p *partWriter) addStats(st []sectionStats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range st {
		p.footer.Stats[i].add(st[i])
	}
}

// finish writes the footer and publishes the file (unsynced: see
// partFooter.Sum).
func (p *partWriter) finish() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.footer.Sum = strconv.FormatUint(p.sum.Sum64(), 16)
	b, err := json.Marshal(&p.footer)
	if err != nil {
		return fmt.Errorf("encode part footer: %w", err)
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(len(b)))
	b = append(b, partMagic...)
	if _, err := p.w.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", p.out.Name(), err)
	}
	if err := p.w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", p.out.Name(), err)
	}
	return p.out.Publish()
}

// sectionBuf collects one worker's lines of one section into segments.
type sectionBuf struct {
	buf []byte
	run int // -1: no run started
}

// lineSink is one worker's buffered lines of every section, for one run
// per section (a shard, or the heavy users of a task).
type lineSink struct {
	pw   *partWriter
	secs []sectionBuf
}

func newLineSink(pw *partWriter, sections int) *lineSink {
	s := &lineSink{pw: pw, secs: make([]sectionBuf, sections)}
	for i := range s.secs {
		s.secs[i].run = -1
	}
	return s
}

// add appends one features line of section sec. Lines of a section must
// come in key order.
func (s *lineSink) add(sec int, key, line []byte) error {
	b := &s.secs[sec]
	b.buf = keyruns.Append(b.buf, key, line)
	if len(b.buf) >= segmentBytes {
		return s.flush(sec)
	}
	return nil
}

func (s *lineSink) flush(sec int) error {
	b := &s.secs[sec]
	if len(b.buf) == 0 {
		return nil
	}
	if b.run < 0 {
		b.run = s.pw.newRun(sec)
	}
	err := s.pw.appendSegment(b.run, b.buf)
	b.buf = b.buf[:0]
	return err
}

// endRuns flushes every section and ends their runs: the next lines start
// new runs.
func (s *lineSink) endRuns() error {
	for i := range s.secs {
		if err := s.flush(i); err != nil {
			return err
		}
		s.secs[i].run = -1
	}
	return nil
}

// partFile is an opened part file.
type partFile struct {
	name   string
	f      *os.File
	footer partFooter
	data   int64 // bytes before the footer: the segments
}

// openPart opens a part file and reads its footer.
func openPart(path string) (*partFile, error) { return (*footerCache)(nil).open(path) }

// footerCache keeps the footers a cluster has read, so that its merge
// tasks, one per output file, decode each part file's footer once: the
// footer lists every run of every section, and with 48 input files
// decoding the two part files' footers took 10 ms, in each of the 48
// merge tasks, 47 of which found their output merged by the first.
type footerCache struct {
	mu sync.Mutex
	m  map[string]cachedFooter
}

// cachedFooter is a part file's footer, with the file it was read from
// (info) and where the footer starts (data).
type cachedFooter struct {
	info   os.FileInfo
	footer partFooter
	data   int64
}

// same reports whether a file that stats as st is the one whose footer c
// holds: a part file written again (a task's retry) is a new file.
func (c *cachedFooter) same(st os.FileInfo) bool {
	return os.SameFile(c.info, st) && c.info.Size() == st.Size() && c.info.ModTime().Equal(st.ModTime())
}

// open opens a part file and reads its footer, or takes it from c (a nil
// c reads it).
func (c *footerCache) open(path string) (*partFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	pf, err := c.footer(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("part file %s: %w", path, err)
	}
	pf.name = path
	return pf, nil
}

func (c *footerCache) footer(f *os.File) (*partFile, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if c == nil {
		return readFooter(f, st)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[f.Name()]; ok && e.same(st) {
		return &partFile{f: f, footer: e.footer, data: e.data}, nil
	}
	pf, err := readFooter(f, st)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]cachedFooter{}
	}
	c.m[f.Name()] = cachedFooter{info: st, footer: pf.footer, data: pf.data}
	return pf, nil
}

// readFooter reads the footer of f, which stats as st.
func readFooter(f *os.File, st os.FileInfo) (*partFile, error) {
	tail := int64(8 + len(partMagic))
	if st.Size() < tail {
		return nil, errors.New("too short")
	}
	t := make([]byte, tail)
	if _, err := f.ReadAt(t, st.Size()-tail); err != nil {
		return nil, err
	}
	if string(t[8:]) != partMagic {
		return nil, errors.New("not a part file (bad magic)")
	}
	n := int64(binary.LittleEndian.Uint64(t[:8]))
	if n <= 0 || n > st.Size()-tail {
		return nil, errors.New("bad footer length")
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, st.Size()-tail-n); err != nil {
		return nil, err
	}
	pf := &partFile{f: f, data: st.Size() - tail - n}
	if err := json.Unmarshal(b, &pf.footer); err != nil {
		return nil, fmt.Errorf("footer: %w", err)
	}
	return pf, nil
}

func (p *partFile) Close() error { return p.f.Close() }

// check reads the segments and compares them with the footer's Sum: a
// part file is not synced, and one left by a power cut can have its
// footer and not all its segments. A file without a Sum (an older mce's,
// synced) passes.
func (p *partFile) check() error {
	if p.footer.Sum == "" {
		return nil
	}
	h := xxhash.New()
	if _, err := io.Copy(h, io.NewSectionReader(p.f, 0, p.data)); err != nil {
		return fmt.Errorf("part file %s: %w", p.name, err)
	}
	if got := strconv.FormatUint(h.Sum64(), 16); got != p.footer.Sum {
		return fmt.Errorf("part file %s: its segments sum to %s, its footer says %s", p.name, got, p.footer.Sum)
	}
	return nil
}
