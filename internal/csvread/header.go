package csvread

import "strings"

// SourceName returns the name schema column col has in the file's header,
// as the header wrote it ("Issuer_ID" for the canonical issuer, through
// an alias), without surrounding spaces; "" when the file has no such
// column.
func (f *File) SourceName(col int) string {
	if col < 0 || col >= len(f.colOf) || f.colOf[col] < 0 {
		return ""
	}
	return strings.TrimSpace(f.Header[f.colOf[col]])
}

// UserName returns the name the file's header gives the user column.
func (f *File) UserName() string { return f.SourceName(f.Schema.User()) }

// UserHeader opens the file at path, reads its header and returns the
// name it gives the user column, for a caller that does not read the rows
// (`mce reduce --key-name input`, whose rows come from a store).
func UserHeader(path string, opts Options) (string, error) {
	f, err := Open(path, opts)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return f.UserName(), nil
}
