package csvread

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/mce-engine/mce/engine/feature"
)

// Compression names used in File.Compression.
const (
	compGzip = "gzip"
	compZstd = "zstd"
)

// Open opens the file at path, detects its compression, encoding and
// delimiter, reads its header and maps the schema's columns onto it. Errors
// about the file are *FileError; an unusable Options gives a plain error.
func Open(path string, opts Options) (*File, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("csvread options: %w", err)
	}
	osf, err := os.Open(path)
	if err != nil {
		return nil, &FileError{File: path, Err: pathErr("open", err)}
	}
	f := &File{Path: path, Schema: opts.Schema, opts: opts, osFile: osf, skip: skipColumns(opts.Schema, opts.Reads)}
	for j, sk := range f.skip {
		if sk {
			f.skipCols = append(f.skipCols, j)
		} else {
			f.readCols = append(f.readCols, j)
		}
	}
	f.disk = wrapInput(path, osf)
	if err := f.open(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// skipColumns returns, per schema column, whether the rows leave it
// empty: it is neither read nor the user column. nil when every column is
// carried.
func skipColumns(s *feature.Schema, reads []string) []bool {
	if len(reads) == 0 {
		return nil
	}
	skip := make([]bool, s.Len())
	for j := range skip {
		skip[j] = j != s.User()
	}
	for _, c := range reads {
		skip[s.Index(c)] = false
	}
	return skip
}

// pathErr drops the path that an *fs.PathError repeats.
func pathErr(op string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", op, pe.Err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func (f *File) fail(line int64, err error) error {
	return &FileError{File: f.Path, Line: line, Err: err}
}

func (f *File) open() error {
	st, err := f.osFile.Stat()
	if err != nil {
		return f.fail(0, pathErr("stat", err))
	}
	if st.IsDir() {
		return f.fail(0, errors.New("is a directory"))
	}
	f.Size = st.Size()
	disk := bufio.NewReaderSize(&diskReader{f: f}, 64<<10)
	magic, err := disk.Peek(4)
	if err != nil && err != io.EOF {
		return f.streamErr(err, 1)
	}
	f.Compression = detectCompression(magic, f.Path)
	var stream io.Reader = disk
	switch f.Compression {
	case compGzip:
		zr, err := gzip.NewReader(disk)
		if err != nil {
			return f.streamErr(err, 1)
		}
		f.closeDecomp = func() { zr.Close() }
		stream = zr
	case compZstd:
		zr, err := zstd.NewReader(disk, zstd.WithDecoderConcurrency(2))
		if err != nil {
			return f.fail(0, fmt.Errorf("zstd reader: %w", err))
		}
		f.closeDecomp = zr.Close
		stream = zr
	}
	f.src = &countReader{r: stream, n: &f.bytesRead}
	return f.readHeader()
}

// detectCompression looks at the magic bytes first and at the file name
// when they say nothing (too short a file, or a damaged header, which the
// decompressor then reports).
func detectCompression(magic []byte, path string) string {
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		return compGzip
	case len(magic) >= 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		return compZstd
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".gz", ".gzip":
		return compGzip
	case ".zst", ".zstd":
		return compZstd
	}
	return ""
}

// streamErr turns an error of the uncompressed stream into a *FileError
// that says what went wrong and how far the file was read. line is the
// physical line being read when it came (0 when unknown); a failed read
// of the disk names the byte it could not read, and that line.
func (f *File) streamErr(err error, line int64) error {
	n := f.bytesRead.Load()
	if d := f.diskErr.Load(); d != nil {
		at := fmt.Sprintf("at byte %d of %d", d.off, f.Size)
		if f.Compression != "" {
			at += fmt.Sprintf(" on disk (%d bytes decompressed)", n)
		}
		return f.fail(line, fmt.Errorf("%w %s: %w", ErrRead, at, unwrapPath(d.err)))
	}
	if f.Compression == "" {
		return f.fail(0, fmt.Errorf("read: %w", err))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return f.fail(0, fmt.Errorf("%w %s stream after %d decompressed bytes (%d bytes on disk)",
			ErrTruncated, f.Compression, n, f.Size))
	}
	return f.fail(0, fmt.Errorf("%w %s stream after %d decompressed bytes: %w", ErrCorrupt, f.Compression, n, err))
}

