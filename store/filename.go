package store

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/mce-engine/mce/internal/fileid"
)

// A file's name and path are bytes, and JSON strings carry only UTF-8:
// encoding/json writes each byte that is not UTF-8 as U+FFFD. So a
// FileEntry whose Name or Path is not UTF-8 also carries it exactly, in
// base64, as name_bytes or path_bytes; "name" and "path" keep the text a
// person or an older mce reads. Records without them (every name UTF-8,
// or a store written before) read as they always did.
type fileEntryJSON struct {
	fileEntryAlias
	NameBytes []byte `json:"name_bytes,omitempty"`
	PathBytes []byte `json:"path_bytes,omitempty"`
}

type fileEntryAlias FileEntry

// MarshalJSON implements json.Marshaler.
func (f FileEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal(fileEntryJSON{fileEntryAlias: fileEntryAlias(f),
		NameBytes: fileid.ExactBytes(f.Name), PathBytes: fileid.ExactBytes(f.Path)})
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *FileEntry) UnmarshalJSON(b []byte) error {
	var j fileEntryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = FileEntry(j.fileEntryAlias)
	f.Name, f.Path = fileid.FromJSON(f.Name, j.NameBytes), fileid.FromJSON(f.Path, j.PathBytes)
	return nil
}

// jsonText is the text encoding/json writes for s: every byte that is
// not UTF-8 becomes U+FFFD. A store written before name_bytes recorded a
// name that is not UTF-8 so.
func jsonText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+w])
		}
		i += w
	}
	return b.String()
}
