package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
)

func testCompressor(t testing.TB) *Compressor {
	t.Helper()
	c, err := NewCompressor(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

type testRow struct {
	line   int64
	fields [][]byte
}

// checkBlock checks b's rows against rows; with cols, only those columns
// (the others must be nil), and the block's field bytes.
func checkBlock(t testing.TB, b *Block, rows []testRow, cols ...int) {
	t.Helper()
	if b.Len() != len(rows) {
		t.Fatalf("block has %d rows, want %d", b.Len(), len(rows))
	}
	// A time column decoded to its seconds only has no text.
	secondsOnly := func(j int) bool { return b.secondsOnly && slices.Contains(b.TimeColumns(), j) }
	// So has an amount column decoded to its units only.
	amountsOnly := func(j int) bool {
		return j < len(b.amountsOnly) && b.amountsOnly[j] && slices.Contains(b.AmountColumns(), j)
	}
	var fieldBytes int64
	for i, r := range rows {
		wantLine := r.line
		if b.noLines && b.layout != Layout1 {
			wantLine = 0 // SetNoLines
		}
		if b.Line(i) != wantLine {
			t.Fatalf("row %d line %d, want %d", i, b.Line(i), wantLine)
		}
		for j, f := range r.fields {
			fieldBytes += int64(len(f))
			want := f
			if cols != nil && !slices.Contains(cols, j) {
				want = nil
			}
			decoded := cols == nil || slices.Contains(cols, j)
			if secondsOnly(j) || amountsOnly(j) {
				want, decoded = nil, false
			}
			if got := b.Field(i, j); !bytes.Equal(got, want) || decoded != (got != nil) {
				t.Fatalf("row %d field %d = %q, want %q", i, j, got, want)
			}
		}
	}
	if b.FieldBytes() != fieldBytes {
		t.Fatalf("block says %d field bytes, rows have %d", b.FieldBytes(), fieldBytes)
	}
	// Text gives every column's fields as Field does.
	for j := range b.Columns() {
		raw, starts, ends, same, ok := b.Text(j)
		for i := range rows {
			var got []byte
			switch {
			case ok && starts == nil:
				got = same
			case ok:
				got = raw[starts[i]:ends[i]]
			}
			if want := b.Field(i, j); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
				t.Fatalf("row %d field %d: Text gives %q, Field %q", i, j, got, want)
			}
		}
	}
	// The seconds of the packed times are what their text reads as.
	for k, j := range b.TimeColumns() {
		if cols != nil && !slices.Contains(cols, j) {
			t.Fatalf("column %d not decoded, among the time columns %v", j, b.TimeColumns())
		}
		for i := range rows {
			f := rows[i].fields[j]
			if b.SecondsColumn(k)[i] != b.Seconds(i, k) {
				t.Fatalf("row %d column %d: SecondsColumn %d, Seconds %d", i, j, b.SecondsColumn(k)[i], b.Seconds(i, k))
			}
			if sec, ok := feature.LocalSeconds(f); !ok || sec != b.Seconds(i, k) {
				t.Fatalf("row %d column %d: %q has the seconds %d; it reads as %d, %v", i, j, f, b.Seconds(i, k), sec, ok)
			}
		}
	}
	// The units of the packed amounts are what their text reads as, at
	// their fraction digits.
	for k, j := range b.AmountColumns() {
		if cols != nil && !slices.Contains(cols, j) {
			t.Fatalf("column %d not decoded, among the amount columns %v", j, b.AmountColumns())
		}
		for i := range rows {
			f := rows[i].fields[j]
			units, scale := b.Amount(i, k)
			if col, colScale := b.Units(k); col[i] != units || colScale != scale {
				t.Fatalf("row %d column %d: Units %d at %d digits, Amount %d at %d", i, j, col[i], colScale, units, scale)
			}
			if v, err := feature.ParseDecimal(f, scale); err != nil || v != units {
				t.Fatalf("row %d column %d: %q has the units %d at %d digits; it reads as %d, %v", i, j, f, units, scale, v, err)
			}
		}
	}
}

// layouts are the block layouts, as the store formats that write them.
var layouts = []struct {
	name   string
	format int
}{{"layout1", 1}, {"layout2", 2}, {"layout3", 3}, {"layout4", 4}, {"layout5", 5}}

// decodeWritten adds rows to w and decodes the raw block it makes.
func decodeWritten(t testing.TB, w *BlockWriter, rows []testRow) *Block {
	t.Helper()
	for _, r := range rows {
		w.Add(r.line, r.fields)
	}
	var b Block
	if err := b.DecodeRaw(w.AppendRaw(nil), w.Layout()); err != nil {
		t.Fatal(err)
	}
	return &b
}

func TestBlock_RoundTrip(t *testing.T) {
	c := testCompressor(t)
	f := func(name string, ncols int, rows []testRow) {
		for _, l := range layouts {
			t.Run(name+"/"+l.name, func(t *testing.T) {
				for _, codec := range []Codec{CodecNone, CodecS2, CodecZstd} {
					w := NewBlockWriter(ncols).SetFormat(l.format)
					for _, r := range rows {
						w.Add(r.line, r.fields)
					}
					v := w.AppendValue(nil, codec, c)
					var b Block
					if err := b.DecodeValue(v, c); err != nil {
						t.Fatalf("%s: %v", codec, err)
					}
					checkBlock(t, &b, rows)
					// Decoding again into the same Block reuses it.
					if err := b.DecodeValue(v, c); err != nil {
						t.Fatal(err)
					}
					checkBlock(t, &b, rows)
					h, err := ParseValueHeader(v)
					if err != nil || h.Rows != len(rows) || h.Codec != codec || h.Layout != layoutOf(l.format) {
						t.Fatalf("header %+v, %v", h, err)
					}
					// Some columns only, the same Block after all of them.
					for _, cols := range [][]int{{0}, {ncols - 1}, {}, {0, ncols - 1, ncols + 3}} {
						b.SetColumns(cols)
						if err := b.DecodeValue(v, c); err != nil {
							t.Fatalf("%s, columns %v: %v", codec, cols, err)
						}
						checkBlock(t, &b, rows, cols...)
					}
					b.SetColumns(nil)
					if err := b.DecodeValue(v, c); err != nil {
						t.Fatal(err)
					}
					checkBlock(t, &b, rows)
				}
			})
		}
	}
	row := func(line int64, fs ...string) testRow {
		r := testRow{line: line}
		for _, s := range fs {
			r.fields = append(r.fields, []byte(s))
		}
		return r
	}
	f("empty", 3, nil)
	f("one", 3, []testRow{row(2, "a", "", "c")})
	f("constant", 2, []testRow{row(2, "u", "x"), row(5, "u", "y"), row(9, "u", "z")})
	f("all-empty", 2, []testRow{row(2, "", ""), row(3, "", "")})
	f("lines-go-back", 1, []testRow{row(100, "a"), row(3, "b"), row(1<<40, "c")})
	f("binary", 2, []testRow{row(1, "\x00\xff", "ñ"), row(2, "\x00\xff", "\xf1")})
}

func TestBlock_Corrupt(t *testing.T) {
	c := testCompressor(t)
	for _, l := range layouts {
		w := NewBlockWriter(2).SetFormat(l.format)
		w.Add(1, [][]byte{[]byte("user"), []byte("descripción")})
		w.Add(2, [][]byte{[]byte("user"), []byte("otra")})
		for _, codec := range []Codec{CodecNone, CodecS2, CodecZstd} {
			v := w.AppendValue(nil, codec, c)
			for _, cols := range [][]int{nil, {0}} {
				for cut := 0; cut < len(v); cut++ {
					var b Block
					b.SetColumns(cols)
					if err := b.DecodeValue(v[:cut], c); err == nil {
						t.Errorf("%s %s columns %v: value cut to %d bytes decoded", l.name, codec, cols, cut)
					} else if !errors.Is(err, ErrCorrupt) {
						t.Errorf("%s %s: cut %d: error %v is not ErrCorrupt", l.name, codec, cut, err)
					}
				}
			}
			// A byte changed in the raw block: an error or other bytes,
			// never a panic.
			if codec == CodecNone {
				for i := 1; i < len(v); i++ {
					bad := bytes.Clone(v)
					bad[i] ^= 0x55
					var b Block
					if err := b.DecodeValue(bad, c); err != nil && !errors.Is(err, ErrCorrupt) {
						t.Errorf("%s: byte %d flipped: error %v is not ErrCorrupt", l.name, i, err)
					}
				}
			}
		}
	}
}

func FuzzBlock(f *testing.F) {
	f.Add([]byte("a,b,c\nd,e,f\n"), uint8(3), int64(1))
	f.Add([]byte("x\n\n\ny"), uint8(1), int64(-5))
	f.Fuzz(func(t *testing.T, data []byte, ncols uint8, line0 int64) {
		if ncols == 0 {
			ncols = 1
		}
		// Cut the data into rows and fields.
		var rows []testRow
		for i, l := range bytes.Split(data, []byte("\n")) {
			fs := bytes.SplitN(l, []byte(","), int(ncols))
			for len(fs) < int(ncols) {
				fs = append(fs, nil)
			}
			rows = append(rows, testRow{line: line0 + int64(i)*int64(len(l)), fields: fs})
		}
		for _, l := range layouts {
			w := NewBlockWriter(int(ncols)).SetFormat(l.format)
			b := decodeWritten(t, w, rows)
			checkBlock(t, b, rows)
			raw := w.AppendRaw(nil)
			b.SetColumns([]int{int(ncols) - 1})
			if err := b.DecodeRaw(raw, w.Layout()); err != nil {
				t.Fatal(err)
			}
			checkBlock(t, b, rows, int(ncols)-1)
			// Every column that packs as times, to its seconds only.
			b.SetColumns(nil)
			b.SetSecondsOnly(true)
			if err := b.DecodeRaw(raw, w.Layout()); err != nil {
				t.Fatal(err)
			}
			checkBlock(t, b, rows)
			// Without the lines.
			b.SetNoLines(true)
			if err := b.DecodeRaw(raw, w.Layout()); err != nil {
				t.Fatal(err)
			}
			checkBlock(t, b, rows)
			for i := range rows {
				if w.Layout() != Layout1 && b.Line(i) != 0 {
					t.Fatalf("%s: row %d has line %d, decoded without the lines", l.name, i, b.Line(i))
				}
			}
			b.SetNoLines(false)
			// Any bytes decode or fail with ErrCorrupt, never panic.
			b.SetColumns(nil)
			if err := b.DecodeRaw(data, w.Layout()); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeRaw error %v is not ErrCorrupt", err)
			}
		}
		var b Block
		c, err := NewCompressor(1)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := b.DecodeValue(data, c); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeValue error %v is not ErrCorrupt", err)
		}
	})
}

