package csvread

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// naiveMasks is blockMasksOf one byte at a time.
func naiveMasks(data []byte, delim byte) []blockMasks {
	out := make([]blockMasks, len(data)/64)
	for i, c := range data[:len(out)*64] {
		bit := uint64(1) << (i % 64)
		m := &out[i/64]
		if c == delim || c == '\n' {
			m.seps |= bit
		}
		if c == '\n' {
			m.lines |= bit
		}
		if c == '"' {
			m.quotes |= bit
		}
	}
	return out
}

// TestMasks holds the AVX2 masks (where the CPU has them) and the 8-byte
// ones to a byte-by-byte reading, for every delimiter mce takes and bytes
// of every value, the high ones included.
func TestMasks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{',', ';', '\t', '|', '\n', '"', '\r', 'a', '0', 0x80, 0xff, 0x0b, 0x2b, 0x2d, 0x09 | 0x80}
	for _, delim := range []byte{',', ';', '\t', '|', 0xff, 0x80, 0x01} {
		for _, blocks := range []int{1, 2, 3, 17, maskBlocks} {
			data := make([]byte, blocks*64)
			for i := range data {
				if rng.IntN(4) == 0 {
					data[i] = byte(rng.IntN(256))
				} else {
					data[i] = alphabet[rng.IntN(len(alphabet))]
				}
			}
			want := naiveMasks(data, delim)
			gen := make([]blockMasks, blocks)
			masksGeneric(data, delim, gen)
			got := make([]blockMasks, blocks)
			blockMasksOf(data, delim, got)
			for k := range want {
				if gen[k] != want[k] {
					t.Fatalf("delim %q, block %d of %d: masksGeneric %+v, want %+v", delim, k, blocks, gen[k], want[k])
				}
				if got[k] != want[k] {
					t.Fatalf("delim %q, block %d of %d: blockMasksOf (AVX2 %v) %+v, want %+v", delim, k, blocks, useAVX2, got[k], want[k])
				}
			}
		}
	}
}

// TestFillMasks_short checks the last, short block: read through the pad,
// and nothing set past the data.
func TestFillMasks_short(t *testing.T) {
	var out [maskBlocks]blockMasks
	var pad [64]byte
	for i := range pad {
		pad[i] = ',' // left over from a longer block before
	}
	data := []byte(strings.Repeat("a,b\n", 20)) // 80 bytes
	if nb := fillMasks(data, ',', &out, &pad); nb != 2 {
		t.Fatalf("%d blocks, want 2", nb)
	}
	full := append(bytes.Clone(data), make([]byte, 48)...)
	want := naiveMasks(full, ',')
	if out[0] != want[0] || out[1] != want[1] {
		t.Fatalf("masks %+v %+v, want %+v %+v", out[0], out[1], want[0], want[1])
	}
}

// scanByLine scans path with the masks (both kinds where the CPU has
// AVX2) and line by line, and fails when they differ.
func scanByLine(t *testing.T, path string, opts Options) {
	t.Helper()
	defer func(a bool) { byLine, useAVX2 = false, a }(useAVX2)
	byLine = true
	want := dump(scanFile(t, path, opts, 2))
	byLine = false
	for _, avx := range []bool{useAVX2, false} {
		useAVX2 = avx
		if got := dump(scanFile(t, path, opts, 2)); got != want {
			t.Fatalf("%s (AVX2 %v): the windows give\n%s\nline by line gives\n%s", filepath.Base(path), avx, got, want)
		}
	}
}

// TestParse_windows reads messy files through the windows and line by
// line: quotes in every place, quoted line ends, '\r', empty lines, lines
// longer than a window, no '\n' at the end, and the samples under
// testdata.
func TestParse_windows(t *testing.T) {
	long := strings.Repeat("x", maskBlocks*64+13)
	cases := map[string]string{
		"plain":        "id,user,amount\n1,u,2\n3,v,4\n",
		"crlf":         "id,user,amount\r\n1,u,2\r\n\r\n3,v,4\r\n\r",
		"no final nl":  "id,user,amount\n1,u,2\n3,v,4",
		"quotes":       "id,user,amount\n1,\"u,1\",2\n\"3\",v,\"4\"\n5,w\"x,6\n7,\"a\"\"b\",8\n",
		"quoted nl":    "id,user,amount\n1,\"u\n2\",3\n4,v,5\n",
		"open quote":   "id,user,amount\n1,u,2\n3,\"v,4\n5,w,6\n",
		"long line":    "id,user,amount\n1," + long + ",2\n3,v,4\n1,\"" + long + "\",2\n",
		"long no nl":   "id,user,amount\n1,u,2\n3," + long,
		"bad counts":   "id,user,amount\n1,u\n1,u,2,3\n,,\n\n1,u,2\n",
		"quoted bad":   "id,user,amount\n1,\"u\"\n2,\"v\"\r\n3,\"w\"",
		"quote cr":     "id,user,amount\n1,u,\"2\"\rx\n3,v,\"4\"\r\n5,w,\"6\"\r",
		"window edges": "id,user,amount\n" + strings.Repeat("12345,user,3\n", 700) + strings.Repeat("1,\"u\",2\n", 600),
	}
	dir := t.TempDir()
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".csv")
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			scanByLine(t, path, Options{Schema: smallSchema, MaxBadRowShare: -1, SampleBadRows: 10})
			scanByLine(t, path, Options{Schema: smallSchema, MaxBadRowShare: -1, SampleBadRows: 10, ChunkBytes: 97})
		})
	}
	files, _ := filepath.Glob("testdata/*.*sv")
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			scanByLine(t, path, Options{MaxBadRowShare: -1, SampleBadRows: 10})
		})
	}
}

// FuzzParse holds the windows to the reading line by line on arbitrary
// files.
func FuzzParse(f *testing.F) {
	for _, data := range testdataSeeds(f) {
		f.Add(data)
	}
	f.Add([]byte("id,user,amount\n1,\"u\n2\",3\r\n4,v,5"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "f.csv")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		scanByLine(t, path, Options{Schema: smallSchema, MaxBadRowShare: -1, SampleBadRows: 3, MaxRowBytes: 1 << 20})
	})
}
