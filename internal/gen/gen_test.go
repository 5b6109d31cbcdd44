package gen

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/text/encoding/charmap"

	"github.com/mce-engine/mce/engine/feature"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// generate runs Run into a fresh directory.
func generate(t testing.TB, o Options) (string, *Summary) {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	o.Logger = quiet()
	o.NoSync = true
	sum, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return o.Dir, sum
}

// readAll returns a file's uncompressed bytes.
func readAll(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r io.Reader
	switch {
	case strings.HasSuffix(path, ".gz"):
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = zr
	case strings.HasSuffix(path, ".zst"):
		zr, err := zstd.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer zr.Close()
		r = zr
	default:
		return raw
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// dirContents maps every file name in dir to its bytes.
func dirContents(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = b
	}
	return m
}

func TestRun_Deterministic(t *testing.T) {
	o := Options{Seed: 7, Files: 6, Size: Size{Rows: 150_000}, Messy: true}

	procs := runtime.GOMAXPROCS(1)
	o.Workers = 1
	dir1, _ := generate(t, o)
	runtime.GOMAXPROCS(procs)

	o.Workers = 5
	dir2, _ := generate(t, o)
	a, b := dirContents(t, dir1), dirContents(t, dir2)
	if len(a) != o.Files+2 {
		t.Fatalf("got %d files, want %d: %v", len(a), o.Files+2, slices.Sorted(maps.Keys(a)))
	}
	if !maps.EqualFunc(a, b, bytes.Equal) {
		for name := range a {
			if !bytes.Equal(a[name], b[name]) {
				t.Errorf("%s differs between 1 worker at GOMAXPROCS=1 and 5 workers", name)
			}
		}
		t.FailNow()
	}

	o.Seed = 8
	dir3, _ := generate(t, o)
	c := dirContents(t, dir3)
	for name, data := range a {
		if bytes.Equal(data, c[name]) {
			t.Errorf("%s is the same for seeds 7 and 8", name)
		}
	}
}

func TestRun_HeavyShare(t *testing.T) {
	dir, sum := generate(t, Options{Seed: 3, Size: Size{Rows: 300_000}})
	truth, err := ReadTruth(dir)
	if err != nil {
		t.Fatal(err)
	}
	perUser := map[string]int64{}
	var total int64
	for _, tr := range truth {
		perUser[tr.User] += tr.Rows
		total += tr.Rows
	}
	if total != sum.Rows || total != 300_000 {
		t.Fatalf("truth has %d rows, summary %d, want 300000", total, sum.Rows)
	}
	share := float64(perUser[bankID]) / float64(total)
	if share < 0.12 || share > 0.14 {
		t.Errorf("bank %s holds %.4f of the rows, want 0.13 ± 0.01", bankID, share)
	}
	// A power law: the next largest issuer is far smaller than the bank,
	// and the largest 1% of the other issuers hold a large part of their
	// rows.
	delete(perUser, bankID)
	counts := slices.Sorted(maps.Values(perUser))
	slices.Reverse(counts)
	if top := float64(counts[0]) / float64(total); top > 0.06 {
		t.Errorf("largest ordinary issuer holds %.3f of the rows, want well below the bank", top)
	}
	var topRows, otherRows int64
	for i, c := range counts {
		if i < len(counts)/100 {
			topRows += c
		}
		otherRows += c
	}
	if s := float64(topRows) / float64(otherRows); s < 0.3 {
		t.Errorf("top 1%% of %d issuers hold %.3f of their rows, want a power law (> 0.3)", len(counts), s)
	}
	if len(counts) < sum.Users/4 {
		t.Errorf("only %d of %d issuers have rows", len(counts), sum.Users)
	}

	t.Run("None", func(t *testing.T) {
		dir, _ := generate(t, Options{Seed: 3, Files: 2, Size: Size{Rows: 20_000}, HeavyShare: -1})
		truth, err := ReadTruth(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range truth {
			if tr.User == bankID {
				t.Fatalf("bank has rows with HeavyShare < 0: %+v", tr)
			}
		}
	})
}

func TestRun_DescendingSizes(t *testing.T) {
	f := func(name string, o Options) {
		t.Run(name, func(t *testing.T) {
			_, sum := generate(t, o)
			if len(sum.Files) != o.Files {
				t.Fatalf("got %d files, want %d", len(sum.Files), o.Files)
			}
			for i := 1; i < len(sum.Files); i++ {
				prev, cur := sum.Files[i-1], sum.Files[i]
				if cur.Bytes >= prev.Bytes {
					t.Errorf("file %d %s (%d bytes) not smaller than file %d %s (%d bytes)",
						i, cur.Name, cur.Bytes, i-1, prev.Name, prev.Bytes)
				}
				if r := float64(cur.Bytes) / float64(prev.Bytes); r < 0.8 || r > 0.95 {
					t.Errorf("file %d is %.2f of file %d, want about %.2f", i, r, i-1, sizeStep)
				}
			}
			if want := o.Size.Bytes; want > 0 {
				if d := float64(sum.Bytes-want) / float64(want); d < -0.01 || d > 0.01 {
					t.Errorf("wrote %d bytes, want %d ± 1%%", sum.Bytes, want)
				}
			}
			if want := o.Size.Rows; want > 0 && sum.Rows+sum.BadRows != want {
				t.Errorf("wrote %d rows, want %d", sum.Rows+sum.BadRows, want)
			}
		})
	}
	f("Bytes", Options{Seed: 1, Files: 6, Size: Size{Bytes: 8_000_000}})
	f("Rows", Options{Seed: 1, Files: 5, Size: Size{Rows: 100_000}})
	f("Messy", Options{Seed: 1, Files: 7, Size: Size{Bytes: 8_000_000}, Messy: true})
	f("UTF8", Options{Seed: 1, Files: 3, Size: Size{Bytes: 3_000_000}, Encoding: feature.EncodingUTF8})
}

func TestRun_Encoding(t *testing.T) {
	f := func(enc feature.Encoding) {
		t.Run(enc.String(), func(t *testing.T) {
			dir, sum := generate(t, Options{Seed: 2, Files: 1, Size: Size{Rows: 5000}, Encoding: enc})
			data := readAll(t, filepath.Join(dir, sum.Files[0].Name))
			valid := utf8.Valid(data)
			switch enc {
			case feature.EncodingUTF8:
				if !valid {
					t.Error("UTF-8 file is not valid UTF-8")
				}
				for _, s := range []string{"ñ", "Ñ", "í", "—"} {
					if !bytes.Contains(data, []byte(s)) {
						t.Errorf("UTF-8 file has no %q", s)
					}
				}
			default:
				if valid {
					t.Error("cp1252 file is valid UTF-8: no non-ASCII text written")
				}
				// ñ Ñ í — in cp1252.
				for _, c := range []byte{0xF1, 0xD1, 0xED, 0x97} {
					if bytes.IndexByte(data, c) < 0 {
						t.Errorf("cp1252 file has no byte 0x%02X", c)
					}
				}
				if bytes.Contains(data, []byte("ñ")) {
					t.Error("cp1252 file holds UTF-8 ñ")
				}
			}
			if sum.Files[0].Encoding != enc {
				t.Errorf("summary says %v, want %v", sum.Files[0].Encoding, enc)
			}
		})
	}
	f(feature.EncodingCP1252)
	f(feature.EncodingUTF8)
}

func TestRun_MessyVariants(t *testing.T) {
	dir, sum := generate(t, Options{Seed: 11, Files: 6, Size: Size{Rows: 120_000}, Messy: true})
	delims := map[byte]bool{}
	comps := map[string]bool{}
	encs := map[feature.Encoding]bool{}
	var crlf, shuffled, extra, aliased, upper int
	var multiline, bad int64
	known := map[string]bool{}
	for _, n := range canonical {
		known[n] = true
	}
	for i, f := range sum.Files {
		delims[f.Delimiter] = true
		comps[f.Compression] = true
		encs[f.Encoding] = true
		multiline += f.MultilineRows
		bad += f.BadRows
		raw, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		switch f.Compression {
		case CompressGzip:
			if !bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) || !strings.HasSuffix(f.Name, ".gz") {
				t.Errorf("%s: not a gzip file", f.Name)
			}
		case CompressZstd:
			if !bytes.HasPrefix(raw, []byte{0x28, 0xb5, 0x2f, 0xfd}) || !strings.HasSuffix(f.Name, ".zst") {
				t.Errorf("%s: not a zstd file", f.Name)
			}
		}
		data := readAll(t, filepath.Join(dir, f.Name))
		hdrLine, _, _ := bytes.Cut(data, []byte("\n"))
		if f.CRLF {
			crlf++
			if n, m := bytes.Count(data, []byte("\r\n")), bytes.Count(data, []byte("\n")); n != m {
				t.Errorf("%s: %d of %d line ends are CRLF", f.Name, n, m)
			}
		} else if bytes.Contains(data, []byte("\r")) {
			t.Errorf("%s: CR in a file without CRLF", f.Name)
		}
		hdr := strings.Split(strings.TrimSuffix(string(hdrLine), "\r"), string(f.Delimiter))
		if !slices.Equal(hdr, f.Header) {
			t.Errorf("%s: header %q, summary says %q", f.Name, hdr, f.Header)
		}
		for _, h := range hdr {
			if !known[h] {
				aliased++
			}
			if h != strings.ToLower(h) {
				upper++
			}
		}
		if f.Shuffled {
			shuffled++
		}
		if f.ExtraColumn {
			extra++
			if !slices.Contains(hdr, extraColumn) {
				t.Errorf("%s: no %s column", f.Name, extraColumn)
			}
		}
		if i == 0 && (f.Compression != "" || f.CRLF || f.Shuffled) {
			t.Errorf("largest file %s is not kept simple: %+v", f.Name, f)
		}
	}
	if len(delims) != 4 {
		t.Errorf("delimiters %q, want all four", slices.Collect(maps.Keys(delims)))
	}
	if !comps[CompressGzip] || !comps[CompressZstd] || !comps[CompressNone] {
		t.Errorf("compressions %q, want none, gzip and zstd", slices.Collect(maps.Keys(comps)))
	}
	if len(encs) != 2 {
		t.Errorf("encodings %v, want cp1252 and utf8", slices.Collect(maps.Keys(encs)))
	}
	if crlf != 1 {
		t.Errorf("%d CRLF files, want 1", crlf)
	}
	if shuffled == 0 || extra == 0 || aliased == 0 || upper == 0 {
		t.Errorf("shuffled %d, extra column %d, aliased names %d, upper-case names %d: want some of each",
			shuffled, extra, aliased, upper)
	}
	if multiline == 0 || bad == 0 {
		t.Errorf("multiline rows %d, bad rows %d: want some of each", multiline, bad)
	}
	if want := int64(120); bad < want/2 || bad > want*2 {
		t.Errorf("%d bad rows in 120000, want about 0.001 of them", bad)
	}
}

// testAliases maps every header name the generator may write to its
// canonical column: the test's own table, so that it checks the generator
// against the names the reader documents rather than against itself.
var testAliases = map[string]string{
	"invoice_id": "invoice_id", "folio": "invoice_id", "uuid": "invoice_id", "id": "invoice_id",
	"issuer": "issuer", "rfc_emisor": "issuer", "emisor": "issuer", "issuer_rfc": "issuer", "issuer_id": "issuer",
	"receiver": "receiver", "rfc_receptor": "receiver", "receptor": "receiver", "receiver_rfc": "receiver",
	"issued_at": "issued_at", "fecha_emision": "issued_at", "fecha": "issued_at", "issue_time": "issued_at",
	"amount": "amount", "importe": "amount", "total": "amount", "monto": "amount",
	"currency": "currency", "moneda": "currency", "ccy": "currency",
	"description": "description", "concepto": "description", "descripcion": "description",
	"uso_cfdi": "",
}

// parseIndependently reads a generated file with encoding/csv and returns
// per-issuer rows and cents of the good rows, and the 1-based lines where
// bad rows (rows whose field count differs from the header's) start.
func parseIndependently(t *testing.T, path string, ft FileTruth) (map[string]Truth, []int64) {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(readAll(t, path)))
	r.Comma = rune(ft.Delimiter)
	r.FieldsPerRecord = -1
	hdr, err := r.Read()
	if err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	col := map[string]int{}
	for i, h := range hdr {
		c, ok := testAliases[strings.ToLower(strings.TrimSpace(h))]
		if !ok {
			t.Fatalf("%s: unknown header name %q", path, h)
		}
		col[c] = i
	}
	dec := charmap.Windows1252.NewDecoder()
	users := map[string]Truth{}
	var bad []int64
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(rec) != len(hdr) {
			line, _ := r.FieldPos(0)
			bad = append(bad, int64(line))
			continue
		}
		user := rec[col["issuer"]]
		if ft.Encoding == feature.EncodingCP1252 {
			if user, err = dec.String(user); err != nil {
				t.Fatal(err)
			}
		}
		cents, err := ParseCents(rec[col["amount"]])
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if cents <= 0 || !strings.Contains(rec[col["amount"]], ".") || len(strings.Split(rec[col["amount"]], ".")[1]) != 2 {
			t.Errorf("%s: amount %q is not positive with 2 fraction digits", path, rec[col["amount"]])
		}
		if n := utf8.RuneCountInString(user); n != 12 && n != 13 {
			t.Errorf("%s: issuer %q has %d characters", path, user, n)
		}
		u := users[user]
		u.File, u.User, u.Rows, u.AmountCents = ft.File, user, u.Rows+1, u.AmountCents+cents
		users[user] = u
	}
	return users, bad
}