// invoiceRows makes rows that look like the generator's: one user per
// block (as the store writes them), Spanish descriptions, amounts.
func invoiceRows(r *rand.Rand, n int) [][][]byte {
	words := strings.Fields("pago de servicios profesionales consultoría mantenimiento equipo cómputo " +
		"renta oficina papelería envío paquetería honorarios diseño publicidad señalización")
	user := fmt.Sprintf("GAM%06dAB3", r.IntN(1000000))
	out := make([][][]byte, n)
	for i := range out {
		var desc strings.Builder
		for k := 0; k < 3+r.IntN(6); k++ {
			if k > 0 {
				desc.WriteByte(' ')
			}
			desc.WriteString(words[r.IntN(len(words))])
		}
		out[i] = [][]byte{
			fmt.Appendf(nil, "%08X-%04X-%04X-%04X-%012X", r.Uint32(), r.Uint32()&0xFFFF, r.Uint32()&0xFFFF, r.Uint32()&0xFFFF, r.Uint64()&0xFFFFFFFFFFFF),
			[]byte(user),
			fmt.Appendf(nil, "REC%06d%03d", r.IntN(5000), r.IntN(1000)),
			fmt.Appendf(nil, "2024-%02d-%02d %02d:%02d:%02d", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60)),
			fmt.Appendf(nil, "%d.%02d", r.IntN(100000), r.IntN(100)),
			[]byte([]string{"MXN", "MXN", "MXN", "USD"}[r.IntN(4)]),
			[]byte(desc.String()),
		}
	}
	return out
}

