package store

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// copyFixture copies the store under testdata/name into a temporary
// folder (an Open writes db/LOCK; a writable one more) and returns it.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("testdata", name, "store")
	dst := filepath.Join(t.TempDir(), "store")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// dumpRows writes every row of the store, heavy users first, then shard
// by shard, one line each: user, file, line and the fields (nil for a
// column not decoded), quoted.
func dumpRows(t *testing.T, db *DB, cols []int) string {
	t.Helper()
	var b strings.Builder
	spans := []Span{db.HeavySpan()}
	for s := 0; s < db.Shards(); s++ {
		spans = append(spans, db.ShardSpan(s))
	}
	for _, sp := range spans {
		u, err := db.Users(context.Background(), sp, &UsersOptions{ByFile: true, IterOptions: IterOptions{Columns: cols}})
		if err != nil {
			t.Fatal(err)
		}
		for u.Next() {
			rows := u.Rows()
			for rows.Next() {
				fmt.Fprintf(&b, "%q %d %d", u.User(), rows.File(), rows.Line())
				for _, f := range rows.Fields() {
					if f == nil {
						b.WriteString(" -")
					} else {
						fmt.Fprintf(&b, " %q", f)
					}
				}
				b.WriteByte('\n')
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := u.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// TestFormat_readable reads stores that earlier mce wrote: before blocks
// had a column directory (format 1, testdata/format1: two generated
// monthly files in 8 shards, five heavy users, table-zstd), before they
// had packed columns (format 2, testdata/format2: the same kind of
// store, 26 heavy users), before they had packed amounts (format 3,
// testdata/format3: the same kind again) and before their times were
// offsets from the block's earliest (format 4, testdata/format4: the
// same kind, 25 heavy users), and checks every row against the dump the
// code of that time made of it (rows.txt).
func TestFormat_readable(t *testing.T) {
	for _, name := range []string{"format1", "format2", "format3", "format4"} {
		t.Run(name, func(t *testing.T) {
			dir := copyFixture(t, name)
			db, err := Open(dir, quietOpts(Options{ReadOnly: true}))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			got := dumpRows(t, db, nil)
			golden := filepath.Join("testdata", name, "rows.txt")
			if *update && name == "format1" {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Fatalf("the rows of the %s store differ from %s:\n%s", name, golden, firstDiff(got, string(want)))
			}
			// Some columns only (those of the built-in features): the same rows
			// with the other fields left out.
			cols := []int{1, 2, 3, 4}
			var masked strings.Builder
			for _, l := range strings.SplitAfter(string(want), "\n") {
				if l == "" {
					continue
				}
				masked.WriteString(maskLine(t, l, cols))
			}
			if got := dumpRows(t, db, cols); got != masked.String() {
				t.Fatalf("the %s store read for columns %v:\n%s", name, cols, firstDiff(got, masked.String()))
			}
		})
	}
}

// TestLayout5_sameRows writes the rows of the format 2 fixture again,
// each (user, file) as one block of this code's layout, and reads them
// back: its UUIDs, times (as offsets) and amounts are packed, and every
// field comes back as it was.
func TestLayout5_sameRows(t *testing.T) {
	db, err := Open(copyFixture(t, "format2"), quietOpts(Options{ReadOnly: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	spans := []Span{db.HeavySpan()}
	for s := 0; s < db.Shards(); s++ {
		spans = append(spans, db.ShardSpan(s))
	}
	blocks, packed, amounts, times := 0, 0, 0, 0
	for _, sp := range spans {
		u, err := db.Users(context.Background(), sp, &UsersOptions{ByFile: true})
		if err != nil {
			t.Fatal(err)
		}
		for u.Next() {
			var rows []testRow
			it := u.Rows()
			for it.Next() {
				var fs [][]byte
				for _, f := range it.Fields() {
					fs = append(fs, slices.Clone(f))
				}
				rows = append(rows, testRow{line: it.Line(), fields: fs})
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
			b := decodeWritten(t, NewBlockWriter(len(rows[0].fields)), rows)
			checkBlock(t, b, rows)
			blocks++
			if len(b.text) > 0 {
				packed++
			}
			if len(b.AmountColumns()) > 0 {
				amounts++
			}
			if packedMode(t, rows, 3) == colTimeBase {
				times++
			}
		}
		if err := u.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if w := NewBlockWriter(1); w.Layout() != Layout5 || blocks == 0 || packed != blocks || amounts != blocks || times != blocks {
		t.Errorf("layout %d; %d of %d blocks with packed columns, %d with packed amounts, %d with times as offsets, want all",
			w.Layout(), packed, blocks, amounts, times)
	}
}

// maskLine replaces the fields of a rows.txt line that are not in cols
// with "-".
func maskLine(t *testing.T, line string, cols []int) string {
	t.Helper()
	var parts []string
	rest := strings.TrimSuffix(line, "\n")
	for rest != "" {
		rest = strings.TrimPrefix(rest, " ")
		var tok string
		if rest[0] == '"' {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("bad line %q: %v", line, err)
			}
			tok = q
		} else {
			tok, _, _ = strings.Cut(rest, " ")
		}
		parts = append(parts, tok)
		rest = rest[len(tok):]
	}
	// user, file, line, then the fields.
	for j := range parts[3:] {
		if !slices.Contains(cols, j) {
			parts[3+j] = "-"
		}
	}
	return strings.Join(parts, " ") + "\n"
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n got  %s\n want %s", i+1, gl, wl)
		}
	}
	return "(same lines)"
}
