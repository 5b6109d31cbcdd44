package faults

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/text/encoding/charmap"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/e2etest"
	"github.com/mce-engine/mce/internal/fileid"
	"github.com/mce-engine/mce/internal/gen"
)

const invoiceHeader = "invoice_id,issuer,receiver,issued_at,amount,currency,description\n"

// badFile is a hand-made input and what mce must do with it: fail it
// alone with a one-line error (fails, naming line when it is not 0), or
// read it exactly (want), skipping and reporting the rows at badLines.
type badFile struct {
	name     string
	data     []byte
	fails    string
	line     int64
	want     map[string]tally
	badLines []int64
}

// goodRows writes n good rows of users prefix0..prefix6 and returns them
// with their truth.
func goodRows(prefix string, n int, want map[string]tally) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		u := fmt.Sprintf("%s%d", prefix, i%7)
		cents := int64(100 + i*37%9000)
		fmt.Fprintf(&b, "ID-%s-%d,%s,RCV%d,2024-01-%02d 10:00:00,%d.%02d,MXN,servicio %d\n",
			prefix, i, u, i%5, 1+i%28, cents/100, cents%100, i)
		x := want[u]
		x.rows++
		x.cents += cents
		want[u] = x
	}
	return b.Bytes()
}

// withBadRow is a file of 300 good rows with the row bad at line 151.
func withBadRow(name, prefix, bad string) badFile {
	want := map[string]tally{}
	var b bytes.Buffer
	b.WriteString(invoiceHeader)
	b.Write(goodRows(prefix, 149, want))
	b.WriteString(bad + "\n")
	b.Write(goodRows(prefix+"b", 151, want))
	return badFile{name: name, data: b.Bytes(), want: want, badLines: []int64{151}}
}

func compressed(t *testing.T, kind string, plain []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	switch kind {
	case "gzip":
		w := gzip.NewWriter(&b)
		w.Write(plain)
		w.Close()
	case "zstd":
		w, err := zstd.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(plain)
		w.Close()
	}
	return b.Bytes()
}

func cp1252(t *testing.T, s string) []byte {
	t.Helper()
	b, err := charmap.Windows1252.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// badFiles makes the bad inputs of the default run (automatic encoding).
// plain is a good generated file whose compressed forms are cut short.
func badFiles(t *testing.T, plain []byte) []badFile {
	t.Helper()
	gz, zs := compressed(t, "gzip", plain), compressed(t, "zstd", plain)
	random := make([]byte, 64<<10)
	rand.NewChaCha8([32]byte{7}).Read(random)

	bigWant := map[string]tally{}
	var big bytes.Buffer
	big.WriteString(invoiceHeader)
	big.Write(goodRows("BIGF", 4, bigWant))
	fmt.Fprintf(&big, "ID-BIG,BIGFIELD1,RCV,2024-01-05 10:00:00,12.34,MXN,%s\n", strings.Repeat("x", 1<<20))
	bigWant["BIGFIELD1"] = tally{1, 1234}
	big.Write(goodRows("BIGG", 5, bigWant))

	quote := withBadRow("unterminated_quote.csv", "QUOT", `ID-Q,QUOTE1,RCV,2024-01-05 10:00:00,1.00,MXN,"never closed`)
	quote.fails, quote.line, quote.want, quote.badLines = "quote not closed", 151, nil, nil

	return []badFile{
		{name: "truncated.csv.gz", data: gz[:len(gz)/2], fails: "truncated gzip stream"},
		{name: "truncated.csv.zst", data: zs[:len(zs)/2], fails: "truncated zstd stream"},
		{name: "binary.csv", data: random, fails: "not a text file"},
		{name: "empty.csv", data: nil, fails: "empty file"},
		{name: "header_only.csv", data: []byte(invoiceHeader), want: map[string]tally{}},
		withBadRow("too_many_fields.csv", "MANY", "ID-M,MANY0,RCV,2024-01-05 10:00:00,1.00,MXN,d,extra"),
		withBadRow("too_few_fields.csv", "FEW", "ID-F,FEW0,RCV"),
		quote,
		{name: "big_field.csv", data: big.Bytes(), want: bigWant},
		{name: "cp1252.csv", data: cp1252(t, invoiceHeader+
			"ID-1,NUÑEZ01,RCV,2024-01-05 10:00:00,10.50,MXN,Señor café\n"+
			"ID-2,NUÑEZ01,RCV,2024-01-06 10:00:00,1.25,MXN,Diseño gráfico\n"+
			"ID-3,PEÑA02,RCV,2024-01-07 10:00:00,3.00,MXN,Año\n"),
			want: map[string]tally{"NUÑEZ01": {2, 1175}, "PEÑA02": {1, 300}}},
		{name: "no_user_column.csv", data: []byte("invoice_id,receiver,issued_at,amount,currency,description\n" +
			"ID-1,RCV,2024-01-05 10:00:00,1.00,MXN,d\n"), fails: "missing column", line: 1},
	}
}

// utf8Files are the bad inputs of the runs with --encoding utf8.
func utf8Files(t *testing.T) []badFile {
	t.Helper()
	bad := withBadRow("invalid_utf8.csv", "PEÑA", "ID-U,PEÑA0,RCV,2024-01-05 10:00:00,1.00,MXN,caf\xe9 \xff")
	var cp bytes.Buffer
	cp.WriteString(invoiceHeader)
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&cp, "ID-%d,NUÑEZ%d,RCV,2024-01-05 10:00:00,1.00,MXN,Señor\n", i, i%3)
	}
	return []badFile{
		bad,
		{name: "cp1252_as_utf8.csv", data: cp1252(t, cp.String()), fails: "invalid UTF-8", line: 2},
	}
}

