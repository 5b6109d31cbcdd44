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
