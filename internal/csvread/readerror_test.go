package csvread

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// failAt reads f until byte bad, then fails every read with EIO, as a
// disk with a bad sector there does.
type failAt struct {
	f        *os.File
	pos, bad int64
}

func (r *failAt) Read(p []byte) (int, error) {
	if r.pos >= r.bad && len(p) > 0 {
		return 0, &fs.PathError{Op: "read", Path: r.f.Name(), Err: syscall.EIO}
	}
	if rest := r.bad - r.pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := r.f.Read(p)
	r.pos += int64(n)
	return n, err
}

// TestReadError fails the reads of an input file from a chosen byte on:
// Open or Scan must fail with ErrRead and the I/O error, naming the byte
// and the line it was reading, for plain and gzip files, in the header,
// in the first block and far into the file.
func TestReadError(t *testing.T) {
	var plain bytes.Buffer
	plain.WriteString("id,user,amount\n")
	for i := range 200_000 {
		fmt.Fprintf(&plain, "%d,user%d,%d.%02d\n", i, i%977, i, i%100)
	}
	var gz, zs bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain.Bytes())
	zw.Close()
	enc, _ := zstd.NewWriter(&zs)
	enc.Write(plain.Bytes())
	enc.Close()
	lineAt := func(off int64) int64 { return 1 + int64(bytes.Count(plain.Bytes()[:off], []byte{'\n'})) }

	defer func(w func(string, *os.File) io.Reader) { wrapInput = w }(wrapInput)
	for _, c := range []struct {
		name string
		data []byte
		bad  int64
		want string // in the error; "LINE" stands for the line of byte bad
	}{
		{"plain at byte 0", plain.Bytes(), 0, "x.csv:1: read error at byte 0 of SIZE: input/output error"},
		{"plain at byte 2 (compression sniffing)", plain.Bytes(), 2, "x.csv:1: read error at byte 2 of SIZE: input/output error"},
		{"plain in the header block", plain.Bytes(), 70_000, "x.csv:LINE: read error at byte 70000 of SIZE: input/output error"},
		{"plain in a later block", plain.Bytes(), 2_500_001, "x.csv:LINE: read error at byte 2500001 of SIZE: input/output error"},
		{"plain at the last byte", plain.Bytes(), int64(plain.Len() - 1), "x.csv:LINE: read error at byte BAD of SIZE: input/output error"},
		{"gzip in its header", gz.Bytes(), 5, "x.csv:1: read error at byte 5 of SIZE on disk (0 bytes decompressed): input/output error"},
		{"gzip far in", gz.Bytes(), int64(gz.Len() * 3 / 4), "read error at byte BAD of SIZE on disk ("},
		{"zstd in its header", zs.Bytes(), 6, "x.csv:1: read error at byte 6 of SIZE on disk (0 bytes decompressed): input/output error"},
		{"zstd far in", zs.Bytes(), int64(zs.Len() * 2 / 3), "read error at byte BAD of SIZE on disk ("},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, "x.csv", c.data)
			var r *failAt
			wrapInput = func(_ string, f *os.File) io.Reader {
				r = &failAt{f: f, bad: c.bad}
				return r
			}
			_, err := scanFile(t, path, Options{Schema: smallSchema}, 2)
			want := strings.NewReplacer("SIZE", fmt.Sprint(len(c.data)), "BAD", fmt.Sprint(c.bad)).Replace(c.want)
			if bytes.Equal(c.data, plain.Bytes()) {
				want = strings.ReplaceAll(want, "LINE", fmt.Sprint(lineAt(c.bad)))
			}
			var fe *FileError
			if err == nil || !errors.As(err, &fe) || !errors.Is(err, ErrRead) || !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v; want a *FileError wrapping ErrRead and EIO with %q", err, want)
			}
			if strings.Count(err.Error(), path) != 1 {
				t.Errorf("the error names the file %d times: %v", strings.Count(err.Error(), path), err)
			}
		})
	}
}
