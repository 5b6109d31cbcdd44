package bench

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/mce-engine/mce/internal/fileid"
)

// Field is one built-in invoice feature, in output column order. The
// values are those of engine/feature's invoice set.
type Field uint8

// The fields of the built-in invoice features.
const (
	FieldCount Field = iota
	FieldTotal
	FieldMean
	FieldStd
	FieldMin
	FieldMax
	FieldDistinct
	FieldFirst
	FieldLast
	FieldTop
	FieldTopAmount
	FieldBadRows
	numFields
)

var fieldNames = [numFields]string{
	"invoice_count", "amount_total", "amount_mean", "amount_std", "amount_min", "amount_max",
	"distinct_receivers", "first_issued", "last_issued", "top_receiver", "top_receiver_amount", "bad_rows",
}

func (f Field) String() string {
	if f < numFields {
		return fieldNames[f]
	}
	return fmt.Sprintf("Field(%d)", uint8(f))
}

// FieldSet is a set of fields, one bit each.
type FieldSet uint32

// Has reports whether f is in the set.
func (s FieldSet) Has(f Field) bool { return s&(1<<f) != 0 }

// Fields of a set, in column order.
func (s FieldSet) Fields() []Field {
	var out []Field
	for f := Field(0); f < numFields; f++ {
		if s.Has(f) {
			out = append(out, f)
		}
	}
	return out
}

// Field sets of the systems.
const (
	// AllFields are the built-in invoice features: mce run, mce reduce,
	// DuckDB.
	AllFields FieldSet = 1<<numFields - 1
	// UnixFields are what the sort | awk baseline computes.
	UnixFields FieldSet = 1<<FieldCount | 1<<FieldTotal | 1<<FieldMin | 1<<FieldMax | 1<<FieldDistinct |
		1<<FieldFirst | 1<<FieldLast | 1<<FieldTop | 1<<FieldTopAmount
	// TruthFields are what the generator's truth.csv holds.
	TruthFields FieldSet = 1<<FieldCount | 1<<FieldTotal
)

// Key names one output row: the input file (its stem, see FileStem) and
// the user, in UTF-8.
type Key struct {
	File string
	User string
}

// Value is one user's features in one file. Amounts are exact integers in
// units of 1e-4 (the built-in set keeps 4 fraction digits); times are Unix
// nanoseconds. Set says which fields are present: a system that does not
// compute a field, and an empty cell (no amount; one row for the standard
// deviation), leave it out.
type Value struct {
	Set                        FieldSet
	Count, Distinct, BadRows   int64
	Total, Min, Max, TopAmount int64
	Mean, Std                  float64
	First, Last                int64
	Top                        string
}

// Features are a system's output: a value per file and user, and which
// fields the system computes.
type Features struct {
	System string
	Fields FieldSet
	Rows   map[Key]*Value
}

// FileStem reduces an input or output file name to the input's stem, so
// that "invoices_2024_12.csv", ".../invoices_2024_12.csv.zst" and
// "invoices_2024_12.features.csv" all give "invoices_2024_12".
func FileStem(name string) string {
	name = fileid.Base(strings.TrimSuffix(filepath.Base(name), fileid.FeaturesSuffix))
	for _, ext := range []string{".csv", ".tsv", ".txt"} {
		name = strings.TrimSuffix(name, ext)
	}
	return name
}

// toUTF8 returns s as UTF-8: unchanged when it already is, else decoded
// from cp1252, the way mce reads text with the automatic encoding.
func toUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	out, err := charmap.Windows1252.NewDecoder().String(s)
	if err != nil {
		return s
	}
	return out
}

// parseUnits reads a decimal ("1234.5", "-0.25", "1.2345e+06") as an
// exact integer in units of 1e-4. Plain decimals are read digit by digit;
// a float in exponent form, as Go's shortest formatting writes large
// totals, is rounded to the nearest unit, exact below 2^52 units.
func parseUnits(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("amount %q: %w", s, err)
		}
		if math.Abs(f) >= 1<<52/1e4 {
			return 0, fmt.Errorf("amount %q: too large to be exact", s)
		}
		return int64(math.Round(f * 1e4)), nil
	}
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" && frac == "" {
		return 0, fmt.Errorf("amount %q: no digits", s)
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > 4 {
		return 0, fmt.Errorf("amount %q: more than 4 fraction digits", s)
	}
	var v int64
	for _, part := range []string{intPart, frac + strings.Repeat("0", 4-len(frac))} {
		for i := 0; i < len(part); i++ {
			c := part[i]
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("amount %q: not a decimal", s)
			}
			if v > (math.MaxInt64-9)/10 {
				return 0, fmt.Errorf("amount %q: too large", s)
			}
			v = v*10 + int64(c-'0')
		}
	}
	if neg {
		v = -v
	}
	return v, nil
}

// formatUnits writes units of 1e-4 as a decimal, for messages.
func formatUnits(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%04d", sign, v/1e4, v%1e4)
}

// parseTime reads an issue time as mce writes it (RFC 3339, UTC) or as
// the input and DuckDB write it ("2006-01-02 15:04:05", taken as UTC).
func parseTime(s string) (int64, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixNano(), nil
		}
	}
	return 0, fmt.Errorf("time %q: want RFC 3339 or 2006-01-02 15:04:05", s)
}

