package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// invoiceRows are the rows of the value-style tests: issuer, receiver,
// cents, and a time as year, month, day, hour, minute.
var invoiceRows = []struct {
	issuer, receiver string
	cents            int64
	t                [5]int
}{
	{"AAA010101AAA", "R1", 123456, [5]int{2023, 1, 31, 14, 5}},
	{"AAA010101AAA", "R2", 200000, [5]int{2023, 1, 2, 9, 30}},
	{"BBB020202BBB", "R1", 1550, [5]int{2023, 1, 15, 23, 59}},
	{"BBB020202BBB", "R3", -99999, [5]int{2023, 1, 20, 0, 1}},
	{"CCC030303CCC", "R2", 100000000, [5]int{2023, 1, 13, 12, 0}},
}

// styledFile writes the rows with amount and date written by amt and day.
func styledFile(t *testing.T, dir, name, header, delim string, amt func(int64) string, day func([5]int) string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(header + "\n")
	for i, r := range invoiceRows {
		fmt.Fprintf(&b, "%d%s%s%s%s%s%s%s%s%sMXN%sfactura %d\n", i+1, delim, r.issuer, delim, r.receiver, delim, day(r.t), delim, amt(r.cents), delim, delim, i)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func group3(n int64, sep string) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + sep + s[i:]
	}
	return s
}

func money(c int64, dec, thou string) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%s%s%02d", sign, group3(c/100, thou), dec, c%100)
}

