package csvread

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListInputs(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(strings.Repeat("x", size)), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write("a.csv", 10)
	write("b.CSV.gz", 30)
	write("sub/c.tsv.zst", 20)
	write("sub/deeper/d.txt", 40)
	write("sub/e.json", 50)          // not data
	write("sub/.hidden.csv", 60)     // hidden
	write(".git/objects/f.csv", 70)  // in a hidden directory
	write("notes.csv.bak", 80)       // not data
	named := write("other/g.dat", 5) // named on the command line: taken
	ins, err := ListInputs([]string{dir, named, filepath.Join(dir, "a.csv")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range ins {
		rel, _ := filepath.Rel(dir, in.Path)
		got = append(got, rel+":"+strings.Repeat("#", int(in.Size)/5))
	}
	want := "sub/deeper/d.txt:######## b.CSV.gz:###### sub/c.tsv.zst:#### a.csv:## other/g.dat:#"
	if strings.Join(got, " ") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(got, " "), want)
	}

	_, err = ListInputs([]string{dir, filepath.Join(dir, "missing.csv")})
	if err == nil || err.Error() != "input "+filepath.Join(dir, "missing.csv")+": no such file or directory" {
		t.Fatalf("missing file: %v", err)
	}
	ins, err = ListInputs(nil)
	if err != nil || len(ins) != 0 {
		t.Fatalf("no paths: %v %v", ins, err)
	}
}

func TestIsDataFile(t *testing.T) {
	f := func(name string, want bool) {
		t.Helper()
		if IsDataFile(name) != want {
			t.Fatalf("IsDataFile(%q) = %v", name, !want)
		}
	}
	f("a.csv", true)
	f("a.TSV", true)
	f("a.txt.gz", true)
	f("a.csv.zst", true)
	f("a.gz", false)
	f("a.csv.gz.bak", false)
	f("a.parquet", false)
	f("a.csv.gz.zst", false)
}
