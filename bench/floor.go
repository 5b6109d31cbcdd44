package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// DefaultFloorChunkBytes is the size of the byte ranges the floor's
// threads take from a shared cursor.
const DefaultFloorChunkBytes = 4 << 20

// FloorConfig configures RunFloor.
type FloorConfig struct {
	Paths      []string // plain (uncompressed) files
	Threads    int      // default 1
	ChunkBytes int      // default DefaultFloorChunkBytes
}

// FloorResult is what RunFloor read.
type FloorResult struct {
	Bytes  int64 `json:"bytes"`
	Lines  int64 `json:"lines"` // header lines included
	Fields int64 `json:"fields"`
	// FieldBytes sums the fields' lengths, so that the work cannot be
	// skipped.
	FieldBytes int64 `json:"field_bytes"`
}

// RunFloor is the floor of every CSV tool on this machine: it reads the
// files and splits them into lines on '\n' and fields on ',' with
// bytes.IndexByte, and does nothing else (no quotes, no decoding, no
// grouping). Threads take 4 MiB byte ranges of all files from a shared
// cursor; a range owns the lines that start in it.
func RunFloor(ctx context.Context, cfg FloorConfig) (FloorResult, error) {
	if cfg.Threads <= 0 {
		cfg.Threads = 1
	}
	if cfg.ChunkBytes <= 0 {
		cfg.ChunkBytes = DefaultFloorChunkBytes
	}
	type chunk struct {
		f        *os.File
		off, end int64
	}
	var chunks []chunk
	for _, p := range cfg.Paths {
		f, err := os.Open(p)
		if err != nil {
			return FloorResult{}, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return FloorResult{}, err
		}
		for off := int64(0); off < st.Size(); off += int64(cfg.ChunkBytes) {
			chunks = append(chunks, chunk{f: f, off: off, end: min(off+int64(cfg.ChunkBytes), st.Size())})
		}
	}
	var next atomic.Int64
	var mu sync.Mutex
	var total FloorResult
	var firstErr error
	var wg sync.WaitGroup
	for range cfg.Threads {
		wg.Go(func() {
			var res FloorResult
			buf := make([]byte, 0, cfg.ChunkBytes+64<<10)
			for {
				i := next.Add(1) - 1
				if i >= int64(len(chunks)) || ctx.Err() != nil {
					break
				}
				c := chunks[i]
				var err error
				buf, err = splitRange(c.f, c.off, c.end, buf, &res)
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, fmt.Errorf("%s at %d: %w", c.f.Name(), c.off, err))
					mu.Unlock()
					break
				}
			}
			mu.Lock()
			total.Bytes += res.Bytes
			total.Lines += res.Lines
			total.Fields += res.Fields
			total.FieldBytes += res.FieldBytes
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return total, firstErr
}

func cmpErr(old, new error) error {
	if old != nil {
		return old
	}
	return new
}

// splitRange splits the lines that start in [off, end) of f. It reads one
// byte before off to know whether a line starts at off, and past end to
// finish the last line.
func splitRange(f *os.File, off, end int64, buf []byte, res *FloorResult) ([]byte, error) {
	from := max(off-1, 0)
	buf = buf[:end-from]
	n, err := f.ReadAt(buf, from)
	if err != nil && !errors.Is(err, io.EOF) {
		return buf, err
	}
	buf = buf[:n]
	res.Bytes += end - off
	p := 0
	if off > 0 {
		// The line holding byte off-1 belongs to the range before.
		if buf[0] == '\n' {
			p = 1
		} else {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				return buf, nil // no line starts here
			}
			p = i + 1
		}
	}
	for p < len(buf) {
		i := bytes.IndexByte(buf[p:], '\n')
		if i < 0 {
			// The last line runs past end: read on until its '\n'.
			rest, err := readLineEnd(f, from+int64(len(buf)))
			if err != nil {
				return buf, err
			}
			line := append(buf[p:len(buf):len(buf)], rest...)
			splitFields(line, res)
			break
		}
		splitFields(buf[p:p+i], res)
		p += i + 1
	}
	return buf, nil
}

// readLineEnd returns the bytes from off up to the next '\n' (excluded) or
// the end of the file.
func readLineEnd(f *os.File, off int64) ([]byte, error) {
	var out []byte
	piece := make([]byte, 64<<10)
	for {
		n, err := f.ReadAt(piece, off)
		if i := bytes.IndexByte(piece[:n], '\n'); i >= 0 {
			return append(out, piece[:i]...), nil
		}
		out = append(out, piece[:n]...)
		off += int64(n)
		if errors.Is(err, io.EOF) || n == 0 {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func splitFields(line []byte, res *FloorResult) {
	res.Lines++
	for {
		i := bytes.IndexByte(line, ',')
		res.Fields++
		if i < 0 {
			res.FieldBytes += int64(len(line))
			return
		}
		res.FieldBytes += int64(i)
		line = line[i+1:]
	}
}
