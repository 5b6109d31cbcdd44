package main_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// identicalInput is the identity test's input: five messy files whose
// headers name the user column issuer, issuer_id, ISSUER_ID and emisor.
const identicalInput = "testdata/identical/input"

// inputKeyNames is the user column of each identicalInput file as its
// header writes it.
var inputKeyNames = map[string]string{
	"invoices_2024_08.csv": "issuer",
	"invoices_2024_09.csv": "issuer_id",
	"invoices_2024_10.csv": "ISSUER_ID",
	"invoices_2024_11.csv": "emisor",
	"invoices_2024_12.csv": "issuer",
}

// runOutputs runs mce (args with IN, OUT and STORE replaced, as in the
// identity test) and returns the run folder's features files by base name.
func runOutputs(t *testing.T, work string, args ...[]string) map[string]string {
	t.Helper()
	out, store := filepath.Join(work, "out"), filepath.Join(work, "store")
	for _, a := range args {
		a = append([]string(nil), a...)
		for i, x := range a {
			switch x {
			case "IN":
				a[i] = repo(t, identicalInput)
			case "OUT":
				a[i] = out
			case "STORE":
				a[i] = store
			}
		}
		if _, se, code := mce(t, work, nil, a...); code != 0 {
			t.Fatalf("mce %s: exit %d\n%s", strings.Join(a, " "), code, se)
		}
	}
	files := map[string]string{}
	m, _ := filepath.Glob(filepath.Join(out, "j0", "*.features.*"))
	for _, f := range m {
		files[filepath.Base(f)] = f
	}
	if len(files) == 0 {
		t.Fatalf("no features files in %s", out)
	}
	return files
}

// builtinParquetTypes are the built-in features' Parquet types, as
// parquet-go describes them, after the key column's.
var builtinParquetTypes = []string{
	"INT64 INT(64,true)",  // invoice_count
	"INT64 DECIMAL(18,4)", // amount_total: exact
	"DOUBLE",              // amount_mean
	"DOUBLE",              // amount_std
	"INT64 DECIMAL(18,4)", // amount_min
	"INT64 DECIMAL(18,4)", // amount_max
	"INT64 INT(64,true)",  // distinct_receivers
	"INT64 TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)", // first_issued
	"INT64 TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)", // last_issued
	"BYTE_ARRAY STRING",   // top_receiver
	"INT64 DECIMAL(18,4)", // top_receiver_amount
	"INT64 INT(64,true)",  // bad_rows
}

// builtinDuckDBTypes are the same columns as DuckDB's DESCRIBE types them.
var builtinDuckDBTypes = []string{
	"VARCHAR", "BIGINT", "DECIMAL(18,4)", "DOUBLE", "DOUBLE", "DECIMAL(18,4)", "DECIMAL(18,4)",
	"BIGINT", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITH TIME ZONE", "VARCHAR", "DECIMAL(18,4)", "BIGINT",
}

// checkParquetAgainstCSV reads pqPath with parquet-go's reader and checks
// that it holds csvPath's table value for value, in its order, with the
// built-in features' types and wantKey as the key column's name.
func checkParquetAgainstCSV(t *testing.T, pqPath, csvPath, wantKey string) {
	t.Helper()
	cf, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer cf.Close()
	recs, err := csv.NewReader(bufio.NewReader(cf)).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", csvPath, err)
	}
	header, lines := recs[0], recs[1:]

	pf, err := os.Open(pqPath)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	st, _ := pf.Stat()
	file, err := parquet.OpenFile(pf, st.Size())
	if err != nil {
		t.Fatalf("%s: %v", pqPath, err)
	}
	fields := file.Schema().Fields()
	if len(fields) != len(header) {
		t.Fatalf("%s: %d columns, the CSV has %d", pqPath, len(fields), len(header))
	}
	scales := make([]int, len(fields))
	for i, f := range fields {
		name := header[i]
		if i == 0 {
			name = wantKey
		}
		typ := f.Type().Kind().String()
		lt := f.Type().LogicalType()
		if lt != nil && lt.Value != nil {
			typ += " " + lt.String()
			if d, ok := lt.Value.(*format.DecimalType); ok {
				scales[i] = int(d.Scale)
			}
		}
		want := "BYTE_ARRAY STRING"
		if i > 0 {
			want = builtinParquetTypes[i-1]
		}
		if f.Name() != name || typ != want {
			t.Errorf("%s: column %d is %s %s, want %s %s", filepath.Base(pqPath), i, f.Name(), typ, name, want)
		}
	}
	if file.NumRows() != int64(len(lines)) {
		t.Fatalf("%s: %d rows, the CSV has %d", pqPath, file.NumRows(), len(lines))
	}
	r := parquet.NewReader(file)
	defer r.Close()
	row := make([]parquet.Row, 1)
	for ln, line := range lines {
		if n, err := r.ReadRows(row); n != 1 {
			t.Fatalf("%s: row %d: %v", pqPath, ln, err)
		}
		for _, v := range row[0] {
			c := v.Column()
			if got, want := parquetText(t, v, fields[c], scales[c]), line[c]; !sameValue(got, want, scales[c] > 0) {
				t.Errorf("%s: user %q: %s = %q in Parquet, %q in CSV", filepath.Base(pqPath), line[0], header[c], got, want)
			}
		}
	}
}

