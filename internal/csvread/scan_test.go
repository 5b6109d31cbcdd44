package csvread

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
)

func TestFile_Scan(t *testing.T) {
	// f reads in (with the small schema unless opts says otherwise) and
	// checks the rows (decoded, "a|b|c" per line), their lines and the
	// bad-row count.
	f := func(name, in string, opts Options, want string, wantLines []int64, wantBad int64) {
		t.Helper()
		if opts.Schema == nil {
			opts.Schema = smallSchema
		}
		opts.MaxBadRowShare = -1
		for _, chunk := range []int{0, 7, 64} {
			for _, workers := range []int{1, 3} {
				opts.ChunkBytes = chunk
				res, err := scanFile(t, writeTemp(t, name+".csv", []byte(in)), opts, workers)
				if err != nil {
					t.Fatalf("%s (chunk %d, workers %d): %v", name, chunk, workers, err)
				}
				if got := rowsString(res.rows); got != want {
					t.Fatalf("%s (chunk %d, workers %d): rows\n%s\nwant\n%s", name, chunk, workers, got, want)
				}
				if wantLines != nil && fmt.Sprint(res.lines) != fmt.Sprint(wantLines) {
					t.Fatalf("%s: lines %v, want %v", name, res.lines, wantLines)
				}
				if res.stats.BadRows != wantBad {
					t.Fatalf("%s: %d bad rows, want %d (samples %v)", name, res.stats.BadRows, wantBad, res.stats.Samples)
				}
			}
		}
	}
	o := Options{}
	f("comma", "id,user,amount\n1,u1,10\n2,u2,20\n", o, "1|u1|10\n2|u2|20\n", []int64{2, 3}, 0)
	f("semicolon", "id;user;amount\n1;u1;10,5\n2;u2;20\n", o, "1|u1|10,5\n2|u2|20\n", nil, 0)
	f("pipe", "id|user|amount\n1|u,1|10\n", o, "1|u,1|10\n", nil, 0)
	f("tab", "id\tuser\tamount\n1\tu 1\t10\n", o, "1|u 1|10\n", nil, 0)
	f("given delimiter", "id;user;amount\n1;u1;10\n", Options{Delimiter: ';'}, "1|u1|10\n", nil, 0)
	f("no final newline", "id,user,amount\n1,u1,10\n2,u2,20", o, "1|u1|10\n2|u2|20\n", []int64{2, 3}, 0)
	f("crlf", "id,user,amount\r\n1,u1,10\r\n2,u2,20\r\n", o, "1|u1|10\n2|u2|20\n", nil, 0)
	f("crlf quoted", "id,user,amount\r\n\"1\",\"u1\",\"10\"\r\n", o, "1|u1|10\n", nil, 0)
	f("bom", "\xef\xbb\xbfid,user,amount\n1,u1,10\n", o, "1|u1|10\n", nil, 0)
	f("empty lines", "\n\nid,user,amount\n\n1,u1,10\r\n\r\n\n2,u2,20\n\n", o, "1|u1|10\n2|u2|20\n", []int64{5, 8}, 0)
	f("reordered", "amount,user,id\n10,u1,1\n", o, "1|u1|10\n", nil, 0)
	f("extra columns", "x,amount,y,user,id,z\na,10,b,u1,1,c\n", o, "1|u1|10\n", nil, 0)
	f("header case and space", " ID , User ,AMOUNT\n1,u1,10\n", o, "1|u1|10\n", nil, 0)
	f("quoted delimiter", "id,user,amount\n1,\"u,1\",10\n", o, "1|u,1|10\n", nil, 0)
	f("quoted quote", "id,user,amount\n1,\"say \"\"hi\"\"\",10\n", o, "1|say \"hi\"|10\n", nil, 0)
	f("quoted newline", "id,user,amount\n1,\"a\nb\r\nc\",10\n2,u2,20\n", o, "1|a\nb\r\nc|10\n2|u2|20\n", []int64{2, 5}, 0)
	f("quoted empty", "id,user,amount\n\"\",\"\",\"\"\n", o, "||\n", nil, 0)
	f("empty fields", "id,user,amount\n,,\n", o, "||\n", nil, 0)
	f("stray quote is data", "id,user,amount\n1,5\" screw,10\n2,u2,20\n", o, "1|5\" screw|10\n2|u2|20\n", []int64{2, 3}, 0)
	f("text after closing quote", "id,user,amount\n1,\"ab\"c,10\n", o, "1|abc|10\n", nil, 0)
	f("quoted header", "\"id\",\"user\",\"amount\"\n1,u1,10\n", o, "1|u1|10\n", nil, 0)
	f("header only", "id,user,amount\n", o, "", nil, 0)
	f("header only, no newline", "id,user,amount", o, "", nil, 0)
	f("wrong field counts", "id,user,amount\n1,u1\n2,u2,20\n3,u3,30,x\n\"4\",u4\n", o, "2|u2|20\n", []int64{3}, 3)
	f("open quote at end", "id,user,amount\n1,u1,10\n2,\"u2,20\n3,u3,30\n\n4,u4,40\n", o, "1|u1|10\n", nil, 3)
	f("whitespace line is bad", "id,user,amount\n \n1,u1,10\n", o, "1|u1|10\n", nil, 1)
}

