package reduce

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/internal/keyruns"
)

// TestPart_writeMerge writes runs of sorted lines for two sections from
// several sinks (as shard workers do, many segments each), reads the part
// file back and merges each section: every line comes out once, in key
// order, whatever the runs.
func TestPart_writeMerge(t *testing.T) {
	f := func(runs, linesPerRun int) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "x.part")
		out, err := output.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		pw := newPartWriter(out, 2)
		rng := rand.New(rand.NewPCG(uint64(runs), uint64(linesPerRun)))
		var want [2][]string
		for r := 0; r < runs; r++ {
			sink := newLineSink(pw, 2)
			for sec := 0; sec < 2; sec++ {
				var keys []string
				for i := 0; i < linesPerRun; i++ {
					keys = append(keys, fmt.Sprintf("u%d-%d-%06d,\"q\"", sec, r, rng.IntN(1e6)))
				}
				slices.Sort(keys)
				keys = slices.Compact(keys)
				for _, k := range keys {
					line := fmt.Sprintf("%q,%s\n", k, strings.Repeat("x", rng.IntN(300)))
					if err := sink.add(sec, []byte(k), []byte(line)); err != nil {
						t.Fatal(err)
					}
					want[sec] = append(want[sec], k)
				}
			}
			if err := sink.endRuns(); err != nil {
				t.Fatal(err)
			}
		}
		pw.fail(partFailure{Section: 1, User: "u", Message: "boom"})
		pw.fail(partFailure{Section: 1, User: "v", Message: "second"})
		if err := pw.finish(); err != nil {
			t.Fatal(err)
		}
		pf, err := openPart(path)
		if err != nil {
			t.Fatal(err)
		}
		defer pf.Close()
		if len(pf.footer.Failures) != 1 || pf.footer.Failures[0].User != "u" {
			t.Errorf("failures %+v, want the first of section 1 only", pf.footer.Failures)
		}
		for sec := 0; sec < 2; sec++ {
			var rs []sectionRun
			for i := range pf.footer.Runs {
				if r := &pf.footer.Runs[i]; r.Section == sec {
					rs = append(rs, sectionRun{f: pf.f, run: r})
				}
			}
			var buf bytes.Buffer
			bw := bufio.NewWriter(&buf)
			n, err := keyruns.Merge(context.Background(), lineWriter{bw}.write, readers(rs, 64), func(int64) {})
			if err == nil {
				err = bw.Flush()
			}
			if err != nil {
				t.Fatal(err)
			}
			// The same merged in groups on several goroutines.
			for _, groups := range []int{2, 3, 7} {
				var gbuf bytes.Buffer
				gw := bufio.NewWriter(&gbuf)
				m, err := mergeGroups(context.Background(), gw, filepath.Join(t.TempDir(), "out"), rs, groups, 100, func(int64) {})
				if err == nil {
					err = gw.Flush()
				}
				if err != nil {
					t.Fatal(err)
				}
				if m != n || !bytes.Equal(gbuf.Bytes(), buf.Bytes()) {
					t.Errorf("section %d in %d groups: %d lines, %d bytes; want %d, %d", sec, groups, m, gbuf.Len(), n, buf.Len())
				}
			}
			slices.Sort(want[sec])
			if int(n) != len(want[sec]) {
				t.Fatalf("section %d: merged %d lines, want %d", sec, n, len(want[sec]))
			}
			if n == 0 {
				if buf.Len() > 0 {
					t.Fatalf("section %d: no lines, but %q", sec, buf.String())
				}
				continue
			}
			for i, ln := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
				if !strings.HasPrefix(ln, fmt.Sprintf("%q,", want[sec][i])) {
					t.Fatalf("section %d line %d: %.40q, want key %q", sec, i, ln, want[sec][i])
				}
			}
		}
	}
	f(1, 0)
	f(1, 10)
	f(5, 1000)
	f(40, 50)
}