// unwrapPath drops the operation and path that an *fs.PathError adds (the
// message names the file already).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Close releases the file and its decompressor, and gives the buffer Open
// read the header into back for the next file when no Scan took it (a
// file that failed after its header, or was only opened).
func (f *File) Close() error {
	if f.headBuf != nil {
		reuse.putBuf(f.headBuf)
		f.head, f.headBuf = nil, nil
	}
	if f.closeDecomp != nil {
		f.closeDecomp()
		f.closeDecomp = nil
	}
	if f.osFile == nil {
		return nil
	}
	err := f.osFile.Close()
	f.osFile = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", f.Path, err)
	}
	return nil
}

// BytesRead returns the uncompressed bytes consumed so far; it may be called
// from any goroutine while Scan runs.
func (f *File) BytesRead() int64 { return f.bytesRead.Load() }

// DiskBytesRead returns the on-disk (compressed) bytes consumed so far; it
// may be called from any goroutine while Scan runs.
func (f *File) DiskBytesRead() int64 { return f.diskBytesRead.Load() }

// diskReader reads the file from disk, counting the bytes in
// diskBytesRead and keeping the first error with the byte it was reading.
type diskReader struct{ f *File }

func (d *diskReader) Read(p []byte) (int, error) {
	n, err := d.f.disk.Read(p)
	off := d.f.diskBytesRead.Add(int64(n))
	if err != nil && err != io.EOF {
		d.f.diskErr.CompareAndSwap(nil, &diskFault{err: err, off: off})
	}
	return n, err
}

type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// readFull reads into buf[len(buf):cap(buf)] until it is full or the stream
// ends. It reports io.EOF as eof, not as an error.
func readFull(r io.Reader, buf []byte) (_ []byte, eof bool, err error) {
	for len(buf) < cap(buf) {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, true, nil
		}
		if err != nil {
			return buf, false, err
		}
	}
	return buf, false, nil
}

// readHeader reads the first MiB, sniffs it, parses the header and keeps
// the rest for Scan.
func (f *File) readHeader() error {
	// The buffer has room for a whole block, so that Scan can go on
	// filling it instead of copying what was read here.
	full := reuse.buf(max(sniffBytes, f.opts.ChunkBytes))
	if full == nil {
		full = make([]byte, 0, max(sniffBytes, f.opts.ChunkBytes))
	}
	f.headBuf = full // Scan hands it on, or Close gives it back
	head, eof, err := readFull(f.src, full[:0:sniffBytes])
	head = full[:len(head)]
	if err != nil {
		return f.streamErr(err, 1+int64(bytes.Count(head, []byte{'\n'})))
	}
	// The header must be whole: read on until there is a newline.
	for !eof && bytes.IndexByte(head, '\n') < 0 {
		if len(head) > f.opts.MaxRowBytes {
			return f.fail(1, fmt.Errorf("%w: no newline in the first %s", ErrRowTooLong, sizeString(f.opts.MaxRowBytes)))
		}
		old := head
		if head = growCap(head, 2*cap(head)); cap(head) != cap(old) {
			reuse.putBuf(old) // copied into head
		}
		f.headBuf = head[:0]
		head, eof, err = readFull(f.src, head)
		if err != nil {
			return f.streamErr(err, 1+int64(bytes.Count(head, []byte{'\n'})))
		}
	}
	hdrStart := 0
	if bytes.HasPrefix(head, []byte("\xef\xbb\xbf")) {
		hdrStart = 3
	}
	if len(head) == hdrStart {
		return f.fail(0, ErrEmpty)
	}
	if err := checkText(head); err != nil {
		return f.fail(0, err)
	}

	f.Encoding = f.opts.Encoding
	if f.Encoding == feature.EncodingAuto {
		sample := head[:min(len(head), sniffBytes)]
		if !eof || len(head) > sniffBytes {
			sample = trimPartialRune(sample)
		}
		if !utf8.Valid(sample) {
			f.Encoding = feature.EncodingCP1252
		}
	}

	// Skip empty lines before the header.
	line := int64(1)
	for hdrStart < len(head) {
		nl := bytes.IndexByte(head[hdrStart:], '\n')
		if nl < 0 {
			if isEmptyLine(head[hdrStart:]) {
				hdrStart = len(head)
			}
			break
		}
		if !isEmptyLine(head[hdrStart : hdrStart+nl]) {
			break
		}
		hdrStart += nl + 1
		line++
	}
	if hdrStart == len(head) {
		return f.fail(0, ErrEmpty)
	}

	f.Delimiter = f.opts.Delimiter
	if f.Delimiter == 0 {
		f.Delimiter = f.sniffDelimiter(head, hdrStart, eof)
	}
	var out []byte
	var ends []uint32
	next, closed := parseRecord(head, hdrStart, f.Delimiter, &out, &ends)
	if !closed && !eof {
		return f.fail(line, fmt.Errorf("%w: header has an open quote within the first %s", ErrRowTooLong, sizeString(len(head))))
	}
	f.Header = splitFields(out, ends, f.Encoding)
	f.nHeader = len(f.Header)
	if err := f.mapColumns(); err != nil {
		return f.fail(line, err)
	}
	f.dataLine = line + int64(bytes.Count(head[hdrStart:next], []byte{'\n'}))
	f.headerLines = int64(bytes.Count(head[:next], []byte{'\n'}))
	if next > 0 && head[next-1] != '\n' {
		f.headerLines++
	}
	f.head = head[next:]
	f.headEOF = eof
	return f.sniffValues(f.head, eof)
}

