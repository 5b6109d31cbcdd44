package store

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileEntry_NameBytes checks that names and paths that are not UTF-8
// go through the JSON of a file record byte for byte, that UTF-8 ones
// are written as before (no name_bytes), and that a record of a store
// written before name_bytes (the name as JSON text) still reads.
func TestFileEntry_NameBytes(t *testing.T) {
	for _, c := range []struct{ name, path string }{
		{"plain.csv", "/in/plain.csv"},
		{"bad\xffbyte.csv", "/in/bad\xffbyte.csv"},
		{"\xc3", "/in/\xc3"}, // a cut rune
		{"ok ñ.csv", "/in/\xfe/ok ñ.csv"},
		{"new\nline \"quoted\" \ufffd.csv", "/in/x"},
	} {
		b, err := json.Marshal(FileEntry{ID: 7, Name: c.name, Path: c.path, Rows: 3})
		if err != nil {
			t.Fatal(err)
		}
		var got FileEntry
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.Name != c.name || got.Path != c.path || got.ID != 7 || got.Rows != 3 {
			t.Errorf("%q, %q: read back as %q, %q (%s)", c.name, c.path, got.Name, got.Path, b)
		}
		if strings.Contains(string(b), "name_bytes") != !utfValid(c.name) || strings.Contains(string(b), "path_bytes") != !utfValid(c.path) {
			t.Errorf("%q, %q: %s", c.name, c.path, b)
		}
	}
	var old FileEntry
	if err := json.Unmarshal([]byte(`{"id":2,"name":"bad\ufffdbyte.csv","path":"p","rows":5}`), &old); err != nil || old.Name != "bad\ufffdbyte.csv" || old.Rows != 5 {
		t.Errorf("an old record reads as %+v, %v", old, err)
	}
}

func utfValid(s string) bool { return jsonText(s) == s }

// TestDB_NameNotUTF8 ingests a file whose name is not UTF-8: the store
// finds it by that name after it is opened again, and its MANIFEST.json
// holds the exact bytes. A store written before (its records holding the
// name as JSON text) finds the file by its real name too, so that
// partition skips it instead of ingesting it again.
func TestDB_NameNotUTF8(t *testing.T) {
	db, dir := createStore(t)
	name := "bad\xffbyte.csv"
	loadFile(t, db, 1, name, map[string][]string{"u1": amounts("1", 3)}, nil)
	db.Close()
	db, err := Open(dir, quietOpts(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := db.FileByName(name); !ok || f.Name != name {
		t.Errorf("FileByName(%q) = %q, %v", name, f.Name, ok)
	}
	if _, ok := db.FileByName("bad\xfebyte.csv"); ok {
		t.Error("another name that is not UTF-8 finds the file")
	}
	m, err := readManifestFile(db.fs, dir)
	db.Close()
	if err != nil || len(m.Files) != 1 || m.Files[0].Name != name {
		t.Fatalf("MANIFEST.json: %+v, %v", m, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil || !strings.Contains(string(b), `"name": "bad\ufffdbyte.csv"`) || !strings.Contains(string(b), `"name_bytes": "YmFk/2J5dGUuY3N2"`) {
		t.Errorf("MANIFEST.json does not hold the name as text and as bytes:\n%s", b)
	}

	// The same file in a store written before: its record holds the JSON
	// text of the name only.
	old := FileEntry{ID: 1, Name: jsonText(name)}
	db2, _ := createStore(t)
	db2.mu.Lock()
	db2.files[1] = &old
	db2.mu.Unlock()
	if f, ok := db2.FileByName(name); !ok || f.ID != 1 {
		t.Errorf("old record: FileByName(%q) = %+v, %v", name, f, ok)
	}
}