// parquetText writes a Parquet value as mce's CSV writes that feature
// (null as an empty field).
func parquetText(t *testing.T, v parquet.Value, f parquet.Field, scale int) string {
	if v.IsNull() {
		return ""
	}
	lt := f.Type().LogicalType()
	switch {
	case scale > 0:
		return new(big.Rat).SetFrac(big.NewInt(v.Int64()), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)).FloatString(scale)
	case isTimestamp(lt):
		return time.UnixMicro(v.Int64()).UTC().Format(time.RFC3339Nano)
	case f.Type().Kind() == parquet.Int64:
		return strconv.FormatInt(v.Int64(), 10)
	case f.Type().Kind() == parquet.Double:
		if math.IsNaN(v.Double()) {
			return "NaN"
		}
		return strconv.FormatFloat(v.Double(), 'g', -1, 64)
	case f.Type().Kind() == parquet.ByteArray:
		return string(v.ByteArray())
	}
	t.Fatalf("column %s: unexpected type %v", f.Name(), f.Type())
	return ""
}

// sameValue compares a Parquet value's text with the CSV field: decimals
// as exact numbers ("3323.7800" is "3323.78").
func sameValue(pq, csvField string, decimal bool) bool {
	if !decimal || pq == "" || csvField == "" {
		return pq == csvField
	}
	a, ok1 := new(big.Rat).SetString(pq)
	b, ok2 := new(big.Rat).SetString(csvField)
	return ok1 && ok2 && a.Cmp(b) == 0
}

// duckDBCheck is one line of testdata/parquet_check.mjs's output.
type duckDBCheck struct {
	Parquet     string   `json:"parquet"`
	Columns     []string `json:"columns"`
	Types       []string `json:"types"`
	ParquetRows int      `json:"parquet_rows"`
	CSVRows     int      `json:"csv_rows"`
	OnlyParquet int      `json:"only_parquet"`
	OnlyCSV     int      `json:"only_csv"`
}

