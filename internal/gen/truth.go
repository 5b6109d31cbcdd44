package gen

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/mce-engine/mce/engine/feature"
)

// Truth is one line of truth.csv: what one file holds for one issuer,
// over its good rows.
type Truth struct {
	File        string // base name
	User        string // UTF-8
	Rows        int64
	AmountCents int64
}

// FileTruth is one line of truth_files.csv.
type FileTruth struct {
	File        string
	Rows        int64 // good data rows
	BadRows     int64
	Users       int
	AmountCents int64
	Bytes       int64 // uncompressed, header included
	Compression string
	Delimiter   byte
	Encoding    feature.Encoding
	DiskBytes   int64
}

// ReadTruth reads dir/truth.csv.
func ReadTruth(dir string) ([]Truth, error) {
	var out []Truth
	err := EachTruthIn(filepath.Join(dir, TruthFile), func(t Truth) error {
		out = append(out, t)
		return nil
	})
	return out, err
}

// EachTruthIn calls fn with each line of a file of truth.csv's format at
// path in turn, holding none of them: the lines of a big generated input
// are many.
func EachTruthIn(path string, fn func(Truth) error) error {
	return readCSV(path, []string{"file", "user", "rows", "amount_total"}, func(rec []string) error {
		rows, err := strconv.ParseInt(rec[2], 10, 64)
		if err != nil {
			return fmt.Errorf("rows: %w", err)
		}
		cents, err := ParseCents(rec[3])
		if err != nil {
			return err
		}
		return fn(Truth{File: rec[0], User: rec[1], Rows: rows, AmountCents: cents})
	})
}

// ReadTruthFiles reads dir/truth_files.csv.
func ReadTruthFiles(dir string) ([]FileTruth, error) {
	var out []FileTruth
	hdr := []string{"file", "rows", "bad_rows", "users", "amount_total", "bytes", "compression", "delimiter", "encoding", "disk_bytes"}
	err := readCSV(filepath.Join(dir, TruthFilesFile), hdr, func(rec []string) error {
		var ints [6]int64
		for i, col := range []int{1, 2, 3, 5, 9} {
			v, err := strconv.ParseInt(rec[col], 10, 64)
			if err != nil {
				return fmt.Errorf("%s: %w", hdr[col], err)
			}
			ints[i] = v
		}
		cents, err := ParseCents(rec[4])
		if err != nil {
			return err
		}
		d, err := ParseDelimiter(rec[7])
		if err != nil {
			return err
		}
		enc, err := feature.ParseEncoding(rec[8])
		if err != nil {
			return err
		}
		comp := rec[6]
		if comp == "none" {
			comp = CompressNone
		}
		out = append(out, FileTruth{File: rec[0], Rows: ints[0], BadRows: ints[1], Users: int(ints[2]),
			AmountCents: cents, Bytes: ints[3], Compression: comp, Delimiter: d, Encoding: enc, DiskBytes: ints[4]})
		return nil
	})
	return out, err
}

func readCSV(path string, header []string, fn func(rec []string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = len(header)
	r.ReuseRecord = true
	rec, err := r.Read()
	if err != nil {
		return fmt.Errorf("%s: header: %w", path, err)
	}
	if !slices.Equal(rec, header) {
		return fmt.Errorf("%s: header %q, want %q", path, rec, header)
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := fn(rec); err != nil {
			line, _ := r.FieldPos(0)
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
}

// ParseCents reads a decimal amount with at most 2 fraction digits
// ("1234.5", "-0.07", "12") as an exact number of cents.
func ParseCents(s string) (int64, error) {
	neg := false
	t := s
	if len(t) > 0 && (t[0] == '-' || t[0] == '+') {
		neg = t[0] == '-'
		t = t[1:]
	}
	var cents int64
	digits, frac := 0, -1
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '.' && frac < 0:
			frac = 0
		case c >= '0' && c <= '9':
			if frac >= 0 {
				frac++
				if frac > 2 {
					return 0, fmt.Errorf("amount %q: more than 2 fraction digits", s)
				}
			}
			digits++
			if cents > (1<<63-1-9)/10 {
				return 0, fmt.Errorf("amount %q: too large", s)
			}
			cents = cents*10 + int64(c-'0')
		default:
			return 0, fmt.Errorf("amount %q: not a decimal number", s)
		}
	}
	if digits == 0 {
		return 0, fmt.Errorf("amount %q: not a decimal number", s)
	}
	for frac = max(frac, 0); frac < 2; frac++ {
		if cents > (1<<63-1)/10 {
			return 0, fmt.Errorf("amount %q: too large", s)
		}
		cents *= 10
	}
	if neg {
		cents = -cents
	}
	return cents, nil
}