// growCap returns b with room for at least n bytes.
func growCap(b []byte, n int) []byte {
	if cap(b) >= n {
		return b
	}
	nb := make([]byte, len(b), n)
	copy(nb, b)
	return nb
}

// trimPartialRune drops an incomplete UTF-8 sequence at the end of b, cut
// by the end of a block.
func trimPartialRune(b []byte) []byte {
	for i := 1; i <= 3 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
			return b
		}
		if c >= 0xc0 { // a lead byte
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}

// checkText fails a file whose first block is not text: many control bytes
// (NUL first of all), as binary files and UTF-16 text have.
func checkText(head []byte) error {
	ctrl, nul := countControl(head)
	if ctrl*100 <= len(head) && nul*1000 <= len(head) {
		return nil
	}
	hint := ""
	if bytes.HasPrefix(head, []byte{0xff, 0xfe}) || bytes.HasPrefix(head, []byte{0xfe, 0xff}) {
		hint = "; it looks like UTF-16, convert it to UTF-8 or cp1252"
	}
	return fmt.Errorf("%w: %d of the first %d bytes are control characters (%d NUL)%s",
		ErrNotText, ctrl, len(head), nul, hint)
}

// countControl counts the control bytes of b (below 0x20, but for tab,
// newline and carriage return) and, among them, the NULs. It goes 8 bytes
// at a time: the byte-by-byte loop took 0.7 ms of every file's 1 MiB
// sniff.
func countControl(b []byte) (ctrl, nul int) {
	const (
		tabs = '\t' * oneBytes
		nls  = '\n' * oneBytes
		crs  = '\r' * oneBytes
		top3 = 0xe0 * oneBytes // a byte below 0x20 has none of these bits
	)
	n := len(b) &^ 7
	for i := 0; i < n; i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		low := zeroBytes(x & top3)
		if low == 0 {
			continue
		}
		low &^= zeroBytes(x^tabs) | zeroBytes(x^nls) | zeroBytes(x^crs)
		ctrl += bits.OnesCount64(low)
		nul += bits.OnesCount64(zeroBytes(x))
	}
	for _, c := range b[n:] {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			ctrl++
			if c == 0 {
				nul++
			}
		}
	}
	return ctrl, nul
}

// splitFields turns parsed fields into strings decoded to UTF-8.
func splitFields(out []byte, ends []uint32, enc feature.Encoding) []string {
	fields := make([]string, len(ends))
	start := uint32(0)
	for i, e := range ends {
		fields[i] = feature.DecodeText(out[start:e], enc)
		start = e
	}
	return fields
}

// delimiters are the candidates the sniffer tries, in order of preference
// on a tie.
const delimiters = ",;|\t"

// sniffDelimiter picks the candidate delimiter that maps the most schema
// columns onto the header, then the one that gives the records after it
// the header's field count most often, then the one that gives the most
// header fields.
func (f *File) sniffDelimiter(head []byte, hdrStart int, eof bool) byte {
	best := byte(',')
	bestScore := [3]int{-1, -1, -1}
	var out []byte
	var ends []uint32
	for i := 0; i < len(delimiters); i++ {
		d := delimiters[i]
		out, ends = out[:0], ends[:0]
		next, _ := parseRecord(head, hdrStart, d, &out, &ends)
		header := splitFields(out, ends, f.Encoding)
		mapped := 0
		for _, h := range f.columnMap(header) {
			if h >= 0 {
				mapped++
			}
		}
		nh := len(ends)
		same, total := 0, 0
		for pos := next; pos < len(head) && total < sniffRecords; {
			out, ends = out[:0], ends[:0]
			n, closed := parseRecord(head, pos, d, &out, &ends)
			if !eof && (!closed || head[n-1] != '\n') {
				break // the record goes on past the sniffed bytes
			}
			if !isEmptyLine(bytes.TrimSuffix(head[pos:n], []byte{'\n'})) {
				total++
				if len(ends) == nh {
					same++
				}
			}
			pos = n
		}
		consistency := 1000
		if total > 0 {
			consistency = same * 1000 / total
		}
		score := [3]int{mapped, consistency, nh}
		if score[0] > bestScore[0] ||
			score[0] == bestScore[0] && (score[1] > bestScore[1] ||
				score[1] == bestScore[1] && score[2] > bestScore[2]) {
			best, bestScore = d, score
		}
	}
	return best
}