// duckDB returns a folder with @duckdb/node-api installed (the version
// bench/duckdb pins, through npm ci, once per version in the temporary
// folder) and testdata/parquet_check.mjs copied in. Without npm or node
// the test is skipped, unless env CI is set: CI must run it.
func duckDB(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "" {
				t.Skipf("%s is not installed: the DuckDB reader check needs Node.js and npm (CI runs it)", tool)
			}
			t.Fatalf("%s is not installed, and CI must run the DuckDB reader check", tool)
		}
	}
	lock, err := os.ReadFile(repo(t, "bench/duckdb/package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	dir := filepath.Join(os.TempDir(), "mce-test-duckdb-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api", "package.json")); err != nil {
		tmp, err := os.MkdirTemp(os.TempDir(), "mce-test-duckdb-*.tmp")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		for _, f := range []string{"package.json", "package-lock.json"} {
			b, err := os.ReadFile(repo(t, "bench/duckdb/"+f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = tmp
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci (@duckdb/node-api, as bench/duckdb pins it): %v\n%s", err, out)
		}
		os.RemoveAll(dir)
		if err := os.Rename(tmp, dir); err != nil {
			t.Fatal(err) // another test installed it at the same time
		}
	}
	script, err := os.ReadFile(repo(t, "cmd/mce/testdata/parquet_check.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "parquet_check.mjs"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// duckDBCompare runs parquet_check.mjs on pairs of (CSV, Parquet) paths.
func duckDBCompare(t *testing.T, dir string, pairs [][2]string) []duckDBCheck {
	t.Helper()
	var arg []map[string]string
	for _, p := range pairs {
		arg = append(arg, map[string]string{"csv": p[0], "parquet": p[1]})
	}
	b, _ := json.Marshal(arg)
	cmd := exec.Command("node", filepath.Join(dir, "parquet_check.mjs"), string(b))
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node parquet_check.mjs: %v\n%s", err, stderr.String())
	}
	var res []duckDBCheck
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var c duckDBCheck
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("parquet_check.mjs printed %q: %v", line, err)
		}
		res = append(res, c)
	}
	if len(res) != len(pairs) {
		t.Fatalf("parquet_check.mjs checked %d files, want %d", len(res), len(pairs))
	}
	return res
}

// TestE2E_ParquetMatchesCSV runs `mce run` and `mce reduce` (per file and
// across files) on the identity test's inputs twice, into CSV and into
// Parquet (with --key-name input), and reads every Parquet file back with
// two readers, parquet-go's and DuckDB's: the same values as the CSV file
// of the same job, with the built-in features' types (exact amounts as
// DECIMAL(18,4), times as UTC timestamps) and the input's name for the
// key column; and run's and reduce's Parquet files are the same bytes.
func TestE2E_ParquetMatchesCSV(t *testing.T) {
	duck := duckDB(t)
	run := func(extra ...string) [][]string {
		return [][]string{append([]string{"run", "--out", "OUT", "--job", "j", "--no-progress", "IN"}, extra...)}
	}
	reduce := func(extra ...string) [][]string {
		return [][]string{
			{"partition", "IN", "--out", "STORE"},
			append([]string{"reduce", "--store", "STORE", "--out", "OUT", "--job", "j", "--no-progress"}, extra...),
		}
	}
	type scenario struct {
		name        string
		args        func(extra ...string) [][]string
		extra       []string
		keyFromName bool // the key is named after each input's header
	}
	var pairs [][2]string
	var keys []string
	parquets := map[string]map[string]string{} // by scenario
	work := t.TempDir()                        // the files outlive the subtests, for DuckDB
	for _, s := range []scenario{
		{"run", run, nil, true},
		{"reduce", reduce, nil, true},
		{"reduce-across", reduce, []string{"--across-files"}, false},
	} {
		t.Run(s.name, func(t *testing.T) {
			dir := filepath.Join(work, s.name)
			csvs := runOutputs(t, mkdir(t, dir, "csv"), s.args(s.extra...)...)
			pqExtra := append([]string{"--format", "parquet"}, s.extra...)
			if s.keyFromName {
				pqExtra = append(pqExtra, "--key-name", "input")
			}
			pqs := runOutputs(t, mkdir(t, dir, "parquet"), s.args(pqExtra...)...)
			parquets[s.name] = pqs
			if len(pqs) != len(csvs) {
				t.Fatalf("%d Parquet files, %d CSV files", len(pqs), len(csvs))
			}
			for name, csvPath := range csvs {
				base := strings.TrimSuffix(name, ".features.csv")
				pqPath, ok := pqs[base+".features.parquet"]
				if !ok {
					t.Fatalf("no %s.features.parquet beside %s (have %v)", base, name, pqs)
				}
				key := "user"
				if s.keyFromName {
					key = inputKeyNames[base]
				}
				checkParquetAgainstCSV(t, pqPath, csvPath, key)
				pairs = append(pairs, [2]string{csvPath, pqPath})
				keys = append(keys, key)
			}
		})
	}
	// The two modes write the same Parquet bytes, as they do CSV.
	for name, path := range parquets["run"] {
		a, _ := os.ReadFile(path)
		b, err := os.ReadFile(parquets["reduce"][name])
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s: run's and reduce's Parquet files differ (%v)", name, err)
		}
	}
	if len(pairs) < 2 {
		return
	}
	// DuckDB, once for all files (whatever parquet-go's reader said); and
	// one pair of different files, which it must tell apart.
	checks := duckDBCompare(t, duck, append(pairs, [2]string{pairs[0][0], pairs[1][1]}))
	for i, c := range checks[:len(pairs)] {
		if c.Columns[0] != keys[i] {
			t.Errorf("DuckDB: %s: key column %q, want %q", c.Parquet, c.Columns[0], keys[i])
		}
		if fmt.Sprint(c.Types) != fmt.Sprint(builtinDuckDBTypes) {
			t.Errorf("DuckDB: %s: types\n%q\nwant\n%q", c.Parquet, c.Types, builtinDuckDBTypes)
		}
		if c.ParquetRows == 0 || c.ParquetRows != c.CSVRows || c.OnlyParquet != 0 || c.OnlyCSV != 0 {
			t.Errorf("DuckDB: %s: %d rows, the CSV %d; %d rows only in the Parquet file, %d only in the CSV",
				c.Parquet, c.ParquetRows, c.CSVRows, c.OnlyParquet, c.OnlyCSV)
		}
	}
	if c := checks[len(pairs)]; c.OnlyParquet == 0 || c.OnlyCSV == 0 {
		t.Errorf("DuckDB saw no difference between two different files: %+v", c)
	}
}

// TestE2E_KeyName checks --key-name on CSV outputs: by default the key
// column keeps the name user (the bytes the identity test records);
// input names it after each input's header, NAME names it NAME; only the
// header changes. reduce --across-files --key-name input refuses inputs
// that name their user column differently.
func TestE2E_KeyName(t *testing.T) {
	run := func(extra ...string) [][]string {
		return [][]string{append([]string{"run", "--out", "OUT", "--job", "j", "--no-progress", "IN"}, extra...)}
	}
	reduce := func(extra ...string) [][]string {
		return [][]string{
			{"partition", "IN", "--out", "STORE"},
			append([]string{"reduce", "--store", "STORE", "--out", "OUT", "--job", "j", "--no-progress"}, extra...),
		}
	}
	for _, mode := range []struct {
		name string
		args func(extra ...string) [][]string
	}{{"run", run}, {"reduce", reduce}} {
		t.Run(mode.name, func(t *testing.T) {
			def := runOutputs(t, t.TempDir(), mode.args()...)
			input := runOutputs(t, t.TempDir(), mode.args("--key-name", "input")...)
			named := runOutputs(t, t.TempDir(), mode.args("--key-name", "rfc_emisor")...)
			for name, path := range def {
				base := strings.TrimSuffix(name, ".features.csv")
				d, _ := os.ReadFile(path)
				dHead, dBody, _ := bytes.Cut(d, []byte("\n"))
				if !bytes.HasPrefix(dHead, []byte("user,invoice_count,")) {
					t.Errorf("%s: default header %q", name, dHead)
				}
				for _, c := range []struct {
					files map[string]string
					key   string
				}{{input, inputKeyNames[base]}, {named, "rfc_emisor"}} {
					b, err := os.ReadFile(c.files[name])
					if err != nil {
						t.Fatal(err)
					}
					head, body, _ := bytes.Cut(b, []byte("\n"))
					if want := c.key + string(dHead[len("user"):]); string(head) != want {
						t.Errorf("%s: header %q, want %q", name, head, want)
					}
					if !bytes.Equal(body, dBody) {
						t.Errorf("%s: --key-name %s changed more than the header", name, c.key)
					}
				}
			}
		})
	}
	work := t.TempDir()
	store := filepath.Join(work, "store")
	if _, se, code := mce(t, work, nil, "partition", repo(t, identicalInput), "--out", store); code != 0 {
		t.Fatalf("partition: exit %d\n%s", code, se)
	}
	_, se, code := mce(t, work, nil, "reduce", "--store", store, "--out", filepath.Join(work, "out"), "--no-progress", "--across-files", "--key-name", "input")
	if code == 0 || !strings.Contains(se, "name their user column differently") {
		t.Errorf("reduce --across-files --key-name input over differently named inputs: exit %d\n%s", code, se)
	}
}

func isTimestamp(lt *format.LogicalType) bool {
	if lt == nil {
		return false
	}
	_, ok := lt.Value.(*format.TimestampType)
	return ok
}

// mkdir makes the folder dir/name and returns it.
func mkdir(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestE2E_ParquetResume checks that --resume keeps the format and key name
// a run started with: an output removed from a finished run folder comes
// back as the same Parquet bytes, without the flags repeated.
func TestE2E_ParquetResume(t *testing.T) {
	for _, mode := range []struct {
		name string
		args [][]string
	}{
		{"run", [][]string{{"run", "--out", "OUT", "--job", "j", "--no-progress", "IN", "--format", "parquet", "--key-name", "input"}}},
		{"reduce", [][]string{
			{"partition", "IN", "--out", "STORE"},
			{"reduce", "--store", "STORE", "--out", "OUT", "--job", "j", "--no-progress", "--format", "parquet", "--key-name", "input"},
		}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			work := t.TempDir()
			files := runOutputs(t, work, mode.args...)
			path := files["invoices_2024_09.csv.features.parquet"]
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			os.Remove(path)
			if _, se, code := mce(t, work, nil, mode.name, "--resume", filepath.Dir(path), "--no-progress"); code != 0 {
				t.Fatalf("%s --resume: exit %d\n%s", mode.name, code, se)
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s --resume: %s is not the Parquet file it replaces (%v)", mode.name, filepath.Base(path), err)
			}
			if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.features.csv")); len(m) > 0 {
				t.Errorf("%s --resume wrote CSV: %v", mode.name, m)
			}
		})
	}
}
