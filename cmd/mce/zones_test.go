package main_test

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// zoneFiles are the inputs of TestE2E_TimeZones: the same three invoices
// written without a zone (ISO and day first), with one (an offset, and
// UTC's Z), and mixing both. Users: AAA with two invoices, BBB with one.
var zoneFiles = map[string]string{
	"local.csv": "invoice_id,issuer_id,receiver,issued_at,amount,currency,description\n" +
		"1,AAA010101AA1,R1,2023-01-31 14:05:00,100.50,MXN,x\n" +
		"2,AAA010101AA1,R2,2023-02-01 09:00:00.25,20,MXN,y\n" +
		"3,BBB010101BB2,R1,2023-01-15 08:30:00,5,MXN,z\n",
	"dmy.csv": "Invoice_ID;RFC_Emisor;RFC_Receptor;Fecha;Monto;Moneda;Descripcion\n" +
		"1;AAA010101AA1;R1;31/01/2023 14:05;100,50;MXN;x\n" +
		"2;AAA010101AA1;R2;01/02/2023 09:00:00.25;20,00;MXN;y\n" +
		"3;BBB010101BB2;R1;15/01/2023 08:30;5,00;MXN;z\n",
	"zoned.csv": "invoice_id,emisor,receiver,issued_at,amount,currency,description\n" +
		"1,AAA010101AA1,R1,2023-01-31T14:05:00-06:00,100.50,MXN,x\n" +
		"2,AAA010101AA1,R2,2023-02-01T15:00:00.25Z,20,MXN,y\n" +
		"3,BBB010101BB2,R1,2023-01-15 08:30:00-06:00,5,MXN,z\n",
	"mixed.csv": "invoice_id,issuer,receiver,issued_at,amount,currency,description\n" +
		"1,AAA010101AA1,R1,2023-01-31T20:05:00Z,100.50,MXN,x\n" +
		"2,AAA010101AA1,R2,2023-02-01 15:00:00.25,20,MXN,y\n" +
		"3,BBB010101BB2,R1,2023-01-15T14:30:00Z,5,MXN,z\n",
}

// zoneTimes is one file's expected key column and the users' first and
// last issue times.
type zoneTimes struct {
	key                  string
	aFirst, aLast, bTime string
}

