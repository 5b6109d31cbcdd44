package gen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/mce-engine/mce/engine/feature"
)

// Names of the truth files Run writes beside the data.
const (
	TruthFile      = "_truth.csv"
	TruthFilesFile = "_truth_files.csv"
)

// filePerm is the mode of the files Run writes.
const filePerm = 0o644

// sampleRows is how many rows are generated per file to learn its average
// row size when the size is given in bytes.
const sampleRows = 4096

// Summary says what Run wrote.
type Summary struct {
	Dir       string
	Files     []FileSummary // in file order: largest first
	Rows      int64         // good data rows
	BadRows   int64
	Bytes     int64 // uncompressed, headers included
	DiskBytes int64
	Users     int // issuers the run could draw from (Options.Users or its default)
	Elapsed   time.Duration
}

// MBPerSec is the uncompressed write speed in MB (10^6 bytes) per second.
func (s *Summary) MBPerSec() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Bytes) / 1e6 / s.Elapsed.Seconds()
}

// FileSummary says what one file holds.
type FileSummary struct {
	Name          string // base name in Dir
	Rows          int64  // good data rows
	BadRows       int64
	MultilineRows int64 // good rows with a line break inside the description
	Users         int   // distinct issuers among the good rows
	AmountCents   int64 // sum of the good rows' amounts
	Bytes         int64 // uncompressed, header included
	DiskBytes     int64
	Compression   string
	Delimiter     byte
	Encoding      feature.Encoding
	CRLF          bool
	Header        []string
	Shuffled      bool // columns not in schema order
	ExtraColumn   bool
	// AmountStyle and DateStyle name how the file writes its amounts and
	// issue times (see StyleTruth): "plain" and "iso-space" unless
	// Options.ValueStyles.
	AmountStyle string
	DateStyle   string

	users  []userAcc // per issuer, for truth.csv
	styles struct {
		amount amountStyle
		date   dateStyle
	}
}

// Run writes the files and the truth files into o.Dir.
func Run(ctx context.Context, o Options) (*Summary, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	g, err := newGenerator(&o)
	if err != nil {
		return nil, err
	}
	if err := g.removeStale(); err != nil {
		return nil, err
	}
	files, err := g.writeAll(ctx)
	if err != nil {
		return nil, err
	}
	sum := &Summary{Dir: o.Dir, Files: files, Users: g.users.n}
	for _, f := range files {
		sum.Rows += f.Rows
		sum.BadRows += f.BadRows
		sum.Bytes += f.Bytes
		sum.DiskBytes += f.DiskBytes
	}
	if err := g.writeTruth(files); err != nil {
		return nil, err
	}
	if !o.NoSync {
		if err := syncDir(o.Dir); err != nil {
			return nil, err
		}
	}
	sum.Elapsed = time.Since(start)
	o.Logger.Info("generated invoices", "dir", o.Dir, "files", len(files), "rows", sum.Rows,
		"bad_rows", sum.BadRows, "bytes", sum.Bytes, "seconds", sum.Elapsed.Seconds(), "mb_per_s", sum.MBPerSec())
	return sum, nil
}

// newGenerator plans the files and sizes them.
func newGenerator(o *Options) (*generator, error) {
	t, err := newText()
	if err != nil {
		return nil, err
	}
	g := &generator{o: *o, text: t, files: planFiles(o)}
	w := fileWeights(len(g.files))
	var rows []int64
	if o.Size.Rows > 0 {
		rows = splitRows(o.Size.Rows, w)
	} else {
		// Learn each file's average row size from a sample drawn with
		// a provisional issuer table (ids do not depend on how many
		// there are).
		g.users = newUsers(min(max(o.Users, 1000), 1000), o.Seed, o.HeavyShare > 0)
		g.receivers = receiverSpace(g.users.n)
		wk := newWorker(g)
		rows = make([]int64, len(g.files))
		for i, f := range g.files {
			buf := make([]byte, 0, sampleRows*200)
			out := &chunkOut{buf: &buf}
			// NB: sized as if its values were plain, so that the same
			// Options give the same rows with and without ValueStyles.
			plain := *f
			plain.amount, plain.date = amountPlain, dateSpace
			wk.chunk(&plain, 0, sampleRows, chunkRand(o.Seed, i, 0, saltSample), out)
			perRow := float64(len(buf)) / sampleRows
			target := float64(o.Size.Bytes)*w[i] - float64(len(f.headerLine()))
			rows[i] = max(1, int64(target/perRow+0.5))
		}
	}
	var total int64
	for i, f := range g.files {
		f.rows = rows[i]
		f.chunks = int((f.rows + chunkRows - 1) / chunkRows)
		total += f.rows
	}
	n := o.Users
	if n == 0 {
		n = int(min(max(total/25, 20), 1_000_000))
	}
	n = max(n, 2)
	g.users = newUsers(n, o.Seed, o.HeavyShare > 0)
	g.receivers = receiverSpace(n)
	return g, nil
}