func TestFile_Scan_badRowSamples(t *testing.T) {
	in := "id,user,amount\n1,u1,10\n2,u2\n3,u3,30\n\n4,\"a\nb\",x,y\n5,u5,50\n6\n7,u7,70\n"
	for _, chunk := range []int{16, 0} {
		res, err := scanFile(t, writeTemp(t, "bad.csv", []byte(in)),
			Options{Schema: smallSchema, MaxBadRowShare: -1, SampleBadRows: 2, ChunkBytes: chunk}, 2)
		if err != nil {
			t.Fatal(err)
		}
		st := res.stats
		if st.Rows != 4 || st.BadRows != 3 || st.Lines != 10 {
			t.Fatalf("stats %+v", st)
		}
		if len(st.Samples) != 2 {
			t.Fatalf("samples %v", st.Samples)
		}
		s := st.Samples[0]
		if s.Line != 3 || s.File != res.file.Path || s.Text != "2,u2" || !errors.Is(s, ErrFieldCount) {
			t.Fatalf("sample 0: %+v", s)
		}
		if want := res.file.Path + ":3: wrong number of fields: 2, the header has 3"; s.Error() != want {
			t.Fatalf("sample 0 says %q, want %q", s.Error(), want)
		}
		if s := st.Samples[1]; s.Line != 6 || s.Text != "4,\"a" {
			t.Fatalf("sample 1: %+v", s)
		}
		if fmt.Sprint(res.lines) != "[2 4 8 10]" {
			t.Fatalf("lines %v", res.lines)
		}
	}
}

func TestFile_Scan_maxBadRows(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,user,amount\n")
	for i := range 1000 {
		if i%50 == 7 { // 20 bad rows: 2%
			fmt.Fprintf(&b, "%d,bad\n", i)
		} else {
			fmt.Fprintf(&b, "%d,u%d,%d\n", i, i, i)
		}
	}
	path := writeTemp(t, "bad.csv", []byte(b.String()))
	f := func(share float64, wantErr bool) {
		t.Helper()
		res, err := scanFile(t, path, Options{Schema: smallSchema, MaxBadRowShare: share}, 2)
		if !wantErr {
			if err != nil {
				t.Fatalf("share %v: %v", share, err)
			}
			if res.stats.Rows != 980 || res.stats.BadRows != 20 {
				t.Fatalf("share %v: %+v", share, res.stats)
			}
			return
		}
		var fe *FileError
		if !errors.As(err, &fe) || !errors.Is(err, ErrTooManyBadRows) || fe.File != path {
			t.Fatalf("share %v: error %v, want too many bad rows", share, err)
		}
		want := path + ": too many bad rows: 20 of 1000 rows (2.00%, more than --max-bad-rows 1.00%); first at line 9: wrong number of fields: 2, the header has 3: \"7,bad\""
		if err.Error() != want {
			t.Fatalf("error\n%s\nwant\n%s", err, want)
		}
	}
	f(0, true) // the default, 1%
	f(0.01, true)
	f(0.02, false)
	f(-1, false)
}

