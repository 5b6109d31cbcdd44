package bench

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mce-engine/mce/internal/gen"
)

func TestParseUnits(t *testing.T) {
	f := func(in string, want int64, wantErr bool) {
		t.Helper()
		got, err := parseUnits(in)
		if (err != nil) != wantErr || got != want {
			t.Errorf("parseUnits(%q) = %d, %v; want %d, error %v", in, got, err, want, wantErr)
		}
	}
	f("1234.56", 12345600, false)
	f("1234.5600", 12345600, false)
	f("0.0001", 1, false)
	f("-2.5", -25000, false)
	f("7", 70000, false)
	f(".5", 5000, false)
	f("1.23456789e+06", 12345678900, false) // Go's shortest form of a large total
	f("6.11523e+03", 61152300, false)
	f("1.00001", 0, true) // more than 4 fraction digits
	f("12a", 0, true)
	f("", 0, true)
	f("1e300", 0, true)
}

func TestParseTime(t *testing.T) {
	want := time.Date(2024, 12, 1, 6, 2, 3, 0, time.UTC).UnixNano()
	for _, in := range []string{"2024-12-01T06:02:03Z", "2024-12-01 06:02:03", "2024-12-01T06:02:03"} {
		got, err := parseTime(in)
		if err != nil || got != want {
			t.Errorf("parseTime(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseTime("01/12/2024"); err == nil {
		t.Error("parseTime accepted 01/12/2024")
	}
}

func TestFileStem(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := FileStem(in); got != want {
			t.Errorf("FileStem(%q) = %q, want %q", in, got, want)
		}
	}
	f("invoices_2024_12.csv", "invoices_2024_12")
	f("/d/x/invoices_2024_12.csv.zst", "invoices_2024_12")
	f("out/run0/invoices_2024_12.csv.features.csv", "invoices_2024_12")
	f("invoices_2024_12.features.csv", "invoices_2024_12")
	f("jan.tsv.gz", "jan")
}

func TestToUTF8(t *testing.T) {
	if got := toUTF8("PE\xd1A900202CD4"); got != "PEÑA900202CD4" {
		t.Errorf("cp1252 Ñ decoded to %q", got)
	}
	if got := toUTF8("PEÑA900202CD4"); got != "PEÑA900202CD4" {
		t.Errorf("UTF-8 changed to %q", got)
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const mceHeader = "user,invoice_count,amount_total,amount_mean,amount_std,amount_min,amount_max,distinct_receivers,first_issued,last_issued,top_receiver,top_receiver_amount,bad_rows\n"

// The same two users as mce writes them, as DuckDB writes them and as the
// awk program prints them.
const (
	mceBody = mceHeader +
		"A&B010101AA1,2,1.23456789e+06,617283.945,872852.0,0.01,1234567.88,2,2024-12-01T00:00:00Z,2024-12-02T10:00:00Z,CLI010101AA1,1234567.88,0\n" +
		"\"PEÑA,X\",1,10.5,10.5,,10.5,10.5,1,2024-12-03T00:00:00Z,2024-12-03T00:00:00Z,MUÑO040404DD4,10.5,0\n"
	duckBody = "file,user,invoice_count,amount_total,amount_mean,amount_std,amount_min,amount_max,distinct_receivers,first_issued,last_issued,top_receiver,top_receiver_amount,bad_rows\n" +
		"/data/invoices_2024_12.csv,A&B010101AA1,2,1234567.8900,617283.9450000001,872852.0000000001,0.0100,1234567.8800,2,2024-12-01 00:00:00,2024-12-02 10:00:00,CLI010101AA1,1234567.8800,0\n" +
		"/data/invoices_2024_12.csv,\"PEÑA,X\",1,10.5000,10.5,,10.5000,10.5000,1,2024-12-03 00:00:00,2024-12-03 00:00:00,MUÑO040404DD4,10.5000,0\n"
	unixBody = "invoices_2024_12.csv,A&B010101AA1,2,123456789,1,123456788,2,2024-12-01 00:00:00,2024-12-02 10:00:00,CLI010101AA1,123456788\n" +
		"invoices_2024_12.csv,\"PEÑA,X\",1,1050,1050,1050,1,2024-12-03 00:00:00,2024-12-03 00:00:00,MU\xd1O040404DD4,1050\n"
)

func readAllThree(t *testing.T, mce, duck, unix string) (m, d, u *Features) {
	t.Helper()
	dir := t.TempDir()
	run := filepath.Join(dir, "run0")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, run, "invoices_2024_12.csv.features.csv", mce)
	writeFile(t, run, "timings.csv", "not features\n")
	kept, err := MCEFiles("run", run)
	if err != nil {
		t.Fatal(err)
	}
	if m, err = kept.All(); err != nil {
		t.Fatal(err)
	}
	if d, err = ReadDuckDBOutput(writeFile(t, dir, "duck.csv", duck)); err != nil {
		t.Fatal(err)
	}
	if u, err = ReadUnixOutput(writeFile(t, dir, "unix.csv", unix)); err != nil {
		t.Fatal(err)
	}
	return m, d, u
}

func TestReadOutputs(t *testing.T) {
	m, d, u := readAllThree(t, mceBody, duckBody, unixBody)
	k := Key{File: "invoices_2024_12", User: "A&B010101AA1"}
	for _, fs := range []*Features{m, d, u} {
		v := fs.Rows[k]
		if v == nil {
			t.Fatalf("%s: no row %v in %v", fs.System, k, fs.Rows)
		}
		if v.Count != 2 || v.Total != 12345678900 || v.Min != 100 || v.Top != "CLI010101AA1" {
			t.Errorf("%s: %+v", fs.System, v)
		}
		if one := fs.Rows[Key{File: "invoices_2024_12", User: "PEÑA,X"}]; one == nil || one.Top != "MUÑO040404DD4" {
			t.Errorf("%s: quoted user or cp1252 receiver misread: %+v", fs.System, one)
		} else if fs.Fields.Has(FieldStd) && one.Set.Has(FieldStd) {
			t.Errorf("%s: an empty std is read as set", fs.System)
		}
	}
	for _, got := range []*Features{d, u} {
		if err := Compare(m, got, DefaultRelTol); err != nil {
			t.Errorf("%v", err)
		}
	}
}

func TestReadOutputs_Errors(t *testing.T) {
	dir := t.TempDir()
	if _, err := MCEFiles("run", dir); err == nil {
		t.Error("no error for a run folder without features files")
	}
	p := writeFile(t, dir, "dup.csv", unixBody+strings.SplitAfter(unixBody, "\n")[0])
	if _, err := ReadUnixOutput(p); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("err %v, want a duplicate row error", err)
	}
	p = writeFile(t, dir, "bad.csv", "x,A,notanumber,1,1,1,1,2024-12-01 00:00:00,2024-12-01 00:00:00,R,1\n")
	if _, err := ReadUnixOutput(p); err == nil || !strings.Contains(err.Error(), "bad.csv:1") {
		t.Errorf("err %v, want one naming the file and line", err)
	}
}

func TestCompare_Mismatch(t *testing.T) {
	f := func(name, mce, duck, unix, wantField string) {
		t.Helper()
		m, d, u := readAllThree(t, mce, duck, unix)
		errD, errU := Compare(m, d, DefaultRelTol), Compare(m, u, DefaultRelTol)
		err := errD
		if err == nil {
			err = errU
		}
		var me *MismatchError
		if !errors.As(err, &me) {
			t.Fatalf("%s: err %v, want a *MismatchError", name, err)
		}
		if me.Count != 1 || len(me.First) != 1 || !strings.Contains(me.First[0].Field, wantField) {
			t.Errorf("%s: %v, want one row differing in %s", name, err, wantField)
		}
		if !strings.Contains(err.Error(), "A&B010101AA1") && !strings.Contains(err.Error(), "PEÑA,X") {
			t.Errorf("%s: message does not show the row: %v", name, err)
		}
	}
	// A total off by one cent in the awk output.
	f("total", mceBody, duckBody, strings.Replace(unixBody, ",2,123456789,", ",2,123456790,", 1), "amount_total")
	// A std beyond the tolerance in DuckDB (1e-9 relative).
	f("std", mceBody, strings.Replace(duckBody, "872852.0000000001", "872852.001", 1), unixBody, "amount_std")
	// A top receiver tie broken the other way.
	f("top", mceBody, strings.Replace(duckBody, "CLI010101AA1", "ZZZ990909ZZ9", 1), unixBody, "top_receiver")
	// A user missing from DuckDB.
	f("row", mceBody, strings.Join(strings.SplitAfter(duckBody, "\n")[:2], ""), unixBody, "only in run")
	// A std present on one side only.
	f("empty", mceBody, strings.Replace(duckBody, "10.5,,10.5000", "10.5,0,10.5000", 1), unixBody, "amount_std")
}

func setOf(fs ...Field) FieldSet {
	var s FieldSet
	for _, f := range fs {
		s |= 1 << f
	}
	return s
}

func TestCompare_Tolerance(t *testing.T) {
	a := &Features{System: "a", Fields: AllFields, Rows: map[Key]*Value{{"f", "u"}: {Set: setOf(FieldCount, FieldMean), Count: 3, Mean: 1e6}}}
	b := &Features{System: "b", Fields: UnixFields, Rows: map[Key]*Value{{"f", "u"}: {Set: setOf(FieldCount), Count: 3}}}
	// Fields one side does not compute are not compared.
	if err := Compare(a, b, DefaultRelTol); err != nil {
		t.Errorf("fields outside the common set were compared: %v", err)
	}
	c := &Features{System: "c", Fields: AllFields, Rows: map[Key]*Value{{"f", "u"}: {Set: setOf(FieldCount, FieldMean), Count: 3, Mean: 1e6 * (1 + 5e-10)}}}
	if err := Compare(a, c, DefaultRelTol); err != nil {
		t.Errorf("a relative difference of 5e-10 failed: %v", err)
	}
	c.Rows[Key{"f", "u"}].Mean = 1e6 * (1 + 5e-9)
	if err := Compare(a, c, DefaultRelTol); err == nil {
		t.Error("a relative difference of 5e-9 passed")
	}
}

func TestReadTruth(t *testing.T) {
	p := writeFile(t, t.TempDir(), gen.TruthFile, "file,user,rows,amount_total\ninvoices_2024_12.csv,A&B010101AA1,2,1234567.89\ninvoices_2024_12.csv,\"PEÑA,X\",1,10.50\n")
	kept, err := TruthFiles(p, filepath.Join(t.TempDir(), "truth"))
	if err != nil {
		t.Fatal(err)
	}
	truth, err := kept.All()
	if err != nil {
		t.Fatal(err)
	}
	m, _, _ := readAllThree(t, mceBody, duckBody, unixBody)
	if err := Compare(truth, m, DefaultRelTol); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("the truth file is gone: %v", err)
	}
	if _, err := TruthFiles(writeFile(t, t.TempDir(), "truth.csv", "x"), t.TempDir()); err == nil {
		t.Error("no error for a truth file of another name")
	}
}
