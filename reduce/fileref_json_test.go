package reduce

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestFileRef_JSON checks that a plan's file names go through JSON byte
// for byte, UTF-8 or not, and that a plan written before name_bytes reads.
func TestFileRef_JSON(t *testing.T) {
	for _, name := range []string{"a.csv", "bad\xffbyte.csv", "\xc3", "ñ \ufffd.csv"} {
		in := taskArgs{Store: "s", Files: []fileRef{{ID: 3, Name: name, Fingerprint: "sampled:01"}}}
		b, err := json.Marshal(&in)
		if err != nil {
			t.Fatal(err)
		}
		var out taskArgs
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Files) != 1 || out.Files[0] != in.Files[0] {
			t.Errorf("%q: read back as %+v (%s)", name, out.Files, b)
		}
		if hasBytes := strings.Contains(string(b), "name_bytes"); hasBytes != (name == "bad\xffbyte.csv" || name == "\xc3") {
			t.Errorf("%q: %s", name, b)
		}
	}
	var old fileRef
	if err := json.Unmarshal([]byte(`{"id":1,"name":"x.csv","fingerprint":"f"}`), &old); err != nil || old != (fileRef{ID: 1, Name: "x.csv", Fingerprint: "f"}) {
		t.Errorf("an older plan's file reads as %+v, %v", old, err)
	}
}
