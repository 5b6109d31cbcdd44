package csvread

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// messyCSV makes a well-formed (RFC 4180) file for the small schema with
// the given delimiter: quoted fields with delimiters, quotes and newlines,
// non-ASCII text, empty lines, and rows with the wrong field count.
func messyCSV(rng *rand.Rand, delim byte, crlf bool, rows int) []byte {
	eol := "\n"
	if crlf {
		eol = "\r\n"
	}
	pieces := []string{"a", "b", "ñ", "José", " ", "x1", string(delim), "\"", "\n", ",", ";", "|", "\t", "12.5"}
	field := func() string {
		var s strings.Builder
		for range rng.IntN(6) {
			s.WriteString(pieces[rng.IntN(len(pieces))])
		}
		f := s.String()
		if strings.ContainsAny(f, string(delim)+"\"\n") || rng.IntN(5) == 0 {
			f = "\"" + strings.ReplaceAll(f, "\"", "\"\"") + "\""
		}
		return f
	}
	var b bytes.Buffer
	b.WriteString(strings.Join([]string{"id", "user", "amount"}, string(delim)) + eol)
	for i := range rows {
		if rng.IntN(10) == 0 {
			b.WriteString(eol)
		}
		n := 3
		if rng.IntN(8) == 0 {
			n = 1 + rng.IntN(5)
		}
		fs := []string{fmt.Sprint(i)}
		for len(fs) < n {
			fs = append(fs, field())
		}
		b.WriteString(strings.Join(fs[:n], string(delim)) + eol)
	}
	return b.Bytes()
}

// referenceRows reads data with encoding/csv: the rows of three fields
// (as "a|b|c" lines with their line numbers) and the count of the others.
func referenceRows(t *testing.T, data []byte, delim byte) (rows string, lines []int64, bad int64) {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = rune(delim)
	r.FieldsPerRecord = -1
	var b strings.Builder
	header := true
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if header {
			header = false
			continue
		}
		if len(rec) != 3 {
			bad++
			continue
		}
		line, _ := r.FieldPos(0)
		lines = append(lines, int64(line))
		b.WriteString(strings.Join(rec, "|") + "\n")
	}
	return b.String(), lines, bad
}

// TestFile_Scan_chunks checks, on many random files, that the rows do not
// depend on the chunk size or the number of workers, and that they are
// what encoding/csv reads.
func TestFile_Scan_chunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 60 {
		delim := delimiters[i%len(delimiters)]
		crlf := i%3 == 0
		data := messyCSV(rng, delim, crlf, 20+rng.IntN(200))
		path := writeTemp(t, "m.csv", data)
		opts := Options{Schema: smallSchema, MaxBadRowShare: -1, SampleBadRows: 1000}
		base, err := scanFile(t, path, opts, 1)
		if err != nil {
			t.Fatal(err)
		}
		if base.file.Delimiter != delim {
			t.Fatalf("file %d: sniffed %q, want %q", i, base.file.Delimiter, delim)
		}
		want := dump(base, nil)
		for _, chunk := range []int{1, 3, 64, 100 + rng.IntN(1000)} {
			for _, workers := range []int{1, 4} {
				opts.ChunkBytes = chunk
				res, err := scanFile(t, path, opts, workers)
				if got := dump(res, err); got != want {
					t.Fatalf("file %d, chunk %d, workers %d:\n%s\nwant\n%s\ninput:\n%s", i, chunk, workers, got, want, data)
				}
			}
		}
		if crlf {
			continue // encoding/csv turns "\r\n" in quoted fields into "\n"
		}
		rows, lines, bad := referenceRows(t, data, delim)
		if got := rowsString(base.raw); got != rows || fmt.Sprint(base.lines) != fmt.Sprint(lines) || base.stats.BadRows != bad {
			t.Fatalf("file %d: rows\n%s lines %v bad %d\nencoding/csv:\n%s lines %v bad %d\ninput:\n%s",
				i, got, base.lines, base.stats.BadRows, rows, lines, bad, data)
		}
	}
}

// TestScan_headBufferBack: the buffer Open read the header into goes back
// whole to reuse when the scan ends, so that the next file's Open takes
// it again. (Handed back as the data after the header, it was a little
// short of the size Open asks for, and every file made a new one.) The
// file fits in the head, so the scan makes no other buffer; the chunk
// size is one hugemem.MiB does not serve, and one no other test uses.
func TestScan_headBufferBack(t *testing.T) {
	const chunk = 3<<20 + 8
	path := writeTemp(t, "f.csv", []byte("id,user,amount\n"+strings.Repeat("1,u,2\n", 1000)))
	if _, err := scanFile(t, path, Options{Schema: smallSchema, ChunkBytes: chunk}, 2); err != nil {
		t.Fatal(err)
	}
	b := reuse.buf(chunk)
	if b == nil {
		t.Fatal("the head's buffer did not go back to reuse whole")
	}
	reuse.putBuf(b)
}

// TestOpen_closeGivesHeadBack: a file opened and closed without a scan
// (one that failed after its header, say) gives the header's buffer back,
// as a scan would.
func TestOpen_closeGivesHeadBack(t *testing.T) {
	const chunk = 7<<20 + 16
	path := writeTemp(t, "f.csv", []byte("id,user,amount\n1,u,2\n"))
	f, err := Open(path, Options{Schema: smallSchema, ChunkBytes: chunk})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	b := reuse.buf(chunk)
	if b == nil {
		t.Fatal("Close did not give the head's buffer back")
	}
	reuse.putBuf(b)
}