func TestTruth_MatchesEncodingCSV(t *testing.T) {
	f := func(name string, o Options) {
		t.Run(name, func(t *testing.T) {
			dir, sum := generate(t, o)
			truth, err := ReadTruth(dir)
			if err != nil {
				t.Fatal(err)
			}
			files, err := ReadTruthFiles(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != len(sum.Files) {
				t.Fatalf("truth_files.csv has %d files, want %d", len(files), len(sum.Files))
			}
			if !slices.IsSortedFunc(truth, func(a, b Truth) int {
				return cmpOr(strings.Compare(a.File, b.File), strings.Compare(a.User, b.User))
			}) {
				t.Error("truth.csv is not sorted by file, then user")
			}
			want := map[string]map[string]Truth{}
			for _, tr := range truth {
				if want[tr.File] == nil {
					want[tr.File] = map[string]Truth{}
				}
				want[tr.File][tr.User] = tr
			}
			for _, ft := range files {
				got, badLines := parseIndependently(t, filepath.Join(dir, ft.File), ft)
				bad := int64(len(badLines))
				if !maps.Equal(got, want[ft.File]) {
					t.Errorf("%s: encoding/csv finds %d issuers, truth.csv %d, or their figures differ",
						ft.File, len(got), len(want[ft.File]))
				}
				var rows, cents int64
				for _, u := range got {
					rows += u.Rows
					cents += u.AmountCents
				}
				if rows != ft.Rows || bad != ft.BadRows || cents != ft.AmountCents || len(got) != ft.Users {
					t.Errorf("%s: encoding/csv finds %d rows, %d bad, %d cents, %d users; truth_files.csv says %+v",
						ft.File, rows, bad, cents, len(got), ft)
				}
				if n := int64(len(readAll(t, filepath.Join(dir, ft.File)))); n != ft.Bytes {
					t.Errorf("%s: %d bytes uncompressed, truth_files.csv says %d", ft.File, n, ft.Bytes)
				}
				fi, err := os.Stat(filepath.Join(dir, ft.File))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Size() != ft.DiskBytes {
					t.Errorf("%s: %d bytes on disk, truth_files.csv says %d", ft.File, fi.Size(), ft.DiskBytes)
				}
			}
		})
	}
	f("Plain", Options{Seed: 5, Files: 3, Size: Size{Rows: 40_000}})
	f("PlainUTF8Semicolon", Options{Seed: 5, Files: 2, Size: Size{Rows: 20_000}, Encoding: feature.EncodingUTF8, Delimiter: ';'})
	f("BadRows", Options{Seed: 6, Files: 2, Size: Size{Rows: 30_000}, BadRowShare: 0.02, Users: 50})
	f("Messy", Options{Seed: 9, Files: 6, Size: Size{Rows: 90_000}, Messy: true, BadRowShare: 0.005})
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func TestRun_RemovesStaleFiles(t *testing.T) {
	dir, _ := generate(t, Options{Seed: 1, Files: 3, Size: Size{Rows: 3000}, Compression: CompressGzip})
	keep := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, sum := generate(t, Options{Dir: dir, Seed: 1, Files: 2, Size: Size{Rows: 3000}})
	want := []string{"notes.txt", TruthFile, TruthFilesFile}
	for _, f := range sum.Files {
		want = append(want, f.Name)
	}
	got := slices.Sorted(maps.Keys(dirContents(t, dir)))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("directory holds %q, want %q", got, want)
	}
}

func TestRun_Canceled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, Options{Dir: dir, Size: Size{Rows: 100_000}, Logger: quiet(), NoSync: true})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a canceled context: %v, want context.Canceled", err)
	}
	if left := dirContents(t, dir); len(left) != 0 {
		t.Errorf("canceled run left %q", slices.Collect(maps.Keys(left)))
	}
}