func TestFile_Scan_encoding(t *testing.T) {
	// cp1252: "Ñandú" is D1 61 6E 64 FA; "José" is 4A 6F 73 E9.
	cp := "id,user,amount,description\n1,Jos\xe9,10,\xd1and\xfa pe\xf1a\n2,u2,20,caf\xe9 \x80\n"
	schema := feature.MustSchema([]string{"id", "user", "amount", "description"}, "user")
	f := func(name, in string, enc feature.Encoding, wantEnc feature.Encoding, want string, wantBad int64) {
		t.Helper()
		res, err := scanFile(t, writeTemp(t, name+".csv", []byte(in)),
			Options{Schema: schema, Encoding: enc, MaxBadRowShare: -1}, 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.file.Encoding != wantEnc {
			t.Fatalf("%s: encoding %v, want %v", name, res.file.Encoding, wantEnc)
		}
		if got := rowsString(res.rows); got != want {
			t.Fatalf("%s: rows\n%q\nwant\n%q", name, got, want)
		}
		if res.stats.BadRows != wantBad {
			t.Fatalf("%s: %d bad rows, want %d", name, res.stats.BadRows, wantBad)
		}
	}
	// Row.String decodes every field, the user too.
	f("cp1252 auto", cp, feature.EncodingAuto, feature.EncodingCP1252,
		"1|José|10|Ñandú peña\n2|u2|20|café €\n", 0)
	f("cp1252 given", cp, feature.EncodingCP1252, feature.EncodingCP1252,
		"1|José|10|Ñandú peña\n2|u2|20|café €\n", 0)
	utf := "id,user,amount,description\n1,José,10,Ñandú peña\n"
	f("utf8 auto", utf, feature.EncodingAuto, feature.EncodingAuto, "1|José|10|Ñandú peña\n", 0)
	f("utf8 given", utf, feature.EncodingUTF8, feature.EncodingUTF8, "1|José|10|Ñandú peña\n", 0)
	f("utf8 given, cp1252 row", utf+"2,u2,20,pe\xf1a\n3,u3,30,ok\n", feature.EncodingUTF8, feature.EncodingUTF8,
		"1|José|10|Ñandú peña\n3|u3|30|ok\n", 1)
	f("utf8 given, cp1252 quoted row", utf+"2,u2,20,\"pe\xf1a\"\n", feature.EncodingUTF8, feature.EncodingUTF8,
		"1|José|10|Ñandú peña\n", 1)

	// The same user, written in both encodings, has one key.
	users := func(in string) []string {
		res, err := scanFile(t, writeTemp(t, "u.csv", []byte(in)), Options{Schema: schema}, 1)
		if err != nil {
			t.Fatal(err)
		}
		return res.users
	}
	a := users("id,user,amount,description\n1,Pe\xf1a S.A.,1,x\n")
	b := users("id,user,amount,description\n1,Peña S.A.,1,x\n")
	if len(a) != 1 || a[0] != "Peña S.A." || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("users %q and %q, want both \"Peña S.A.\"", a, b)
	}
	// A file whose first MiB is UTF-8 stays automatic: a cp1252 user
	// after it is converted on its own.
	pad := strings.Repeat("0,u,1,x\n", sniffBytes/8+1)
	c := users("id,user,amount,description\n1,Peña S.A.,1,x\n" + pad + "2,Pe\xf1a S.A.,1,x\n")
	if len(c) < 2 || c[0] != "Peña S.A." || c[len(c)-1] != "Peña S.A." {
		t.Fatalf("users %q", c[len(c)-1])
	}
	// One that is not is cp1252 throughout.
	c = users("id,user,amount,description\n1,Pe\xf1a S.A.,1,x\n2,Peña S.A.,1,x\n")
	if fmt.Sprint(c) != "[Peña S.A. PeÃ±a S.A.]" {
		t.Fatalf("users %q", c)
	}
}

func TestOpen_aliases(t *testing.T) {
	f := func(header string, opts Options, wantCols []int) {
		t.Helper()
		file, err := Open(writeTemp(t, "a.csv", []byte(header+"\n")), opts)
		if err != nil {
			t.Fatalf("%q: %v", header, err)
		}
		defer file.Close()
		if fmt.Sprint(file.colOf) != fmt.Sprint(wantCols) {
			t.Fatalf("%q: columns %v, want %v", header, file.colOf, wantCols)
		}
	}
	// invoice_id, issuer, receiver, issued_at, amount, currency, description
	f("invoice_id,issuer,receiver,issued_at,amount,currency,description", Options{}, []int{0, 1, 2, 3, 4, 5, 6})
	f("UUID;RFC_Emisor;RFC Receptor;Fecha Emisión;Total;Moneda;Descripción", Options{}, []int{0, 1, 2, 3, 4, 5, 6})
	f("folio|user_id|customer|date|importe|ccy|concepto|extra", Options{}, []int{0, 1, 2, 3, 4, 5, 6})
	f("desc\tccy\tamount\tissue_ts\treceptor\temisor\tid", Options{}, []int{6, 5, 4, 3, 2, 1, 0})
	// A canonical name wins over an alias, wherever it is.
	f("id,issuer,receiver,issued_at,amount,currency,description,invoice_id", Options{}, []int{7, 1, 2, 3, 4, 5, 6})
	// The caller's aliases.
	f("n,vendedor,comprador,cuando,cuanto,divisa,que", Options{Aliases: map[string][]string{
		"invoice_id": {"n"}, "Issuer": {"Vendedor"}, "receiver": {"comprador"}, "issued_at": {"cuando"},
		"amount": {"cuanto"}, "currency": {"divisa"}, "description": {"que"},
	}}, []int{0, 1, 2, 3, 4, 5, 6})
	// cp1252 header.
	f("id,emisor,receptor,fecha,total,moneda,descripci\xf3n", Options{}, []int{0, 1, 2, 3, 4, 5, 6})
}