// column readers by field kind.
func setField(v *Value, f Field, cell string) error {
	if cell == "" {
		return nil
	}
	var err error
	switch f {
	case FieldCount:
		v.Count, err = strconv.ParseInt(cell, 10, 64)
	case FieldDistinct:
		v.Distinct, err = strconv.ParseInt(cell, 10, 64)
	case FieldBadRows:
		v.BadRows, err = strconv.ParseInt(cell, 10, 64)
	case FieldTotal:
		v.Total, err = parseUnits(cell)
	case FieldMin:
		v.Min, err = parseUnits(cell)
	case FieldMax:
		v.Max, err = parseUnits(cell)
	case FieldTopAmount:
		v.TopAmount, err = parseUnits(cell)
	case FieldMean:
		v.Mean, err = strconv.ParseFloat(cell, 64)
	case FieldStd:
		v.Std, err = strconv.ParseFloat(cell, 64)
	case FieldFirst:
		v.First, err = parseTime(cell)
	case FieldLast:
		v.Last, err = parseTime(cell)
	case FieldTop:
		v.Top = toUTF8(cell)
	default:
		return fmt.Errorf("BUG: no reader for field %v", f)
	}
	if err != nil {
		return fmt.Errorf("%v: %w", f, err)
	}
	v.Set |= 1 << f
	return nil
}

// columnName is a header cell as csvTable looks it up: without a byte
// order mark or spaces, in lower case.
func columnName(h string) string {
	return strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
}

// csvTable reads a CSV file with a header and calls row for every record,
// with the column index of each header name.
func csvTable(path string, row func(col map[string]int, rec []string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = true
	head, err := r.Read()
	if err != nil {
		return fmt.Errorf("%s: header: %w", path, err)
	}
	col := make(map[string]int, len(head))
	for i, h := range head {
		col[columnName(h)] = i
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := row(col, rec); err != nil {
			line, _ := r.FieldPos(0)
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
}

// readFeatureCSV adds the rows of one features CSV (a user column, or a
// file and a user column, and any of the invoice feature columns) to fs.
// file is the stem used when the CSV has no file column.
func readFeatureCSV(fs *Features, path, file string) error {
	return csvTable(path, func(col map[string]int, rec []string) error {
		ui, ok := col["user"]
		if !ok {
			ui, ok = col["issuer"]
		}
		if !ok {
			// mce names its key column, the first, after the input's
			// user column (issuer_id, RFC_Emisor…); a file column may
			// come before it.
			ui = 0
			if fi, ok := col["file"]; ok && fi == 0 {
				ui = 1
			}
			if ui >= len(rec) {
				return errors.New("no user column")
			}
		}
		k := Key{File: file, User: toUTF8(rec[ui])}
		if fi, ok := col["file"]; ok {
			k.File = FileStem(rec[fi])
		}
		if _, dup := fs.Rows[k]; dup {
			return fmt.Errorf("file %s user %q appears twice", k.File, k.User)
		}
		v := &Value{}
		for _, f := range fs.Fields.Fields() {
			i, ok := col[f.String()]
			if !ok {
				return fmt.Errorf("no %v column", f)
			}
			if err := setField(v, f, rec[i]); err != nil {
				return err
			}
		}
		fs.Rows[k] = v
		return nil
	})
}

// ReadDuckDBOutput reads the CSV the DuckDB script writes: a file column,
// the user and every built-in feature.
func ReadDuckDBOutput(path string) (*Features, error) {
	fs := &Features{System: "duckdb", Fields: AllFields, Rows: map[Key]*Value{}}
	if err := readFeatureCSV(fs, path, ""); err != nil {
		return nil, err
	}
	return fs, nil
}

// ReadUnixOutput reads the lines the awk program prints, one file after
// another: file,user,invoice_count,amount_total,amount_min,amount_max,
// distinct_receivers,first_issued,last_issued,top_receiver,
// top_receiver_amount, amounts in integer cents, text as in the input.
func ReadUnixOutput(path string) (*Features, error) {
	fs := &Features{System: "unix", Fields: UnixFields, Rows: map[Key]*Value{}}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 11
	r.ReuseRecord = true
	order := []Field{FieldCount, FieldTotal, FieldMin, FieldMax, FieldDistinct, FieldFirst, FieldLast, FieldTop, FieldTopAmount}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return fs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		k := Key{File: FileStem(rec[0]), User: toUTF8(rec[1])}
		if _, dup := fs.Rows[k]; dup {
			return nil, fmt.Errorf("%s:%d: file %s user %q appears twice (input not sorted by user?)", path, line, k.File, k.User)
		}
		v := &Value{}
		for i, fld := range order {
			cell := rec[i+2]
			switch fld {
			case FieldTotal, FieldMin, FieldMax, FieldTopAmount:
				cents, err := strconv.ParseInt(cell, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: %v %q: want integer cents", path, line, fld, cell)
				}
				cell = formatUnits(cents * 100)
			}
			if err := setField(v, fld, cell); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
		}
		fs.Rows[k] = v
	}
}