func TestOptions_Invalid(t *testing.T) {
	f := func(o Options, want string) {
		t.Helper()
		o.Logger = quiet()
		_, err := Run(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Run(%+v) = %v, want an error with %q", o, err, want)
		}
	}
	f(Options{}, "no output directory")
	f(Options{Dir: t.TempDir(), Files: -1}, "files -1")
	f(Options{Dir: t.TempDir(), HeavyShare: 1}, "heavy share")
	f(Options{Dir: t.TempDir(), BadRowShare: 0.7}, "bad row share")
	f(Options{Dir: t.TempDir(), Compression: "lz4"}, `compression "lz4"`)
	f(Options{Dir: t.TempDir(), Delimiter: ':'}, "delimiter")
	f(Options{Dir: t.TempDir(), Encoding: feature.Encoding(9)}, "encoding")
}

func TestParseSize(t *testing.T) {
	f := func(in string, want Size, wantErr bool) {
		t.Helper()
		got, err := ParseSize(in)
		if (err != nil) != wantErr || got != want {
			t.Errorf("ParseSize(%q) = %+v, %v; want %+v, error %v", in, got, err, want, wantErr)
		}
	}
	f("200MB", Size{Bytes: 200_000_000}, false)
	f("2GiB", Size{Bytes: 2 << 30}, false)
	f("1.5gb", Size{Bytes: 1_500_000_000}, false)
	f("512KiB", Size{Bytes: 512 << 10}, false)
	f("64M", Size{Bytes: 64 << 20}, false)
	f("1000", Size{Bytes: 1000}, false)
	f("1e6rows", Size{Rows: 1_000_000}, false)
	f("500000rows", Size{Rows: 500_000}, false)
	f("2.5e5 rows", Size{Rows: 250_000}, false)
	f("1_000_000rows", Size{Rows: 1_000_000}, false)
	f("", Size{}, true)
	f("MB", Size{}, true)
	f("-5MB", Size{}, true)
	f("0rows", Size{}, true)
	f("5 parsecs", Size{}, true)
	f("1e30GB", Size{}, true)
}

