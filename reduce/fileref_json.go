package reduce

import (
	"encoding/json"

	"github.com/mce-engine/mce/internal/fileid"
)

// fileRefJSON is fileRef's JSON form: a name that is not UTF-8 (bytes
// JSON strings cannot carry; encoding/json writes them as U+FFFD) also
// travels exactly, in base64, as name_bytes, as the store keeps it.
type fileRefJSON struct {
	fileRefAlias
	NameBytes []byte `json:"name_bytes,omitempty"`
}

type fileRefAlias fileRef

// MarshalJSON implements json.Marshaler.
func (f fileRef) MarshalJSON() ([]byte, error) {
	return json.Marshal(fileRefJSON{fileRefAlias: fileRefAlias(f), NameBytes: fileid.ExactBytes(f.Name)})
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *fileRef) UnmarshalJSON(b []byte) error {
	var j fileRefJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = fileRef(j.fileRefAlias)
	f.Name = fileid.FromJSON(f.Name, j.NameBytes)
	return nil
}