// TestE2E_ValueStyles runs files that write the same invoices as people
// do (a Spanish export: ';', 1.234,56, 31/01/2023 14:05; a US one:
// $ 1,234.56 and 01/31/2023) and checks that their features equal those of
// the plain file; an ambiguous file fails with a message asking for
// --decimal; unreadable amounts are counted, reported, and fail a file
// above --max-bad-rows, or are emptied or fail the file as
// --on-bad-value says.
func TestE2E_ValueStyles(t *testing.T) {
	dir := t.TempDir()
	plain := styledFile(t, dir, "plain.csv", "invoice_id,issuer,receiver,issued_at,amount,currency,description", ",",
		func(c int64) string { return money(c, ".", "") },
		func(d [5]int) string { return fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:00", d[0], d[1], d[2], d[3], d[4]) })
	es := styledFile(t, dir, "es.csv", "Invoice_ID;RFC_Emisor;RFC_Receptor;Fecha;Monto;Moneda;Descripcion", ";",
		func(c int64) string { return money(c, ",", ".") },
		func(d [5]int) string { return fmt.Sprintf("%02d/%02d/%04d %02d:%02d", d[2], d[1], d[0], d[3], d[4]) })
	us := styledFile(t, dir, "us.csv", "invoice_id|issuer|receiver|issued_at|amount|currency|description", "|",
		func(c int64) string {
			if c < 0 {
				return "($ " + money(-c, ".", ",") + ")"
			}
			return "$ " + money(c, ".", ",")
		},
		func(d [5]int) string { return fmt.Sprintf("%02d/%02d/%04d %02d:%02d", d[1], d[2], d[0], d[3], d[4]) })
	want := features(t, dir, plain)
	for _, f := range []string{es, us} {
		if got := features(t, dir, f); got != want {
			t.Errorf("%s: features differ from the plain file's:\n%s\nwant:\n%s", filepath.Base(f), got, want)
		}
	}

	// Only values like 1,234: the file fails and says what to give.
	amb := styledFile(t, dir, "amb.csv", "invoice_id;issuer;receiver;issued_at;amount;currency;description", ";",
		func(c int64) string { return group3(1000+(c%9000+9000)%9000, ",") }, // 1,234: a thousand or 1.234?
		func(d [5]int) string { return fmt.Sprintf("%04d-%02d-%02d", d[0], d[1], d[2]) })
	so, se, code := mce(t, dir, nil, "run", amb, "--out", filepath.Join(dir, "out-amb"), "--no-progress")
	if code != 1 || !strings.Contains(so, "1 of 1 files failed") || !strings.Contains(se, "amb.csv") || !strings.Contains(se, "--decimal") {
		t.Errorf("ambiguous file: exit %d\n%s\n%s", code, so, se)
	}

	// 3 unreadable amounts in 100 rows: over the default 1% the file
	// fails; at 5% it completes and says how many.
	var b strings.Builder
	b.WriteString("invoice_id,issuer,receiver,issued_at,amount,currency,description\n")
	for i := range 100 {
		amount := fmt.Sprintf("%d.50", i+1)
		if i%33 == 7 {
			amount = "n/a"
		}
		fmt.Fprintf(&b, "%d,U%d,R,2023-01-02 10:00:00,%s,MXN,x\n", i, i%7, amount)
	}
	badPath := filepath.Join(dir, "bad.csv")
	os.WriteFile(badPath, []byte(b.String()), 0o644)
	so, se, code = mce(t, dir, nil, "run", badPath, "--out", filepath.Join(dir, "out-bad"), "--no-progress")
	if code != 1 || !strings.Contains(se, "too many bad rows: 3 of 100") {
		t.Errorf("3%% bad amounts at the default --max-bad-rows: exit %d\n%s\n%s", code, so, se)
	}
	so, _, code = mce(t, dir, nil, "run", badPath, "--out", filepath.Join(dir, "out-bad5"), "--max-bad-rows", "0.05", "--no-progress")
	if code != 0 || !strings.Contains(so, "all 1 files ok (3 bad values") {
		t.Errorf("3%% bad amounts at 5%%: exit %d\n%s", code, so)
	}
	timings, _ := os.ReadFile(filepath.Join(dir, "out-bad5", "job0", "timings.csv"))
	if lines := strings.Split(strings.TrimSpace(string(timings)), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[0], ",bad_values") || !strings.HasSuffix(lines[1], ",3") {
		t.Errorf("timings.csv does not say 3 bad values:\n%s", timings)
	}
	status, _ := os.ReadFile(filepath.Join(dir, "out-bad5", "job0", "status.log"))
	if !strings.Contains(string(status), `bad.csv:9: bad value: column amount: "n/a" is not an amount`) {
		t.Errorf("status.log lacks the bad value's sample with its line:\n%s", status)
	}

	// --on-bad-value empty keeps the rows (no bad rows, so the default
	// --max-bad-rows passes), says so, and samples the emptied values;
	// fail fails the file at the first one.
	so, _, code = mce(t, dir, nil, "run", badPath, "--out", filepath.Join(dir, "out-empty"), "--on-bad-value", "empty", "--no-progress")
	if code != 0 || !strings.Contains(so, "all 1 files ok (3 bad values: emptied, their rows kept") {
		t.Errorf("--on-bad-value empty: exit %d\n%s", code, so)
	}
	status, _ = os.ReadFile(filepath.Join(dir, "out-empty", "job0", "status.log"))
	if !strings.Contains(string(status), `bad.csv:9: bad value: column amount: "n/a" is not an amount (emptied, the row kept)`) {
		t.Errorf("status.log lacks the emptied value's sample:\n%s", status)
	}
	feats, _ := os.ReadFile(filepath.Join(dir, "out-empty", "job0", "bad.csv.features.csv"))
	var n int
	for _, line := range strings.Split(strings.TrimSpace(string(feats)), "\n")[1:] {
		var c int
		fmt.Sscanf(strings.Split(line, ",")[1], "%d", &c)
		n += c
	}
	if n != 100 {
		t.Errorf("--on-bad-value empty: invoice_count sums to %d, want all 100 rows:\n%s", n, feats)
	}
	so, _, code = mce(t, dir, nil, "run", badPath, "--out", filepath.Join(dir, "out-fail"), "--on-bad-value", "fail", "--no-progress")
	if code != 1 || !strings.Contains(so, `bad.csv:9: bad value: column amount: "n/a" is not an amount`) {
		t.Errorf("--on-bad-value fail: exit %d\n%s", code, so)
	}

	// mce partition says the same in its summary line, and logs the samples.
	for _, c := range []struct{ mode, line, log string }{
		{"skip-row", "97 rows; 3 bad rows left out, 3 of them for bad values; samples in the log", `msg="bad row" file=bad.csv line=9`},
		{"empty", "100 rows; 3 bad values emptied in kept rows; samples in the log", `msg="bad value emptied" file=bad.csv line=9`},
	} {
		so, se, code := mce(t, dir, nil, "partition", badPath, "--out", filepath.Join(dir, "store-"+c.mode), "--max-bad-rows", "0.05", "--on-bad-value", c.mode)
		if code != 0 || !strings.Contains(so, c.line) || !strings.Contains(se, c.log) {
			t.Errorf("partition --on-bad-value %s: exit %d, want %q in\n%s\nand %q in\n%s", c.mode, code, c.line, so, c.log, se)
		}
	}
}

// features runs mce on one file and returns its features file's lines
// after the header.
func features(t *testing.T, dir, path string) string {
	t.Helper()
	out := filepath.Join(dir, "out-"+filepath.Base(path))
	so, se, code := mce(t, dir, nil, "run", path, "--out", out, "--no-progress")
	if code != 0 {
		t.Fatalf("%s: exit %d\n%s\n%s", path, code, so, se)
	}
	b, err := os.ReadFile(filepath.Join(out, "job0", filepath.Base(path)+".features.csv"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), "\n")
	return rest
}

// TestE2E_GeneratedValueStyles generates the same invoices twice, once
// with every file writing amounts and dates in a style of its own (the
// generator's --value-styles: 1.234,56, $ 1,234.56, 1 234,56, (1,234.56),
// DD/MM/YYYY, MM/DD/YYYY, epoch seconds...), and checks that every feature
// but the first and last issue times (some styles drop the seconds or the
// time) is the same as with plain values.
func TestE2E_GeneratedValueStyles(t *testing.T) {
	dir := t.TempDir()
	var outs [2]string
	for i, styles := range []string{"--value-styles=true", "--value-styles=false"} {
		data := filepath.Join(dir, "data"+fmt.Sprint(i))
		if _, se, code := mce(t, dir, nil, "gen", "--out", data, "--seed", "9", "--files", "6", "--size", "6MB", "--messy", styles); code != 0 {
			t.Fatalf("gen %s: %s", styles, se)
		}
		outs[i] = filepath.Join(dir, "out"+fmt.Sprint(i))
		if so, se, code := mce(t, dir, nil, "run", data, "--out", outs[i], "--no-progress"); code != 0 || !strings.Contains(so, "all 6 files ok") {
			t.Fatalf("run %s: exit %d\n%s\n%s", styles, code, so, se)
		}
	}
	styles, err := os.ReadFile(filepath.Join(dir, "data0", "_truth_styles.csv"))
	if err != nil || strings.Count(string(styles), "\n") != 7 {
		t.Fatalf("_truth_styles.csv: %v\n%s", err, styles)
	}
	files, _ := filepath.Glob(filepath.Join(outs[1], "job0", "*.features.csv"))
	if len(files) != 6 {
		t.Fatalf("%d features files", len(files))
	}
	keep := func(b []byte) string {
		var out []string
		for _, ln := range strings.Split(string(b), "\n") {
			f := strings.Split(ln, ",")
			if len(f) >= 13 {
				f = append(f[:8:8], f[10:]...) // without first_issued, last_issued
			}
			out = append(out, strings.Join(f, ","))
		}
		return strings.Join(out, "\n")
	}
	for _, plain := range files {
		want, _ := os.ReadFile(plain)
		got, err := os.ReadFile(filepath.Join(outs[0], "job0", filepath.Base(plain)))
		if err != nil {
			t.Fatal(err)
		}
		if keep(got) != keep(want) {
			t.Errorf("%s: styled values give other features than plain ones", filepath.Base(plain))
		}
	}
}