func TestOpen_errors(t *testing.T) {
	f := func(name string, data []byte, opts Options, target error, want string) {
		t.Helper()
		path := writeTemp(t, name, data)
		file, err := Open(path, opts)
		if err == nil {
			file.Close()
			t.Fatalf("%s: no error", name)
		}
		var fe *FileError
		if !errors.As(err, &fe) || fe.File != path || !errors.Is(err, target) {
			t.Fatalf("%s: error %#v, want a *FileError for %v", name, err, target)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: error %q does not say %q", name, err, want)
		}
	}
	f("empty.csv", nil, Options{}, ErrEmpty, "empty file, no header")
	f("blank.csv", []byte("\n\r\n\n"), Options{}, ErrEmpty, "empty file, no header")
	f("bom.csv", []byte("\xef\xbb\xbf"), Options{}, ErrEmpty, "empty file, no header")
	f("nouser.csv", []byte("invoice_id,receiver,issued_at,amount,currency,description\n1,b,2024-01-01,1,MXN,x\n"),
		Options{}, ErrMissingColumn, `user column "issuer" (looked for issuer, issuer_id, user_id, user, rfc, rfc_emisor, emisor, issuer_rfc); the header (delimiter ',') is ["invoice_id" "receiver" "issued_at" "amount" "currency" "description"]`)
	f("noamount.csv", []byte("id;user\n1;a\n"), Options{Schema: smallSchema}, ErrMissingColumn,
		`a.csv:1: missing column: column "amount" (looked for amount, total, monto, importe, amount_total)`[6:])
	f("twomissing.csv", []byte("id\n1\n"), Options{Schema: smallSchema}, ErrMissingColumn,
		`missing column: user column "user" (looked for user); column "amount"`)
	bin := make([]byte, 4096)
	for i := range bin {
		bin[i] = byte(i * 7919 >> 3)
	}
	f("binary.csv", bin, Options{}, ErrNotText, "not a text file")
	f("utf16.csv", append([]byte{0xff, 0xfe}, []byte("i\x00d\x00,\x00u\x00\n\x00")...), Options{}, ErrNotText, "UTF-16")
	f("missing.csv.gz", nil, Options{}, ErrTruncated, "truncated gzip stream")

	if _, err := Open(writeTemp(t, "x.csv", []byte("a\n")), Options{Delimiter: '"'}); err == nil ||
		!strings.Contains(err.Error(), "delimiter") {
		t.Fatalf("bad delimiter: %v", err)
	}
	if _, err := Open(writeTemp(t, "x.csv", []byte("a\n")), Options{Aliases: map[string][]string{"isuer": {"rfc"}}}); err == nil ||
		!strings.Contains(err.Error(), `aliases for "isuer": not a column of the schema`) {
		t.Fatalf("alias of no column: %v", err)
	}
	_, err := Open("/nonexistent/file.csv", Options{})
	var fe *FileError
	if !errors.As(err, &fe) || err.Error() != "/nonexistent/file.csv: open: no such file or directory" {
		t.Fatalf("missing file: %v", err)
	}
}

