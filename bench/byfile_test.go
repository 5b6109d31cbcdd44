package bench

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mce-engine/mce/internal/gen"
)

// TestCompareFiles_AsCompare checks that comparing file by file finds what
// one Compare of every file finds, in the same order: the differing rows
// of several files, a missing row, an extra row and a file only one side
// has.
func TestCompareFiles_AsCompare(t *testing.T) {
	data := t.TempDir()
	want := oracle(t, writeInvoices(t, data, 3, 600, 11))
	stems := map[string]bool{}
	for k := range want.Rows {
		stems[k.File] = true
	}
	if len(stems) != 3 {
		t.Fatalf("%d input files, want 3", len(stems))
	}
	keep := func(fs *Features) *PerFile {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "job0")
		writeMCEFeatures(t, dir, fs)
		p, err := MCEFiles(fs.System, dir)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ref := keep(want)
	same := keep(&Features{System: "reduce", Fields: want.Fields, Rows: want.Rows})
	if err := CompareFiles(ref, same, DefaultRelTol); err != nil {
		t.Fatalf("the same features: %v", err)
	}

	got := &Features{System: "reduce", Fields: want.Fields, Rows: map[Key]*Value{}}
	keys := slices.SortedFunc(func(yield func(Key) bool) {
		for k := range want.Rows {
			if !yield(k) {
				return
			}
		}
	}, func(a, b Key) int { return strings.Compare(a.File+"\x00"+a.User, b.File+"\x00"+b.User) })
	for i, k := range keys {
		v := *want.Rows[k]
		switch i % 7 {
		case 1:
			v.Count++
		case 3:
			v.Top += "X"
		case 5:
			continue // missing
		}
		got.Rows[k] = &v
	}
	extra := *want.Rows[keys[0]]
	got.Rows[Key{File: keys[0].File, User: "ZZZ990909ZZ9"}] = &extra
	got.Rows[Key{File: "invoices_2099_01", User: keys[0].User}] = &extra
	whole := Compare(want, got, DefaultRelTol)
	var we *MismatchError
	if !errors.As(whole, &we) || we.Count < 10 {
		t.Fatalf("Compare: %v, want many differences", whole)
	}
	perFile := CompareFiles(ref, keep(got), DefaultRelTol)
	if perFile == nil || perFile.Error() != whole.Error() {
		t.Fatalf("file by file:\n%v\nwhole:\n%v", perFile, whole)
	}
	var pe *MismatchError
	if !errors.As(perFile, &pe) || pe.Rows != we.Rows || pe.Count != we.Count {
		t.Errorf("file by file %+v, whole %+v", pe, we)
	}
}

// TestSplitFiles checks that a features CSV of every input file, split
// into one per file, reads back to what the whole one reads to.
func TestSplitFiles(t *testing.T) {
	duckNov := strings.ReplaceAll(strings.SplitAfterN(duckBody, "\n", 2)[1], "2024_12", "2024_11")
	unixNov := strings.ReplaceAll(unixBody, "2024_12", "2024_11")
	noFile := strings.ReplaceAll(strings.ReplaceAll(duckBody, "file,user", "path,user"), "/data/invoices", "/d/x")
	quoted := strings.Replace(duckBody, `"PEÑA,X"`, `"PE""ÑA,
X"`, 1)
	for _, tc := range []struct {
		name, body string
		header     bool
		fields     FieldSet
		read       func(string) (*Features, error)
		stems      []string
	}{
		{"duckdb", duckBody + duckNov, true, AllFields, ReadDuckDBOutput, []string{"invoices_2024_11", "invoices_2024_12"}},
		{"duckdb quoted", quoted, true, AllFields, ReadDuckDBOutput, []string{"invoices_2024_12"}},
		{"duckdb without a file column", noFile, true, AllFields, ReadDuckDBOutput, []string{""}},
		{"unix", unixNov + unixBody, false, UnixFields, ReadUnixOutput, []string{"invoices_2024_11", "invoices_2024_12"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, "features.csv", tc.body)
			whole, err := tc.read(path)
			if err != nil {
				t.Fatal(err)
			}
			p, err := splitFiles("sys", tc.fields, path, filepath.Join(dir, "by-file"), tc.header, tc.read)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("the whole CSV is gone: %v", err)
			}
			if !slices.Equal(p.Stems, tc.stems) {
				t.Errorf("stems %q, want %q", p.Stems, tc.stems)
			}
			for _, stem := range p.Stems {
				fs, err := p.Read(stem)
				if err != nil {
					t.Fatal(err)
				}
				for k := range fs.Rows {
					if k.File != stem {
						t.Errorf("file %q read back rows of %q", stem, k.File)
					}
				}
			}
			if fs, err := p.Read("invoices_1999_01"); err != nil || len(fs.Rows) != 0 {
				t.Errorf("a file without rows: %v, %v", fs, err)
			}
			all, err := p.All()
			if err != nil {
				t.Fatal(err)
			}
			if len(all.Rows) != len(whole.Rows) {
				t.Errorf("%d rows read back, want %d", len(all.Rows), len(whole.Rows))
			}
			if err := Compare(whole, all, 0); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestGate_ByFile runs the gate over kept features of two files, with the
// truth: every check's line counts the rows of both files, and a system
// that differs in the second file only fails it, naming that row.
func TestGate_ByFile(t *testing.T) {
	data := t.TempDir()
	want := oracle(t, writeInvoices(t, data, 2, 500, 5))
	writeTruth(t, data, want, 0)
	keep := func(system string, fs *Features) *Result {
		dir := filepath.Join(t.TempDir(), "job0")
		writeMCEFeatures(t, dir, fs)
		res := &Result{System: system, Status: StatusOK}
		if err := res.keepFeatures(MCEFiles(system, dir)); err != nil {
			t.Fatal(err)
		}
		return res
	}
	rep := &Report{Config: Config{Work: t.TempDir()}, Data: &Dataset{Truth: filepath.Join(data, gen.TruthFile)}}
	if _, err := os.Stat(rep.Data.Truth); err != nil {
		t.Fatal(err)
	}
	rep.Results = []*Result{keep(SysRun, want), keep(SysReduce, want)}
	if _, err := gate(rep); err != nil {
		t.Fatal(err)
	}
	n := len(want.Rows)
	for i, line := range []string{"run agrees with truth on %d rows", "reduce agrees with run on %d rows"} {
		if line = strings.Replace(line, "%d", strconv.Itoa(n), 1); i >= len(rep.Gate) || !strings.HasPrefix(rep.Gate[i], line) {
			t.Errorf("gate %q, want line %d to start %q", rep.Gate, i, line)
		}
	}
	var last Key
	for k := range want.Rows {
		if k.File > last.File || (k.File == last.File && k.User > last.User) {
			last = k
		}
	}
	bad := &Features{System: want.System, Fields: want.Fields, Rows: map[Key]*Value{}}
	for k, v := range want.Rows {
		c := *v
		if k == last {
			c.Distinct++
		}
		bad.Rows[k] = &c
	}
	rep = &Report{Config: rep.Config, Data: rep.Data, Results: []*Result{keep(SysRun, want), keep(SysReduce, bad)}}
	_, err := gate(rep)
	var me *MismatchError
	if !errors.As(err, &me) || me.Count != 1 || me.Rows != n || me.First[0].Key != last || me.First[0].Field != "distinct_receivers" {
		t.Fatalf("err %v, want reduce to differ on %v's distinct_receivers only", err, last)
	}
}
