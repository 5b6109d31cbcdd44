package csvread

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zstdBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(data, nil)
}

// invoiceCSV makes a plain invoice file of about n bytes.
func invoiceCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("invoice_id,issuer,receiver,issued_at,amount,currency,description\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "INV%09d,RFC%07d,RCV%05d,2024-%02d-%02dT%02d:%02d:%02d,%d.%02d,MXN,\"servicio de consultoría, mes %d\"\n",
			i, i*7919%100000, i*31%20000, i%12+1, i%28+1, i%24, i%60, i*7%60, i*37%100000, i%100, i%12+1)
	}
	return b.Bytes()
}

func TestFile_Scan_compressed(t *testing.T) {
	plain := invoiceCSV(300 << 10)
	want, err := scanFile(t, writeTemp(t, "p.csv", plain), Options{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want.stats.Rows < 2000 {
		t.Fatalf("only %d rows", want.stats.Rows)
	}
	f := func(name string, data []byte, wantComp string) {
		t.Helper()
		path := writeTemp(t, name, data)
		got, err := scanFile(t, path, Options{ChunkBytes: 10000}, 2)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.file.Compression != wantComp {
			t.Fatalf("%s: compression %q, want %q", name, got.file.Compression, wantComp)
		}
		if rowsString(got.rows) != rowsString(want.rows) || got.stats.Lines != want.stats.Lines ||
			got.stats.Bytes != int64(len(plain)) {
			t.Fatalf("%s: %+v, want %+v", name, got.stats, want.stats)
		}
		if got.file.DiskBytesRead() != int64(len(data)) || got.file.BytesRead() != int64(len(plain)) {
			t.Fatalf("%s: read %d on disk, %d in all", name, got.file.DiskBytesRead(), got.file.BytesRead())
		}
	}
	gz, zs := gzipBytes(t, plain), zstdBytes(t, plain)
	f("a.csv.gz", gz, "gzip")
	f("a.csv.zst", zs, "zstd")
	f("gzip-named-plain.csv", gz, "gzip") // magic bytes win over the name
	f("zstd-named-gz.csv.gz", zs, "zstd")
	// Concatenated gzip members and zstd frames are one stream.
	half := bytes.IndexByte(plain[len(plain)/2:], '\n') + len(plain)/2 + 1
	f("multi.csv.gz", append(gzipBytes(t, plain[:half]), gzipBytes(t, plain[half:])...), "gzip")
	f("multi.csv.zst", append(zstdBytes(t, plain[:half]), zstdBytes(t, plain[half:])...), "zstd")
}

func TestFile_Scan_brokenCompression(t *testing.T) {
	plain := invoiceCSV(300 << 10)
	f := func(name string, data []byte, target error, want string) {
		t.Helper()
		path := writeTemp(t, name, data)
		for _, workers := range []int{1, 3} {
			res, err := scanFile(t, path, Options{ChunkBytes: 8192}, workers)
			var fe *FileError
			if !errors.As(err, &fe) || fe.File != path || !errors.Is(err, target) {
				rows := int64(-1)
				if res != nil {
					rows = res.stats.Rows
				}
				t.Fatalf("%s: error %v (rows %d), want a *FileError for %v", name, err, rows, target)
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("%s: error %q does not say %q", name, err, want)
			}
			if workers == 1 {
				t.Logf("%v", err)
			}
		}
	}
	gz, zs := gzipBytes(t, plain), zstdBytes(t, plain)
	for _, cut := range []int{1, 5, 11, 100, len(gz) / 2, len(gz) - 9, len(gz) - 4, len(gz) - 1} {
		f(fmt.Sprintf("cut%d.csv.gz", cut), gz[:cut], ErrTruncated, "truncated gzip stream after ")
	}
	for _, cut := range []int{3, 6, 100, len(zs) / 2, len(zs) - 5, len(zs) - 1} {
		f(fmt.Sprintf("cut%d.csv.zst", cut), zs[:cut], ErrTruncated, "truncated zstd stream after ")
	}
	// A file that is not what its name says.
	f("plain.csv.gz", plain, ErrCorrupt, "corrupt gzip stream after 0 decompressed bytes")
	f("plain.csv.zst", plain, ErrCorrupt, "corrupt zstd stream after 0 decompressed bytes")
	// Damaged bytes in the middle; the checksums catch what decoding does not.
	for _, at := range []int{len(gz) / 3, len(gz) / 2, len(gz) - 6} {
		bad := bytes.Clone(gz)
		bad[at] ^= 0x55
		f(fmt.Sprintf("bad%d.csv.gz", at), bad, ErrCorrupt, "corrupt gzip stream after ")
	}
	for _, at := range []int{len(zs) / 3, len(zs) / 2, len(zs) - 2} {
		bad := bytes.Clone(zs)
		bad[at] ^= 0x55
		f(fmt.Sprintf("bad%d.csv.zst", at), bad, ErrCorrupt, "corrupt zstd stream after ")
	}
	// Garbage after a good gzip member.
	f("trailing.csv.gz", append(bytes.Clone(gz), "garbage after the gzip member"...), ErrCorrupt, "corrupt gzip stream")
}

// TestFile_Close_noLeak checks that no goroutine outlives Scan and Close,
// also when fn stops the scan early and for a decompressor's helpers.
func TestFile_Close_noLeak(t *testing.T) {
	plain := invoiceCSV(200 << 10)
	paths := []string{
		writeTemp(t, "a.csv", plain),
		writeTemp(t, "a.csv.gz", gzipBytes(t, plain)),
		writeTemp(t, "a.csv.zst", zstdBytes(t, plain)),
	}
	before := runtime.NumGoroutine()
	errStop := errors.New("stop")
	for _, path := range paths {
		for _, stop := range []bool{false, true} {
			f, err := Open(path, Options{ChunkBytes: 4096})
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Scan(context.Background(), 4, func(*Batch) error {
				if stop {
					return errStop
				}
				return nil
			})
			if stop != (err == errStop) || !stop && err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