// columnNames returns the names schema column j may have in a header,
// normalised: its own, then the caller's aliases, then DefaultAliases.
func (f *File) columnNames(j int) []string {
	c := f.Schema.Name(j)
	names := []string{normName(c)}
	for _, a := range f.opts.Aliases[c] {
		names = append(names, normName(a))
	}
	for _, a := range DefaultAliases[c] {
		names = append(names, normName(a))
	}
	return names
}

// columnMap returns the header column of each schema column, -1 when
// missing. Canonical names are matched first, so that an alias never takes
// a column that another schema column has by its own name.
func (f *File) columnMap(header []string) []int {
	norm := make([]string, len(header))
	for i, h := range header {
		norm[i] = normName(h)
	}
	n := f.Schema.Len()
	colOf := make([]int, n)
	taken := make([]bool, len(header))
	names := make([][]string, n)
	for j := range colOf {
		colOf[j] = -1
		names[j] = f.columnNames(j)
	}
	find := func(name string) int {
		for i, h := range norm {
			if !taken[i] && h == name && name != "" {
				return i
			}
		}
		return -1
	}
	for j := range colOf {
		if i := find(names[j][0]); i >= 0 {
			colOf[j], taken[i] = i, true
		}
	}
	for j := range colOf {
		for _, a := range names[j][1:] {
			if colOf[j] >= 0 {
				break
			}
			if i := find(a); i >= 0 {
				colOf[j], taken[i] = i, true
			}
		}
	}
	return colOf
}

// mapColumns sets f.colOf or says which columns are missing.
func (f *File) mapColumns() error {
	f.colOf = f.columnMap(f.Header)
	var missing []string
	user := f.Schema.User()
	for j, h := range f.colOf {
		if h >= 0 {
			continue
		}
		what := fmt.Sprintf("column %q", f.Schema.Name(j))
		if j == user {
			what = "user " + what
		}
		missing = append(missing, fmt.Sprintf("%s (looked for %s)", what, strings.Join(f.columnNames(j), ", ")))
	}
	if missing == nil {
		return nil
	}
	if f.colOf[user] < 0 && user != 0 { // name the user column first
		for i, m := range missing {
			if strings.HasPrefix(m, "user ") {
				missing[0], missing[i] = missing[i], missing[0]
			}
		}
	}
	return fmt.Errorf("%w: %s; the header (delimiter %q) is %s",
		ErrMissingColumn, strings.Join(missing, "; "), f.Delimiter, headerString(f.Header))
}

// headerString shows a header in an error message, shortened.
func headerString(h []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range h {
		if i == 20 {
			fmt.Fprintf(&b, " … %d more", len(h)-i)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		if len(s) > 40 {
			s = strings.ToValidUTF8(s[:40], "") + "…"
		}
		fmt.Fprintf(&b, "%q", s)
	}
	b.WriteByte(']')
	return b.String()
}

// normName folds a column name for matching: lower case, no surrounding
// space, accents dropped from Spanish letters, and spaces, hyphens and dots
// turned into underscores ("Fecha Emisión" matches "fecha_emision").
func normName(s string) string {
	s = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(s, "\ufeff")))
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch r {
		case 'á', 'à', 'ä', 'â':
			r = 'a'
		case 'é', 'è', 'ë', 'ê':
			r = 'e'
		case 'í', 'ì', 'ï', 'î':
			r = 'i'
		case 'ó', 'ò', 'ö', 'ô':
			r = 'o'
		case 'ú', 'ù', 'ü', 'û':
			r = 'u'
		case 'ñ':
			r = 'n'
		case ' ', '-', '.':
			r = '_'
		}
		b.WriteRune(r)
	}
	return b.String()
}