// writeBad writes the bad files into dir.
func writeBad(t *testing.T, dir string, files []badFile) {
	t.Helper()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkBadRun checks a run over good generated files and bad ones: every
// failing file has one line in failure.log and one on stderr naming it
// (and its line) with the expected error, and no features file; every
// file read is exact, its bad rows reported with file and line in
// status.log and on stderr; the good files are exact.
func checkBadRun(t *testing.T, r result, d *dataset, dir string, bads []badFile) (lost, dup int64) {
	t.Helper()
	nFail := 0
	for _, b := range bads {
		if b.fails != "" {
			nFail++
		}
	}
	n := len(d.files) + len(bads)
	if want := fmt.Sprintf("%d of %d files failed", nFail, n); r.code != 1 || e2etest.LastLine(r.stdout) != want {
		t.Errorf("exit %d, last line %q; want 1, %q", r.code, e2etest.LastLine(r.stdout), want)
	}
	failures := e2etest.ReadLog(t, r.runDir, engine.FailureLog)
	status := e2etest.ReadLog(t, r.runDir, engine.StatusLog)
	for _, b := range bads {
		path := filepath.Join(dir, b.name)
		if b.fails != "" {
			checkOneLineError(t, b, path, failures, r.stderr)
			if exists(filepath.Join(r.runDir, fileid.FeaturesName(path))) {
				t.Errorf("%s failed but has a features file", b.name)
			}
			continue
		}
		l, du := checkFeaturesFile(t, filepath.Join(r.runDir, fileid.FeaturesName(path)), b.want)
		lost += l
		dup += du
		for _, ln := range b.badLines {
			sample := fmt.Sprintf("%s:%d: ", path, ln)
			if !strings.Contains(status, "bad row sample: "+sample) {
				t.Errorf("status.log does not report the bad row %s", sample)
			}
			if !strings.Contains(r.stderr, `msg="bad row" file=`+path+` sample="`+sample) {
				t.Errorf("stderr does not report the bad row %s", sample)
			}
		}
	}
	l, du := checkRunOutputs(t, r.runDir, d)
	return lost + l, dup + du
}

// checkOneLineError checks that failure.log and stderr each have exactly
// one line about the file, naming it (and its line) with the error.
func checkOneLineError(t *testing.T, b badFile, path, failures, stderr string) {
	t.Helper()
	var inLog, inErr []string
	for _, ln := range strings.Split(failures, "\n") {
		if strings.Contains(ln, " file "+path+": ") && !strings.HasPrefix(ln, "\t") {
			inLog = append(inLog, ln)
		}
	}
	for _, ln := range strings.Split(stderr, "\n") {
		if strings.Contains(ln, `msg="file failed" file=`+path+" ") {
			inErr = append(inErr, ln)
		}
	}
	lineRE := regexp.MustCompile(fmt.Sprintf(`\bline %d\b|%s:%d:`, b.line, regexp.QuoteMeta(path), b.line))
	for _, c := range []struct {
		where string
		lines []string
	}{{"failure.log", inLog}, {"stderr", inErr}} {
		if len(c.lines) != 1 {
			t.Errorf("%s: %d lines in %s, want 1:\n%s", b.name, len(c.lines), c.where, strings.Join(c.lines, "\n"))
			continue
		}
		if !strings.Contains(c.lines[0], b.fails) {
			t.Errorf("%s: %s says %q, want %q", b.name, c.where, c.lines[0], b.fails)
		}
		if b.line > 0 && !lineRE.MatchString(c.lines[0]) {
			t.Errorf("%s: %s does not name line %d: %q", b.name, c.where, b.line, c.lines[0])
		}
	}
}

// TestBadInput runs mce run, then mce partition, over good generated
// files with every kind of bad input beside them.
func TestBadInput(t *testing.T) {
	d := genData(t, gen.Options{Seed: 31, Files: 3, Size: gen.Size{Bytes: 2 << 20}})
	plain, err := os.ReadFile(d.files[len(d.files)-1])
	if err != nil {
		t.Fatal(err)
	}
	bads := badFiles(t, plain)
	writeBad(t, d.dir, bads)
	all := &dataset{dir: d.dir, files: d.files, truth: map[string]map[string]tally{}}
	for k, v := range d.truth {
		all.truth[k] = v
	}
	var readable []string
	for _, b := range bads {
		if b.fails == "" {
			all.truth[b.name] = b.want
			readable = append(readable, b.name)
		}
	}

	t.Run("run", func(t *testing.T) {
		row := record(t, "bad input beside good files: "+badNames(bads), "run")
		r := runCmd(t, mceBin, []string{"run", d.dir, "--out", t.TempDir(), "--no-progress", "--clusters", "1,1"})
		lost, dup := checkBadRun(t, r, d, d.dir, bads)
		row.add(lost, dup)
		row.notef("each failing file: one line naming it (and the line) in failure.log and on stderr; bad rows skipped and reported with file:line; all else exact")
	})

	t.Run("partition", func(t *testing.T) {
		row := record(t, "bad input beside good files (same set)", "partition")
		st := filepath.Join(t.TempDir(), "store")
		r := runCmd(t, mceBin, []string{"--log-level", "warn", "partition", d.dir, "--out", st, "--mem", "16MiB"})
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		for _, b := range bads {
			if b.fails == "" {
				continue
			}
			var lines []string
			for _, ln := range strings.Split(r.stderr, "\n") {
				if strings.HasPrefix(strings.TrimSpace(ln), b.name+": ") {
					lines = append(lines, ln)
				}
			}
			if len(lines) != 1 || !strings.Contains(lines[0], b.fails) {
				t.Errorf("%s: stderr lines %q, want one saying %q", b.name, lines, b.fails)
			}
		}
		got, lost, dup := checkStore(t, st, all, append(d.names(), readable...))
		for _, b := range bads {
			if b.fails != "" && slices.Contains(got, b.name) {
				t.Errorf("the store records %s, which failed", b.name)
			}
		}
		row.add(lost, dup)
		row.notef("failing files named on stderr and not recorded in the manifest; the rest exact in the store")
	})

	t.Run("utf8", func(t *testing.T) {
		row := record(t, "invalid UTF-8 and cp1252 text with --encoding utf8", "run")
		u := genData(t, gen.Options{Seed: 32, Files: 2, Size: gen.Size{Bytes: 1 << 20}, Encoding: feature.EncodingUTF8})
		ub := utf8Files(t)
		writeBad(t, u.dir, ub)
		r := runCmd(t, mceBin, []string{"run", u.dir, "--out", t.TempDir(), "--no-progress", "--encoding", "utf8"})
		lost, dup := checkBadRun(t, r, u, u.dir, ub)
		row.add(lost, dup)
		row.notef("the invalid row is skipped and reported at its line; the cp1252 file fails naming line 2; all else exact")
	})

	t.Run("strict", func(t *testing.T) {
		row := record(t, "one bad row with --max-bad-rows 0", "run")
		u := genData(t, gen.Options{Seed: 33, Files: 2, Size: gen.Size{Bytes: 1 << 20}, Encoding: feature.EncodingUTF8})
		var sb []badFile
		for _, b := range append(badFiles(t, nil), utf8Files(t)...) {
			if len(b.badLines) == 1 {
				b.fails, b.line, b.want = "too many bad rows", b.badLines[0], nil
				sb = append(sb, b)
			}
		}
		writeBad(t, u.dir, sb)
		r := runCmd(t, mceBin, []string{"run", u.dir, "--out", t.TempDir(), "--no-progress", "--encoding", "utf8", "--max-bad-rows", "0"})
		lost, dup := checkBadRun(t, r, u, u.dir, sb)
		row.add(lost, dup)
		row.notef("%s fail, each naming its bad line; all else exact", badNames(sb))
	})
}

func badNames(bs []badFile) string {
	var names []string
	for _, b := range bs {
		names = append(names, strings.TrimSuffix(b.name, ".csv"))
	}
	return strings.Join(names, ", ")
}

// TestUnreadableFile runs mce over good files and one it may not read: as
// root permissions do not apply, so mce runs as the unprivileged user
// 65534 (nobody) then; otherwise as the test's own user.
func TestUnreadableFile(t *testing.T) {
	row := record(t, "a file with no read permission beside good files", "run")
	d := genData(t, gen.Options{Seed: 34, Files: 2, Size: gen.Size{Bytes: 1 << 20}})
	noread := filepath.Join(d.dir, "no_read.csv")
	if err := os.WriteFile(noread, []byte(invoiceHeader+"ID-1,U1,RCV,2024-01-05 10:00:00,1.00,MXN,d\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	var setup []func(*exec.Cmd)
	how := "as the test's user"
	if os.Geteuid() == 0 {
		how = "as uid 65534 (root reads any file)"
		// Let nobody reach the data and write the outputs.
		for dir := d.dir; dir != "/" && dir != os.TempDir(); dir = filepath.Dir(dir) {
			os.Chmod(dir, 0o755)
		}
		if err := os.MkdirAll(out, 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(out, 0o777)
		setup = append(setup, func(c *exec.Cmd) {
			c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		})
	}
	r := runCmd(t, mceBin, []string{"run", d.dir, "--out", out, "--no-progress"}, setup...)
	if r.runDir == "" {
		t.Fatalf("no run folder (exit %d):\n%s", r.code, e2etest.Tail(r.stderr, 2000))
	}
	lost, dup := checkBadRun(t, r, d, d.dir, []badFile{{name: "no_read.csv", fails: "permission denied"}})
	row.add(lost, dup)
	row.notef("run %s: the file fails with \"permission denied\" named in failure.log and on stderr; the others exact", how)
}

// TestVanishingFile deletes an input after the run planned it but before
// its cluster opens it: one cluster, the first (largest) file held up by
// a slow user, the last (smallest) deleted meanwhile.
func TestVanishingFile(t *testing.T) {
	row := record(t, "a file deleted after the run started, before it is read", "run")
	d := genData(t, gen.Options{Seed: 35, Files: 5, Size: gen.Size{Bytes: 2 << 20}})
	first, last := d.files[0], d.files[len(d.files)-1]
	slow := d.userOnlyIn(t, filepath.Base(first), 1)
	out := t.TempDir()
	runDir := filepath.Join(out, engine.DefaultJobName+"0")
	b := startBg(t, faultyBin, runArgs(d.files, "--out", out, "--no-progress", "--clusters", "1",
		"--param", "slow_user="+slow, "--param", "slow_ms=800"))
	b.waitLog(t, runDir, engine.StatusLog, fmt.Sprintf("file %s (#0) -> cluster 0", first))
	if err := os.Remove(last); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	r := b.wait(t)
	status := e2etest.ReadLog(t, runDir, engine.StatusLog)
	if i := strings.Index(status, fmt.Sprintf("file %s (#%d) -> cluster 0", last, len(d.files)-1)); i < 0 {
		t.Errorf("the deleted file was never handed out:\n%s", status)
	}
	rest := &dataset{dir: d.dir, files: d.files[:len(d.files)-1], truth: d.truth}
	lost, dup := checkBadRun(t, r, rest, d.dir, []badFile{{name: filepath.Base(last), fails: "no such file or directory"}})
	row.add(lost, dup)
	row.notef("deleted %.1f s before the run ended: it fails naming the file, the others exact", time.Since(deleted).Seconds())
}
