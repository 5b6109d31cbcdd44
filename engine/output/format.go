package output

import (
	"fmt"
	"strings"

	"github.com/mce-engine/mce/engine/feature"
)

// Format is the file format of a features table.
type Format string

// Formats of a features table.
const (
	// CSV is RFC 4180 text: a header, then one line per user (the default).
	CSV Format = "csv"
	// Parquet is a typed, compressed column file (see parquetEncoder).
	Parquet Format = "parquet"
)

// ParseFormat reads a --format value: csv (or "") or parquet.
func ParseFormat(s string) (Format, error) {
	switch Format(strings.ToLower(strings.TrimSpace(s))) {
	case "", CSV:
		return CSV, nil
	case Parquet:
		return Parquet, nil
	}
	return "", fmt.Errorf("unknown output format %q (want csv or parquet)", s)
}

// Ext returns the format's file name extension, with its dot.
func (f Format) Ext() string {
	if f == Parquet {
		return ".parquet"
	}
	return ".csv"
}

// Name returns the name of a features file in this format, given the name
// the modes give it as CSV (package fileid: "jan.csv.features.csv"), so
// that the modes name files alike in every format: "jan.csv.features.parquet".
func (f Format) Name(csvName string) string {
	return strings.TrimSuffix(csvName, CSV.Ext()) + f.Ext()
}

// DefaultKeyName names the key column when nothing else does.
const DefaultKeyName = "user"

// KeyFromInput is the --key-name value that names the key column after
// the input's user column, as the input's header wrote it.
const KeyFromInput = "input"

// Options say how a features table is written. The zero value writes CSV
// whose key column is named "user" (or the Spec's KeyName).
type Options struct {
	// Format is CSV ("") or Parquet.
	Format Format `json:"format,omitempty"`
	// KeyName, if set, names the key column (--key-name NAME), over the
	// Spec's KeyName.
	KeyName string `json:"key_name,omitempty"`
	// KeyFromInput names the key column after the input's user column
	// (--key-name input) when neither KeyName nor the Spec's KeyName is
	// set: Writer.SetInputKeyName gives that name.
	KeyFromInput bool `json:"key_from_input,omitempty"`
	// RowGroupRows is the rows per Parquet row group (default
	// DefaultRowGroupRows).
	RowGroupRows int `json:"row_group_rows,omitempty"`
}

// ParseKeyName reads a --key-name value into o: "" or "user" keep the
// default (the Spec's KeyName, else "user", so that the CSV bytes of a
// job that does not ask stay as they were), "input" takes the input's
// name for its user column, anything else is the name itself.
func (o *Options) ParseKeyName(s string) error {
	s = strings.TrimSpace(s)
	o.KeyName, o.KeyFromInput = "", false
	switch s {
	case "", DefaultKeyName:
	case KeyFromInput:
		o.KeyFromInput = true
	default:
		if err := checkKeyName(s); err != nil {
			return err
		}
		o.KeyName = s
	}
	return nil
}

// ResolveKeyName returns the key column's name for spec under o, with
// input the name the input gave its user column ("" when unknown): o's
// KeyName, else the Spec's KeyName, else (KeyFromInput) input, else
// DefaultKeyName.
func (o Options) ResolveKeyName(spec *feature.Spec, input string) string {
	switch {
	case o.KeyName != "":
		return o.KeyName
	case spec.KeyName != "":
		return spec.KeyName
	case o.KeyFromInput && strings.TrimSpace(input) != "":
		return strings.TrimSpace(input)
	}
	return DefaultKeyName
}

// checkKeyName refuses a key column name that no table can have.
func checkKeyName(s string) error {
	if strings.TrimSpace(s) == "" || strings.ContainsAny(s, "\"\n\r") {
		return fmt.Errorf("key column name %q: want a non-empty name without quotes or line breaks", s)
	}
	return nil
}

// checkKeyAgainst refuses a key name that is also one of the Spec's
// columns (readers such as DuckDB compare names without case).
func checkKeyAgainst(key string, spec *feature.Spec) error {
	if err := checkKeyName(key); err != nil {
		return err
	}
	for _, c := range spec.Columns {
		if strings.EqualFold(c.Name, key) {
			return fmt.Errorf("key column name %q is also a feature column of %s: give another with --key-name", key, spec.Name)
		}
	}
	return nil
}
