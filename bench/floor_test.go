package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunFloor(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("x", 300) // longer than the smallest chunks
	files := map[string]string{
		"a.csv": "h1,h2,h3\n1,2,3\n4,5,6\n" + long + ",7\n\n8\n",
		"b.csv": "only,a,header",                 // no final newline
		"c.csv": "",                              // empty
		"d.csv": "\n\n\n,,\n" + long + "\n9,9\n", // empty lines and empty fields
	}
	var paths []string
	var want FloorResult
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		want.Bytes += int64(len(body))
		lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
		if body == "" {
			lines = nil
		}
		for _, l := range lines {
			want.Lines++
			want.Fields += int64(strings.Count(l, ",") + 1)
			want.FieldBytes += int64(len(l) - strings.Count(l, ","))
		}
	}
	for _, chunk := range []int{1, 2, 3, 7, 64, 1 << 20} {
		for _, threads := range []int{1, 3} {
			t.Run(fmt.Sprintf("chunk=%d/threads=%d", chunk, threads), func(t *testing.T) {
				got, err := RunFloor(context.Background(), FloorConfig{Paths: paths, Threads: threads, ChunkBytes: chunk})
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("got %+v, want %+v", got, want)
				}
			})
		}
	}
}

func TestRunFloor_MissingFile(t *testing.T) {
	if _, err := RunFloor(context.Background(), FloorConfig{Paths: []string{filepath.Join(t.TempDir(), "none.csv")}}); err == nil {
		t.Fatal("no error for a missing file")
	}
}

func BenchmarkRunFloor(b *testing.B) {
	dir := b.TempDir()
	var body bytes.Buffer
	for i := 0; body.Len() < 32<<20; i++ {
		fmt.Fprintf(&body, "ID-%08d,ISSUER%05d,RECEIVER%06d,2024-12-01 10:11:12,%d.%02d,MXN,Servicios de consultoría\n", i, i%9973, i%99991, i%100000, i%100)
	}
	p := filepath.Join(dir, "f.csv")
	if err := os.WriteFile(p, body.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(body.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := RunFloor(context.Background(), FloorConfig{Paths: []string{p}, Threads: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