func TestParseCents(t *testing.T) {
	f := func(in string, want int64, wantErr bool) {
		t.Helper()
		got, err := ParseCents(in)
		if (err != nil) != wantErr || got != want {
			t.Errorf("ParseCents(%q) = %d, %v; want %d, error %v", in, got, err, want, wantErr)
		}
	}
	f("1234.56", 123456, false)
	f("0.07", 7, false)
	f("-3.5", -350, false)
	f("12", 1200, false)
	f("12.", 1200, false)
	f("1.234", 0, true)
	f("", 0, true)
	f("1,5", 0, true)
	f("99999999999999999999", 0, true)
	for _, c := range []int64{0, 1, 99, 100, 123456789, -5} {
		if got, err := ParseCents(formatCents(c)); err != nil || got != c {
			t.Errorf("ParseCents(formatCents(%d)) = %d, %v", c, got, err)
		}
	}
}

func TestAppendRFC_Distinct(t *testing.T) {
	u := newUsers(200_000, 1, true)
	seen := map[string]bool{}
	var special int
	for i := range int32(u.n) {
		s := u.utf8(i)
		if seen[s] {
			t.Fatalf("issuer %d id %q is not unique", i, s)
		}
		seen[s] = true
		if n := utf8.RuneCountInString(s); n != 12 && n != 13 {
			t.Fatalf("issuer id %q has %d characters", s, n)
		}
		if strings.ContainsAny(s, "Ñ&") {
			special++
		}
		if cp := u.id(i, 0); len(cp) != utf8.RuneCountInString(s) {
			t.Fatalf("cp1252 id of %q has %d bytes", s, len(cp))
		}
	}
	if share := float64(special) / float64(u.n); share < 0.02 || share > 0.2 {
		t.Errorf("%.3f of issuer ids hold Ñ or &, want a few percent", share)
	}
	if u.utf8(0) != bankID {
		t.Errorf("issuer 0 is %q, want the bank %q", u.utf8(0), bankID)
	}
}

// BenchmarkGen measures the write speed of plain cp1252 files (uncompressed
// bytes per second), without fsync.
func BenchmarkGen(b *testing.B) {
	dir := b.TempDir()
	var bytes int64
	for i := 0; b.Loop(); i++ {
		sum, err := Run(context.Background(), Options{
			Dir: dir, Seed: uint64(i), Files: 4, Size: Size{Bytes: 64 << 20}, NoSync: true, Logger: quiet(),
		})
		if err != nil {
			b.Fatal(err)
		}
		bytes = sum.Bytes
	}
	b.SetBytes(bytes)
}