// TestE2E_TimeZones checks the zone rule end to end: a file whose times
// have no zone gets its features' times without one (no invented Z), in
// mce run, mce debug and mce reduce alike; a file that names its zone, or
// mixes both, gets instants in UTC; --tz (run, and reduce of a store
// partitioned without it) reads the times without a zone in that zone
// and writes instants in UTC. The key column is named after each file's
// user column. In Parquet, the times of the zone-less files are
// TIMESTAMP (isAdjustedToUTC=false) and the others TIMESTAMP WITH TIME
// ZONE, as DuckDB reads them, holding the CSV's values.
func TestE2E_TimeZones(t *testing.T) {
	dir := t.TempDir()
	in := mkdir(t, dir, "in")
	for name, data := range zoneFiles {
		if err := os.WriteFile(filepath.Join(in, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	local := zoneTimes{"", "2023-01-31T14:05:00", "2023-02-01T09:00:00.25", "2023-01-15T08:30:00"}
	utc := zoneTimes{"", "2023-01-31T20:05:00Z", "2023-02-01T15:00:00.25Z", "2023-01-15T14:30:00Z"}
	with := func(z zoneTimes, key string) zoneTimes { z.key = key; return z }
	wantPlain := map[string]zoneTimes{
		"local.csv": with(local, "issuer_id"),
		"dmy.csv":   with(local, "RFC_Emisor"),
		"zoned.csv": with(utc, "emisor"),
		"mixed.csv": with(utc, "issuer"),
	}
	wantTZ := map[string]zoneTimes{ // America/Mexico_City is UTC-6 in winter
		"local.csv": with(utc, "issuer_id"),
		"dmy.csv":   with(utc, "RFC_Emisor"),
		"zoned.csv": with(utc, "emisor"),
		// Only the time without a zone moves.
		"mixed.csv": {"issuer", "2023-01-31T20:05:00Z", "2023-02-01T21:00:00.25Z", "2023-01-15T14:30:00Z"},
	}

	runOut := func(name string, args ...string) string {
		t.Helper()
		out := filepath.Join(dir, name)
		so, se, code := mce(t, dir, nil, append(append([]string{}, args...), "--out", out, "--job", "j", "--no-progress")...)
		if code != 0 {
			t.Fatalf("mce %s: exit %d\n%s\n%s", strings.Join(args, " "), code, so, se)
		}
		return filepath.Join(out, "j0")
	}
	plain := runOut("run", "run", in)
	checkZoneTimes(t, "run", plain, ".features.csv", wantPlain)
	tz := runOut("run-tz", "run", in, "--tz", "America/Mexico_City")
	checkZoneTimes(t, "run --tz", tz, ".features.csv", wantTZ)

	if _, se, code := mce(t, dir, nil, "partition", in, "--out", filepath.Join(dir, "store")); code != 0 {
		t.Fatalf("partition: exit %d\n%s", code, se)
	}
	store := filepath.Join(dir, "store")
	sameFeatures(t, "reduce", plain, runOut("reduce", "reduce", "--store", store))
	sameFeatures(t, "reduce --tz", tz, runOut("reduce-tz", "reduce", "--store", store, "--tz", "America/Mexico_City"))

	for name := range zoneFiles {
		so, se, code := mce(t, dir, nil, "debug", filepath.Join(in, name))
		if code != 0 {
			t.Fatalf("debug %s: exit %d\n%s", name, code, se)
		}
		want, _ := os.ReadFile(filepath.Join(plain, name+".features.csv"))
		if so != string(want) {
			t.Errorf("debug %s printed\n%s\nmce run wrote\n%s", name, so, want)
		}
	}

	// Parquet: the time columns typed by the rule, the same values as
	// the CSV, as DuckDB reads both.
	pq := runOut("run-parquet", "run", in, "--format", "parquet")
	duck := duckDB(t)
	var pairs [][2]string
	var names []string
	for name := range zoneFiles {
		pairs = append(pairs, [2]string{filepath.Join(plain, name+".features.csv"), filepath.Join(pq, name+".features.parquet")})
		names = append(names, name)
	}
	for i, c := range duckDBCompare(t, duck, pairs) {
		wantType := "TIMESTAMP WITH TIME ZONE"
		if !strings.HasSuffix(wantPlain[names[i]].aFirst, "Z") {
			wantType = "TIMESTAMP"
		}
		if c.Columns[0] != wantPlain[names[i]].key || c.Types[8] != wantType || c.Types[9] != wantType {
			t.Errorf("DuckDB: %s: key %q, first_issued %s, last_issued %s; want %q and %s", names[i], c.Columns[0], c.Types[8], c.Types[9], wantPlain[names[i]].key, wantType)
		}
		if c.ParquetRows != 2 || c.CSVRows != 2 || c.OnlyParquet != 0 || c.OnlyCSV != 0 {
			t.Errorf("DuckDB: %s: %+v", names[i], c)
		}
	}
}

// checkZoneTimes reads each file's features (name+suffix in dir) and
// compares the key column's name and the users' first and last times.
func checkZoneTimes(t *testing.T, what, dir, suffix string, want map[string]zoneTimes) {
	t.Helper()
	for name, w := range want {
		f, err := os.Open(filepath.Join(dir, name+suffix))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil || len(recs) != 3 {
			t.Fatalf("%s: %s: %d lines, %v", what, name, len(recs), err)
		}
		got := zoneTimes{recs[0][0], recs[1][8], recs[1][9], recs[2][8]}
		if recs[2][8] != recs[2][9] {
			t.Errorf("%s: %s: BBB's first and last times differ: %q", what, name, recs[2])
		}
		if got != w {
			t.Errorf("%s: %s:\n got %+v\nwant %+v", what, name, got, w)
		}
	}
}

// sameFeatures checks that two run folders hold the same features files,
// byte for byte.
func sameFeatures(t *testing.T, what, wantDir, gotDir string) {
	t.Helper()
	want, _ := filepath.Glob(filepath.Join(wantDir, "*.features.*"))
	got, _ := filepath.Glob(filepath.Join(gotDir, "*.features.*"))
	if len(got) != len(want) || len(want) == 0 {
		t.Fatalf("%s: %d features files, want %d", what, len(got), len(want))
	}
	for _, w := range want {
		a, _ := os.ReadFile(w)
		b, err := os.ReadFile(filepath.Join(gotDir, filepath.Base(w)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: %s differs (%v):\n%s\nwant\n%s", what, filepath.Base(w), err, b, a)
		}
	}
}