func receiverSpace(users int) uint64 {
	return min(max(10*uint64(users), 100_000), rfcSpace)
}

// outputName matches the names of the data files Run writes, of
// _truth_styles.csv (which only runs with ValueStyles write; the other
// truth files are always rewritten), and of Run's temporary files;
// compiled on first use, not at every mce process's start.
var outputName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(invoices_\d{4}_\d{2}\.csv(\.gz|\.zst)?|_truth_styles\.csv|\.invoices_.*\.tmp\d*|\._?truth.*\.tmp\d*)$`)
})

// removeStale removes files an earlier run left that this run does not
// write, so that the directory holds what truth.csv describes.
func (g *generator) removeStale() error {
	keep := map[string]bool{TruthStylesFile: g.o.ValueStyles}
	for _, f := range g.files {
		keep[f.name] = true
	}
	ents, err := os.ReadDir(g.o.Dir)
	if err != nil {
		return fmt.Errorf("list output directory: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() || keep[e.Name()] || !outputName().MatchString(e.Name()) {
			continue
		}
		p := filepath.Join(g.o.Dir, e.Name())
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("remove stale output: %w", err)
		}
		g.o.Logger.Info("removed stale generated file", "file", p)
	}
	return nil
}

// writeAll generates every file: workers take chunks in global order
// (file 0's first) and each file's writer writes its chunks in order.
func (g *generator) writeAll(ctx context.Context) ([]FileSummary, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	type job struct {
		f     *fileSpec
		chunk int
	}
	var jobs []job
	slots := make([][]chan *chunkOut, len(g.files))
	for i, f := range g.files {
		slots[i] = make([]chan *chunkOut, f.chunks)
		for c := range slots[i] {
			slots[i][c] = make(chan *chunkOut, 1)
			jobs = append(jobs, job{f, c})
		}
	}
	// NB: sem bounds the chunks generated but not yet written. It cannot
	// deadlock: jobs are taken in order, so the earliest unwritten chunk
	// is always held by a worker or waiting for a writer that is waiting
	// for it.
	sem := make(chan struct{}, 2*g.o.Workers+2)
	pool := &sync.Pool{New: func() any {
		b := make([]byte, 0, chunkRows*200)
		return &b
	}}

	var wg sync.WaitGroup
	var next atomic.Int64
	for range g.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker(g)
			for {
				// NB: a select picks at random among ready cases, so a
				// canceled run would go on taking chunks while sem has
				// room: the context is checked first.
				if ctx.Err() != nil {
					return
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				j := next.Add(1) - 1
				if j >= int64(len(jobs)) {
					<-sem
					return
				}
				jb := jobs[j]
				buf := pool.Get().(*[]byte)
				*buf = (*buf)[:0]
				out := &chunkOut{buf: buf}
				s := int64(jb.chunk) * chunkRows
				e := min(s+chunkRows, jb.f.rows)
				w.chunk(jb.f, s, e, chunkRand(g.o.Seed, jb.f.index, jb.chunk, saltChunk), out)
				slots[jb.f.index][jb.chunk] <- out
			}
		}()
	}
	results := make([]FileSummary, len(g.files))
	for i, f := range g.files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := g.writeFile(ctx, f, slots[i], sem, pool)
			if err != nil {
				cancel(fmt.Errorf("write %s: %w", f.name, err))
				return
			}
			results[i] = r
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return results, nil
}

// countingWriter counts the bytes that reach the disk.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeFile writes file f from its chunks as they come, to a temporary
// name that is renamed when the file is complete.
func (g *generator) writeFile(ctx context.Context, f *fileSpec, slots []chan *chunkOut, sem chan struct{}, pool *sync.Pool) (res FileSummary, err error) {
	began := time.Now()
	final := filepath.Join(g.o.Dir, f.name)
	tmp, err := os.CreateTemp(g.o.Dir, "."+f.name+".tmp")
	if err != nil {
		return res, fmt.Errorf("create temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// NB: CreateTemp makes the file private; data files are not.
	if err := tmp.Chmod(filePerm); err != nil {
		return res, err
	}
	disk := &countingWriter{w: tmp}
	var (
		w      io.Writer = disk
		bw     *bufio.Writer
		finish func() error // ends the compressed stream
	)
	switch f.compression {
	case CompressGzip:
		bw = bufio.NewWriterSize(disk, 1<<20)
		zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
		if err != nil {
			return res, fmt.Errorf("gzip: %w", err)
		}
		w, finish = zw, zw.Close
	case CompressZstd:
		bw = bufio.NewWriterSize(disk, 1<<20)
		// NB: one goroutine per encoder keeps the output independent of
		// GOMAXPROCS.
		zw, err := zstd.NewWriter(bw, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return res, fmt.Errorf("zstd: %w", err)
		}
		w, finish = zw, zw.Close
	}

	hdr := f.headerLine()
	if _, err := w.Write(hdr); err != nil {
		return res, err
	}
	res = FileSummary{
		Name: f.name, Bytes: int64(len(hdr)), Compression: f.compression, Delimiter: f.delim,
		Encoding: f.enc, CRLF: f.crlf, Header: f.header, Shuffled: f.shuffled,
		ExtraColumn: slices.Contains(f.cols, colExtra),
		AmountStyle: amountStyleNames[f.amount], DateStyle: dateStyleNames[f.date],
	}
	res.styles.amount, res.styles.date = f.amount, f.date
	acc := map[int32]userAcc{}
	for _, slot := range slots {
		var out *chunkOut
		select {
		case out = <-slot:
		case <-ctx.Done():
			return res, context.Cause(ctx)
		}
		n, err := w.Write(*out.buf)
		res.Bytes += int64(n)
		pool.Put(out.buf)
		<-sem
		if err != nil {
			return res, err
		}
		res.Rows += out.rows
		res.BadRows += out.bad
		res.MultilineRows += out.multiline
		for _, u := range out.users {
			a := acc[u.user]
			a.user, a.rows, a.cents = u.user, a.rows+u.rows, a.cents+u.cents
			acc[u.user] = a
		}
	}
	if finish != nil {
		if err := finish(); err != nil {
			return res, fmt.Errorf("finish %s stream: %w", f.compression, err)
		}
		if err := bw.Flush(); err != nil {
			return res, err
		}
	}
	if !g.o.NoSync {
		if err := tmp.Sync(); err != nil {
			return res, fmt.Errorf("sync: %w", err)
		}
	}
	if err := tmp.Close(); err != nil {
		return res, err
	}
	// A run canceled, or failed on another file, leaves no file it had
	// not finished when that happened (its chunks may all have come in
	// before the writer saw the context).
	if err := context.Cause(ctx); err != nil {
		return res, err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return res, err
	}
	res.DiskBytes = disk.n
	res.Users = len(acc)
	res.users = make([]userAcc, 0, len(acc))
	for _, a := range acc {
		res.AmountCents += a.cents
		res.users = append(res.users, a)
	}
	slices.SortFunc(res.users, func(a, b userAcc) int {
		return strings.Compare(g.users.utf8(a.user), g.users.utf8(b.user))
	})
	secs := time.Since(began).Seconds()
	g.o.Logger.Info("wrote file", "file", final, "rows", res.Rows, "bad_rows", res.BadRows,
		"bytes", res.Bytes, "disk_bytes", res.DiskBytes, "seconds", secs)
	return res, nil
}

// writeTruth writes truth.csv and truth_files.csv.
func (g *generator) writeTruth(files []FileSummary) error {
	byName := slices.Clone(files)
	slices.SortFunc(byName, func(a, b FileSummary) int { return strings.Compare(a.Name, b.Name) })
	err := g.writeAtomic(TruthFile, func(w *bufio.Writer) error {
		w.WriteString("file,user,rows,amount_total\n")
		var line []byte
		for _, f := range byName {
			for _, u := range f.users {
				line = append(line[:0], f.Name...)
				line = append(line, ',')
				line = appendCSVField(line, g.users.utf8(u.user))
				line = append(line, ',')
				line = appendUint(line, uint64(u.rows))
				line = append(line, ',')
				line = append(line, formatCents(u.cents)...)
				line = append(line, '\n')
				w.Write(line)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if g.o.ValueStyles {
		if err := g.writeStyles(byName); err != nil {
			return err
		}
	}
	return g.writeAtomic(TruthFilesFile, func(w *bufio.Writer) error {
		w.WriteString("file,rows,bad_rows,users,amount_total,bytes,compression,delimiter,encoding,disk_bytes\n")
		for _, f := range byName {
			comp := f.Compression
			if comp == "" {
				comp = "none"
			}
			fmt.Fprintf(w, "%s,%d,%d,%d,%s,%d,%s,%s,%s,%d\n", f.Name, f.Rows, f.BadRows, f.Users,
				formatCents(f.AmountCents), f.Bytes, comp, DelimiterName(f.Delimiter), f.Encoding, f.DiskBytes)
		}
		return nil
	})
}

// appendCSVField appends s, quoted if it needs to be.
func appendCSVField(dst []byte, s string) []byte {
	if !strings.ContainsAny(s, ",\"\r\n") {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	dst = appendQuoted(dst, []byte(s))
	return append(dst, '"')
}

// writeAtomic writes a small file through a temporary name.
func (g *generator) writeAtomic(name string, fill func(w *bufio.Writer) error) (err error) {
	tmp, err := os.CreateTemp(g.o.Dir, "."+strings.TrimSuffix(name, ".csv")+".tmp")
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(filePerm); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := fill(w); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if !g.o.NoSync {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", name, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(g.o.Dir, name)); err != nil {
		return fmt.Errorf("rename %s: %w", name, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}