// BenchmarkBlockCodec measures encoding and decoding of 64 KiB blocks of
// invoice-like rows with each codec; MB/s is of raw row bytes, and
// "ratio" is the value size over the CSV size of the same rows.
func BenchmarkBlockCodec(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	rows := invoiceRows(r, 5000)
	var csvBytes int
	var blocks [][][][]byte // rows per block, as BlockWriter would cut them
	cur := [][][]byte{}
	size := 0
	for _, row := range rows {
		for _, f := range row {
			csvBytes += len(f) + 1
			size += len(f) + 1
		}
		cur = append(cur, row)
		if size >= DefaultBlockBytes {
			blocks = append(blocks, cur)
			cur, size = nil, 0
		}
	}
	c := testCompressor(b)
	for _, codec := range []Codec{CodecS2, CodecZstd} {
		var values [][]byte
		w := NewBlockWriter(7)
		stored := 0
		for _, blk := range blocks {
			w.Reset()
			for i, row := range blk {
				w.Add(int64(i+2), row)
			}
			v := w.AppendValue(nil, codec, c)
			values = append(values, v)
			stored += len(v)
		}
		csvInBlocks := 0
		for _, blk := range blocks {
			for _, row := range blk {
				for _, f := range row {
					csvInBlocks += len(f) + 1
				}
			}
		}
		b.Run("encode/codec="+codec.String(), func(b *testing.B) {
			b.SetBytes(int64(csvInBlocks))
			b.ReportAllocs()
			var dst []byte
			for i := 0; i < b.N; i++ {
				for _, blk := range blocks {
					w.Reset()
					for k, row := range blk {
						w.Add(int64(k+2), row)
					}
					dst = w.AppendValue(dst[:0], codec, c)
				}
			}
			b.ReportMetric(float64(stored)/float64(csvInBlocks), "ratio")
		})
		b.Run("decode/codec="+codec.String(), func(b *testing.B) {
			b.SetBytes(int64(csvInBlocks))
			b.ReportAllocs()
			var blk Block
			for i := 0; i < b.N; i++ {
				for _, v := range values {
					if err := blk.DecodeValue(v, c); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(stored)/float64(csvInBlocks), "ratio")
		})
	}
}

// BenchmarkBlockDecode measures what a reducer pays per block of a store
// made from the generated invoices: decode a block (uncompressed, as the
// default table-minlz store holds it: pebble decompresses the table) and
// read the fields of every row, for all seven columns or for the four
// the built-in features read (issuer, receiver, issued_at, amount), in
// each block layout. Blocks are one user in one file, 1 to 26 rows (13.5
// on average, as on the benchmark's data). MB/s is of the rows' field
// bytes, all columns.
func BenchmarkBlockDecode(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	var blocks [][][][]byte
	fieldBytes := 0
	for len(blocks) < 2000 {
		rows := invoiceRows(r, 1+r.IntN(26))
		for _, row := range rows {
			for _, f := range row {
				fieldBytes += len(f)
			}
		}
		blocks = append(blocks, rows)
	}
	c := testCompressor(b)
	builtin := []int{1, 2, 3, 4}
	for _, l := range layouts {
		var values [][]byte
		w := NewBlockWriter(7).SetFormat(l.format)
		for _, blk := range blocks {
			w.Reset()
			for i, row := range blk {
				w.Add(int64(i+2), row)
			}
			values = append(values, w.AppendValue(nil, CodecNone, c))
		}
		for _, cols := range []struct {
			name string
			cols []int
		}{{"all", nil}, {"builtin", builtin}} {
			b.Run(l.name+"/columns="+cols.name, func(b *testing.B) {
				b.SetBytes(int64(fieldBytes))
				b.ReportAllocs()
				var blk Block
				blk.SetColumns(cols.cols)
				read := cols.cols
				if read == nil {
					read = []int{0, 1, 2, 3, 4, 5, 6}
				}
				sum := 0
				for b.Loop() {
					for _, v := range values {
						if err := blk.DecodeValue(v, c); err != nil {
							b.Fatal(err)
						}
						for i := 0; i < blk.Len(); i++ {
							for _, j := range read {
								sum += len(blk.Field(i, j))
							}
						}
					}
				}
				if sum == 0 {
					b.Fatal("no bytes read")
				}
			})
		}
	}
}

// BenchmarkBlockRow measures Row, as mce reduce's built-in features call
// it (every row of blocks of the columns they read, the time to its
// seconds only); MB/s is of the rows' field bytes.
func BenchmarkBlockRow(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	c := testCompressor(b)
	w := NewBlockWriter(7)
	fieldBytes := 0
	var values [][]byte
	for range 200 {
		w.Reset()
		for i, row := range invoiceRows(r, 1+r.IntN(26)) {
			for _, f := range row {
				fieldBytes += len(f)
			}
			w.Add(int64(i+2), row)
		}
		values = append(values, w.AppendValue(nil, CodecNone, c))
	}
	blks := make([]Block, len(values))
	for k := range blks {
		blks[k].SetColumns([]int{1, 2, 3, 4})
		blks[k].SetSecondsOnly(true)
		if err := blks[k].DecodeValue(values[k], c); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(fieldBytes))
	var dst [][]byte
	sum := 0
	for b.Loop() {
		for k := range blks {
			blk := &blks[k]
			for i := 0; i < blk.Len(); i++ {
				dst = blk.Row(i, dst)
				sum += len(dst[2])
			}
		}
	}
	if sum == 0 {
		b.Fatal("no bytes read")
	}
}