func TestFile_Scan_longRows(t *testing.T) {
	// A 1 MiB field read with tiny chunks and with big ones.
	big := strings.Repeat("ñ", 1<<19)
	in := "id,user,amount\n1,u1,10\n2,\"" + big + "\nx\",20\n3,u3," + big + "\n4,u4,40\n"
	for _, chunk := range []int{64, 0} {
		res, err := scanFile(t, writeTemp(t, "big.csv", []byte(in)), Options{Schema: smallSchema, ChunkBytes: chunk}, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.rows) != 4 || res.rows[1][1] != big+"\nx" || res.rows[2][2] != big || res.rows[3][0] != "4" {
			t.Fatalf("chunk %d: %d rows", chunk, len(res.rows))
		}
		if fmt.Sprint(res.lines) != "[2 3 5 6]" {
			t.Fatalf("lines %v", res.lines)
		}
	}

	// A row longer than MaxRowBytes fails the file, naming its line.
	in = "id,user,amount\n1,u1,10\n2,\"u2,20\n" + strings.Repeat("3,u3,30\n", 1000)
	path := writeTemp(t, "open.csv", []byte(in))
	_, err := scanFile(t, path, Options{Schema: smallSchema, MaxRowBytes: 1024, ChunkBytes: 100}, 2)
	if !errors.Is(err, ErrRowTooLong) || err.Error() != path+":3: unterminated quote or row longer than 1 KiB" {
		t.Fatalf("error %v", err)
	}
	// The default limit says 64 MiB.
	if got := (rowTooLongError{DefaultMaxRowBytes}).Error(); got != "unterminated quote or row longer than 64 MiB" {
		t.Fatal(got)
	}
}

func TestFile_Scan_binaryAfterHeader(t *testing.T) {
	// Binary data after a good header and a little text: bad rows over the share.
	var b bytes.Buffer
	b.WriteString("id,user,amount\n1,u1,10\n")
	for i := 0; b.Len() < 2<<20; i++ {
		b.WriteByte(byte(i*7919>>5) | 0x80)
		if i%97 == 0 {
			b.WriteByte('\n')
		}
	}
	_, err := scanFile(t, writeTemp(t, "bin.csv", b.Bytes()), Options{Schema: smallSchema}, 2)
	if !errors.Is(err, ErrTooManyBadRows) {
		t.Fatalf("error %v, want too many bad rows", err)
	}
}

func TestFile_Scan_stop(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,user,amount\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "%d,u%d,%d\n", i, i%100, i)
	}
	path := writeTemp(t, "many.csv", []byte(b.String()))

	// An error from fn is returned as it is.
	errStop := errors.New("stop here")
	f, err := Open(path, Options{Schema: smallSchema, ChunkBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	_, err = f.Scan(context.Background(), 1, func(*Batch) error {
		calls++
		return errStop
	})
	f.Close()
	if err != errStop || calls != 1 {
		t.Fatalf("error %v after %d calls", err, calls)
	}

	// Cancelling the context stops the scan.
	f, err = Open(path, Options{Schema: smallSchema, ChunkBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := f.Scan(ctx, 3, func(*Batch) error {
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || st.Rows >= 20000 {
		t.Fatalf("error %v, rows %d", err, st.Rows)
	}
	if _, err := f.Scan(context.Background(), 1, func(*Batch) error { return nil }); err == nil {
		t.Fatal("second scan: no error")
	}
	f.Close()

	// Progress counters reach the file's size.
	f, err = Open(path, Options{Schema: smallSchema})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err = f.Scan(context.Background(), 2, func(*Batch) error { return nil })
	if err != nil || st.Rows != 20000 || st.Lines != 20001 || st.Bytes != int64(b.Len()) ||
		f.BytesRead() != int64(b.Len()) || f.DiskBytesRead() != int64(b.Len()) {
		t.Fatalf("%v %+v %d %d", err, st, f.BytesRead(), f.DiskBytesRead())
	}
}

// TestBatch_RowSpan checks that RowSpan gives each row's fields back to
// back with their lengths, the same bytes Field gives one by one, on
// quoted fields, cp1252 users and CRLF lines.
func TestBatch_RowSpan(t *testing.T) {
	in := "id;user;amount\r\n1;\"a;b\";10\r\n2;Pe\xf1a;\"2\"\"0\"\r\n3;;\r\n"
	path := writeTemp(t, "span.csv", []byte(in))
	f, err := Open(path, Options{Schema: smallSchema})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := 0
	_, err = f.Scan(context.Background(), 1, func(b *Batch) error {
		lens := make([]uint32, smallSchema.Len())
		for i := range b.Len() {
			span := b.RowSpan(i, lens)
			var want []byte
			for j := range lens {
				fld := b.Field(i, j)
				if int(lens[j]) != len(fld) {
					t.Errorf("row %d field %d: length %d, Field has %d", i, j, lens[j], len(fld))
				}
				want = append(want, fld...)
			}
			if !bytes.Equal(span, want) {
				t.Errorf("row %d: RowSpan %q, fields %q", i, span, want)
			}
			rows++
		}
		return nil
	})
	if err != nil || rows != 3 {
		t.Fatalf("rows %d, err %v", rows, err)
	}
}