// TestPart_bad: a file that is not a whole part file is refused.
func TestPart_bad(t *testing.T) {
	dir := t.TempDir()
	f := func(name string, data []byte, want string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := openPart(p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", name, err, want)
		}
	}
	f("short", []byte("x"), "too short")
	f("magic", []byte("0123456789abcdefXXXXXXXX"), "bad magic")
	f("length", append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, partMagic...), "bad footer length")
	f("json", append(append([]byte("{x"), 2, 0, 0, 0, 0, 0, 0, 0), partMagic...), "footer")
}

// TestPart_check: a part file's footer sums its segments, and check tells
// a file whose segments are not what was written (a power cut before the
// unsynced file reached the disk) from a whole one; a file of an older
// mce, without a sum, passes.
func TestPart_check(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.part")
	out, err := output.CreateScratch(path)
	if err != nil {
		t.Fatal(err)
	}
	pw := newPartWriter(out, 1)
	sink := newLineSink(pw, 1)
	for i := range 5000 {
		k := fmt.Sprintf("u%06d", i)
		if err := sink.add(0, []byte(k), []byte(k+",1\n")); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.endRuns(); err != nil {
		t.Fatal(err)
	}
	if err := pw.finish(); err != nil {
		t.Fatal(err)
	}
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		change func(b []byte) []byte
		bad    string // what check's error says; "" when it passes
	}{
		{"whole", func(b []byte) []byte { return b }, ""},
		{"a byte changed", func(b []byte) []byte { b[100] ^= 1; return b }, "segments sum to"},
		{"zeros", func(b []byte) []byte { clear(b[4096:8192]); return b }, "segments sum to"},
		{"older mce, no sum", func(b []byte) []byte {
			b[100] ^= 1 // not checked without a sum
			return bytes.Replace(b, []byte(`,"sum":"`), []byte(`,"xum":"`), 1)
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.change(bytes.Clone(whole))
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			pf, err := openPart(path)
			if err != nil {
				t.Fatal(err)
			}
			defer pf.Close()
			err = pf.check()
			switch {
			case c.bad == "" && err != nil:
				t.Fatalf("check: %v", err)
			case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
				t.Fatalf("check: %v, want an error saying %q", err, c.bad)
			}
		})
	}
	// Short: the footer is gone, and opening it says so.
	if err := os.WriteFile(path, whole[:len(whole)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if pf, err := openPart(path); err == nil {
		pf.Close()
		t.Fatal("a part file cut in half opened")
	}
}

// TestFooterCache opens part files through a cluster's footer cache: an
// unchanged file's footer is decoded once (the second open shares the
// first's runs), and a file written again under the same name (a read
// task's retry) is read again, with its own runs.
func TestFooterCache(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "read-000.part")
	write := func(lines int) {
		t.Helper()
		out, err := output.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		pw := newPartWriter(out, 1)
		sink := newLineSink(pw, 1)
		for i := range lines {
			k := fmt.Sprintf("u%04d", i)
			if err := sink.add(0, []byte(k), []byte(k+"\n")); err != nil {
				t.Fatal(err)
			}
			if err := sink.endRuns(); err != nil { // a run per line
				t.Fatal(err)
			}
		}
		if err := pw.finish(); err != nil {
			t.Fatal(err)
		}
	}
	var c footerCache
	open := func() *partFile {
		t.Helper()
		parts, err := c.openParts(dir, []string{"read-000.part"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { parts[0].Close() })
		return parts[0]
	}
	write(3)
	a, b := open(), open()
	if len(a.footer.Runs) != 3 || &a.footer.Runs[0] != &b.footer.Runs[0] {
		t.Fatalf("second open: %d runs at %p, want the first's 3 at %p", len(b.footer.Runs), &b.footer.Runs[0], &a.footer.Runs[0])
	}
	if a.f == b.f || a.data != b.data {
		t.Errorf("the opens share a file (%v) or disagree on the data's end (%d, %d)", a.f == b.f, a.data, b.data)
	}
	write(5)
	if c := open(); len(c.footer.Runs) != 5 {
		t.Fatalf("after the file was written again: %d runs, want 5", len(c.footer.Runs))
	}
}
