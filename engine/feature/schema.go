package feature

import (
	"fmt"
	"strings"
)

// Encoding says how the text bytes of a file are to be read.
type Encoding uint8

const (
	// EncodingAuto treats a field as UTF-8 when it is valid UTF-8 and as
	// cp1252 (Windows-1252) otherwise. The decision is made per field, only
	// when a feature asks for text.
	EncodingAuto Encoding = iota
	// EncodingUTF8 is UTF-8; readers count rows with invalid UTF-8 as bad.
	EncodingUTF8
	// EncodingCP1252 is Windows-1252, as the real invoice data is written.
	EncodingCP1252
)

func (e Encoding) String() string {
	switch e {
	case EncodingAuto:
		return "auto"
	case EncodingUTF8:
		return "utf8"
	case EncodingCP1252:
		return "cp1252"
	}
	return fmt.Sprintf("Encoding(%d)", uint8(e))
}

// ParseEncoding reads an encoding name: auto, utf8 (utf-8) or cp1252
// (windows-1252).
func ParseEncoding(s string) (Encoding, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return EncodingAuto, nil
	case "utf8", "utf-8":
		return EncodingUTF8, nil
	case "cp1252", "windows-1252", "windows1252":
		return EncodingCP1252, nil
	}
	return 0, fmt.Errorf("unknown encoding %q (want auto, utf8 or cp1252)", s)
}

// Schema is the list of columns every row of a job has, in order, and which
// of them holds the user. Column names are canonical (lower-case); a
// reader maps each file's header onto them through aliases.
type Schema struct {
	cols []string
	user int
}

// Invoice column names: the default schema.
const (
	ColInvoiceID   = "invoice_id"
	ColIssuer      = "issuer"
	ColReceiver    = "receiver"
	ColIssuedAt    = "issued_at"
	ColAmount      = "amount"
	ColCurrency    = "currency"
	ColDescription = "description"
)

// InvoiceSchema is the default schema: the columns of an invoice file, with
// the issuer as the user.
var InvoiceSchema = MustSchema([]string{
	ColInvoiceID, ColIssuer, ColReceiver, ColIssuedAt, ColAmount, ColCurrency, ColDescription,
}, ColIssuer)

// NewSchema returns a schema of the given columns whose user column is
// user. Names are compared case-insensitively and stored lower-case.
func NewSchema(cols []string, user string) (*Schema, error) {
	if len(cols) == 0 {
		return nil, fmt.Errorf("schema has no columns")
	}
	s := &Schema{cols: make([]string, len(cols)), user: -1}
	seen := make(map[string]bool, len(cols))
	for i, c := range cols {
		c = strings.ToLower(strings.TrimSpace(c))
		if c == "" {
			return nil, fmt.Errorf("schema column %d has an empty name", i+1)
		}
		if seen[c] {
			return nil, fmt.Errorf("schema column %q appears twice", c)
		}
		seen[c] = true
		s.cols[i] = c
	}
	s.user = s.Index(user)
	if s.user < 0 {
		return nil, fmt.Errorf("user column %q is not one of the schema columns %v", user, s.cols)
	}
	return s, nil
}

// MustSchema is NewSchema that panics on error, for package-level values.
func MustSchema(cols []string, user string) *Schema {
	s, err := NewSchema(cols, user)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return s
}

// Len returns the number of columns.
func (s *Schema) Len() int { return len(s.cols) }

// Columns returns the column names in order. The caller must not modify it.
func (s *Schema) Columns() []string { return s.cols }

// Name returns the name of column i.
func (s *Schema) Name(i int) string { return s.cols[i] }

// Index returns the position of the named column, or -1.
func (s *Schema) Index(name string) int {
	name = strings.ToLower(strings.TrimSpace(name))
	for i, c := range s.cols {
		if c == name {
			return i
		}
	}
	return -1
}

// User returns the position of the user column.
func (s *Schema) User() int { return s.user }

// UserName returns the name of the user column.
func (s *Schema) UserName() string { return s.cols[s.user] }

// String returns the columns joined by commas, with the user column marked.
func (s *Schema) String() string {
	var b strings.Builder
	for i, c := range s.cols {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(c)
		if i == s.user {
			b.WriteString("(user)")
		}
	}
	return b.String()
}
