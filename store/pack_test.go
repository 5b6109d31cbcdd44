package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mce-engine/mce/engine/feature"
)

// packedMode returns the mode of column j of a new store's block of rows:
// what the writer made of it.
func packedMode(t testing.TB, rows []testRow, j int) byte {
	t.Helper()
	ncols := len(rows[0].fields)
	w := NewBlockWriter(ncols)
	for _, r := range rows {
		w.Add(r.line, r.fields)
	}
	raw := w.AppendRaw(nil)
	// Skip ncols, rows and field bytes, then read the directory.
	p := raw
	uvarint := func() uint64 {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			t.Fatal("bad uvarint")
		}
		p = p[n:]
		return v
	}
	for range 3 {
		uvarint()
	}
	secs := make([]uint64, ncols+1)
	for k := range secs {
		secs[k] = uvarint()
	}
	for k := 0; k <= j; k++ {
		p = p[secs[k]:]
	}
	return p[0]
}

// TestPack: which columns are packed, and that every block reads back
// byte for byte, packed or not.
func TestPack(t *testing.T) {
	c := testCompressor(t)
	cases := []struct {
		name   string
		fields []string
		mode   byte
	}{
		{"uuids upper", []string{"D5D52874-096C-4AAE-A6A8-CB6DB09B54AF", "3CD540C1-7385-46DD-AFBF-15132D2E4652"}, colUUID},
		{"uuids lower", []string{"d5d52874-096c-4aae-a6a8-cb6db09b54af", "3cd540c1-7385-46dd-afbf-15132d2e4652"}, colUUID},
		{"uuids of digits", []string{"00000000-0000-0000-0000-000000000000", "12345678-1234-1234-1234-123456789012"}, colUUID},
		{"uuids of both cases", []string{"D5D52874-096C-4AAE-A6A8-CB6DB09B54AF", "3cd540c1-7385-46dd-afbf-15132d2e4652"}, colVarying},
		{"a uuid of both cases", []string{"D5D52874-096c-4AAE-A6A8-CB6DB09B54AF", "00000000-0000-0000-0000-000000000000"}, colVarying},
		{"a dash astray", []string{"D5D5287-4096C-4AAE-A6A8-CB6DB09B54AF", "3CD540C1-7385-46DD-AFBF-15132D2E4652"}, colVarying},
		{"not hex", []string{"G5D52874-096C-4AAE-A6A8-CB6DB09B54AF", "3CD540C1-7385-46DD-AFBF-15132D2E4652"}, colVarying},
		{"braces", []string{"{5D52874-096C-4AAE-A6A8-CB6DB09B54A}", "3CD540C1-7385-46DD-AFBF-15132D2E4652"}, colVarying},
		{"times", []string{"2024-07-21 06:34:38", "2024-07-01 00:00:00", "2024-07-31 23:59:59"}, colTimeBase},
		{"one time", []string{"2024-07-21 06:34:38"}, colTimeBase},
		{"a second apart", []string{"2024-07-21 06:34:38", "2024-07-21 06:34:39"}, colTimeBase},
		{"times with T", []string{"2024-07-21T06:34:38", "1969-12-31T23:59:59"}, colTimeBase},
		{"the years packed", []string{"0000-01-01 00:00:00", "9999-12-31 23:59:59", "2000-02-29 12:00:00"}, colTimeBase},
		{"the last seconds", []string{"9999-12-31 23:59:59", "9999-12-31 23:59:58"}, colTimeBase},
		{"both separators", []string{"2024-07-21 06:34:38", "2024-07-21T06:34:38"}, colVarying},
		{"february 30", []string{"2024-02-30 00:00:00", "2024-07-21 06:34:38"}, colVarying},
		{"no leap day", []string{"2023-02-29 00:00:00", "2024-07-21 06:34:38"}, colVarying},
		{"hour 24", []string{"2024-07-21 24:00:00", "2024-07-21 06:34:38"}, colVarying},
		{"a leap second", []string{"2016-12-31 23:59:60", "2024-07-21 06:34:38"}, colVarying},
		{"month 13", []string{"2024-13-01 00:00:00", "2024-07-21 06:34:38"}, colVarying},
		{"day 00", []string{"2024-07-00 00:00:00", "2024-07-21 06:34:38"}, colVarying},
		{"a zone", []string{"2024-07-21 06:34:3Z", "2024-07-21 06:34:38"}, colVarying},
		{"slashes", []string{"2024/07/21 06:34:38", "2024/07/22 06:34:38"}, colVarying},
		{"one time empty", []string{"2024-07-21 06:34:38", ""}, colVarying},
		{"other text", []string{"Servicio de limpiez", "Material eléctrico"}, colVarying},
		{"amounts", []string{"40.55", "16101.62", "-3678.97", "0.00", "0.05", "100.10"}, colAmount},
		{"whole amounts", []string{"7", "0", "-12", "1000000"}, colAmount},
		{"nine digits", []string{"0.000000001", "-1.123456789"}, colAmount},
		{"seventeen digits", []string{"99999999999999999", "-1234567890123456.7"}, colVarying},
		{"sixteen digits", []string{"9999999999999999", "-9999999999999999"}, colAmount},
		{"ten fraction digits", []string{"0.0000000001", "1.5"}, colVarying},
		{"fraction digits differ", []string{"40.55", "40.5"}, colVarying},
		{"a whole one among cents", []string{"40.55", "40"}, colVarying},
		{"a sign on zero", []string{"-0.00", "1.00"}, colVarying},
		{"a sign on whole zero", []string{"-0", "1"}, colVarying},
		{"a plus", []string{"+5.00", "1.00"}, colVarying},
		{"a leading zero", []string{"05.00", "1.00"}, colVarying},
		{"no whole digit", []string{".50", "1.00"}, colVarying},
		{"no fraction digit", []string{"5.", "1."}, colVarying},
		{"two points", []string{"5.0.0", "1.000"}, colVarying},
		{"a thousands comma", []string{"1,000.00", "1.00"}, colVarying},
		{"one amount empty", []string{"1.00", ""}, colVarying},
		{"a dash alone", []string{"-", "1"}, colVarying},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var rows []testRow
			for i, f := range tc.fields {
				rows = append(rows, testRow{line: int64(i + 2), fields: [][]byte{[]byte("user"), []byte(f), []byte("x")}})
			}
			if got := packedMode(t, rows, 1); got != tc.mode {
				t.Errorf("column mode %d, want %d", got, tc.mode)
			}
			for _, l := range layouts {
				w := NewBlockWriter(3).SetFormat(l.format)
				for _, r := range rows {
					w.Add(r.line, r.fields)
				}
				v := w.AppendValue(nil, CodecNone, c)
				var b Block
				if err := b.DecodeValue(v, c); err != nil {
					t.Fatalf("%s: %v", l.name, err)
				}
				checkBlock(t, &b, rows)
				if packs := l.format >= 3 && tc.mode == colTimeBase; packs != (len(b.TimeColumns()) == 1) {
					t.Errorf("%s: time columns %v", l.name, b.TimeColumns())
				}
				if packs := l.format >= 4 && tc.mode == colAmount; packs != (len(b.AmountColumns()) == 1) {
					t.Errorf("%s: amount columns %v", l.name, b.AmountColumns())
				}
				b.SetColumns([]int{1})
				if err := b.DecodeValue(v, c); err != nil {
					t.Fatalf("%s: %v", l.name, err)
				}
				checkBlock(t, &b, rows, 1)
				// Times to their seconds only: a packed column has no
				// text (checkBlock wants it nil), any other has.
				b.SetSecondsOnly(true)
				if err := b.DecodeValue(v, c); err != nil {
					t.Fatalf("%s: %v", l.name, err)
				}
				checkBlock(t, &b, rows, 1)
				if packs := l.format >= 3 && tc.mode == colTimeBase; packs != (b.Field(0, 1) == nil) {
					t.Errorf("%s: packed %v, but the field is %q", l.name, packs, b.Field(0, 1))
				}
				b.SetSecondsOnly(false)
				// Amounts to their units only, likewise.
				b.SetAmountsOnly([]int{1})
				if err := b.DecodeValue(v, c); err != nil {
					t.Fatalf("%s: %v", l.name, err)
				}
				checkBlock(t, &b, rows, 1)
				if packs := l.format >= 4 && tc.mode == colAmount; packs != (b.Field(0, 1) == nil) {
					t.Errorf("%s: packed %v, but the field is %q", l.name, packs, b.Field(0, 1))
				}
				b.SetAmountsOnly(nil)
				if b.FieldBytes() != int64(w.RawBytes()-2*len(rows)-3*len(rows)) {
					// RawBytes counts a separator per field and two per row.
					t.Errorf("%s: field bytes %d, writer's raw bytes %d", l.name, b.FieldBytes(), w.RawBytes())
				}
			}
		})
	}
}

// TestPackTime: every second of a few days, across a leap day and the
// ends of the range, reads back as written.
func TestPackTime(t *testing.T) {
	var dates dateCache
	for _, day := range []time.Time{
		time.Date(2024, 2, 28, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 30, 0, 0, 0, 0, time.UTC),
	} {
		for s := 0; s < 2*86400; s += 7 {
			tm := day.Add(time.Duration(s) * time.Second)
			if tm.Year() > 9999 {
				break
			}
			f := []byte(tm.Format("2006-01-02 15:04:05"))
			secs, ok := parseTime(f, ' ')
			if !ok || secs != tm.Unix() {
				t.Fatalf("%s: %d %v, want %d", f, secs, ok, tm.Unix())
			}
			var back [timeLen]byte
			putTime(&back, secs, ' ', new(dateCache))
			if !bytes.Equal(back[:], f) {
				t.Fatalf("%s came back as %s", f, back)
			}
			putTime(&back, secs, ' ', &dates)
			if !bytes.Equal(back[:], f) {
				t.Fatalf("%s came back through the date cache as %s", f, back)
			}
		}
	}
}

// TestPackAmount: amounts of every number of digits and fraction digits,
// and their neighbours, read back as written; what parseAmount refuses
// keeps its column as text.
func TestPackAmount(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for scale := 0; scale <= maxAmountScale; scale++ {
		for digits := max(scale, 1); digits <= maxAmountDigits; digits++ {
			for range 50 {
				var f []byte
				if r.IntN(2) == 0 {
					f = append(f, '-')
				}
				whole := digits - scale
				if whole == 0 {
					f = append(f, '0')
				} else {
					f = append(f, byte('1'+r.IntN(9)))
					for range whole - 1 {
						f = append(f, byte('0'+r.IntN(10)))
					}
				}
				if scale > 0 {
					f = append(f, '.')
					for range scale {
						f = append(f, byte('0'+r.IntN(10)))
					}
				}
				units, s, ok := parseAmount(f)
				if isZero := bytes.Trim(f, "-0.") == nil; isZero && f[0] == '-' {
					if ok {
						t.Fatalf("%s (a sign on zero) read as %d", f, units)
					}
					continue
				}
				if !ok || s != scale {
					t.Fatalf("%s: %d, %d digits, %v", f, units, s, ok)
				}
				if back := appendAmountText(nil, units, s); !bytes.Equal(back, f) {
					t.Fatalf("%s came back as %s", f, back)
				}
				if v, err := feature.ParseDecimal(f, scale); err != nil || v != units {
					t.Fatalf("%s: units %d, ParseDecimal %d, %v", f, units, v, err)
				}
			}
		}
	}
	for _, f := range []string{"", "-", "+1", "01", "00", "-0", "-0.0", ".5", "5.", "1..2", "1.2.3", "1e5", " 1", "1 ", "0x10",
		"123456789012345678", "0.1234567890", "1,5"} {
		if units, scale, ok := parseAmount([]byte(f)); ok {
			t.Errorf("%q read as %d at %d digits", f, units, scale)
		}
	}
}

// TestPack_corrupt: a packed column cut short or out of range fails
// with ErrCorrupt.
func TestPack_corrupt(t *testing.T) {
	c := testCompressor(t)
	rows := []testRow{
		{2, [][]byte{[]byte("u"), []byte("D5D52874-096C-4AAE-A6A8-CB6DB09B54AF"), []byte("2024-07-21 06:34:38"), []byte("40.55")}},
		{3, [][]byte{[]byte("v"), []byte("3CD540C1-7385-46DD-AFBF-15132D2E4652"), []byte("2024-07-22 06:34:38"), []byte("-16101.62")}},
	}
	w := NewBlockWriter(4)
	for _, r := range rows {
		w.Add(r.line, r.fields)
	}
	v := w.AppendValue(nil, CodecNone, c)
	for cut := 0; cut < len(v); cut++ {
		var b Block
		if err := b.DecodeValue(v[:cut], c); err == nil || !errors.Is(err, ErrCorrupt) {
			t.Errorf("value cut to %d bytes: %v", cut, err)
		}
	}
	for i := 1; i < len(v); i++ {
		bad := bytes.Clone(v)
		bad[i] ^= 0x55
		var b Block
		if err := b.DecodeValue(bad, c); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("byte %d flipped: error %v is not ErrCorrupt", i, err)
		}
	}
	// A Layout2 value with a packed column is corrupt.
	bad := bytes.Clone(v)
	bad[0] = bad[0]&^tagLayouts | layoutTag(Layout2)
	var b Block
	if err := b.DecodeValue(bad, c); !errors.Is(err, ErrCorrupt) {
		t.Errorf("packed columns in a Layout2 value: %v", err)
	}
	// So is a Layout3 value with a packed amount column, and a Layout4
	// one with Layout5's times.
	bad[0] = bad[0]&^tagLayouts | layoutTag(Layout3)
	if err := b.DecodeValue(bad, c); !errors.Is(err, ErrCorrupt) {
		t.Errorf("packed amounts in a Layout3 value: %v", err)
	}
	bad[0] = bad[0]&^tagLayouts | layoutTag(Layout4)
	if err := b.DecodeValue(bad, c); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Layout5's times in a Layout4 value: %v", err)
	}
}

// TestPackTime_pastTheYears: a Layout5 time column whose offsets reach
// past 9999-12-31 23:59:59 is corrupt.
func TestPackTime_pastTheYears(t *testing.T) {
	rows := []testRow{
		{2, [][]byte{[]byte("9999-12-31 23:59:59")}},
		{3, [][]byte{[]byte("9999-12-31 23:59:58")}},
	}
	w := NewBlockWriter(1)
	for _, r := range rows {
		w.Add(r.line, r.fields)
	}
	raw := w.AppendRaw(nil)
	var b Block
	if err := b.DecodeRaw(raw, Layout5); err != nil {
		t.Fatal(err)
	}
	checkBlock(t, &b, rows)
	// The last two bytes are the rows' offsets (1, then 0), a byte each.
	if raw[len(raw)-2] != 1 || raw[len(raw)-1] != 0 {
		t.Fatalf("offsets % x, want 01 00", raw[len(raw)-2:])
	}
	raw[len(raw)-1] = 2 // a second past the years packed
	if err := b.DecodeRaw(raw, Layout5); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a time past 9999: %v", err)
	}
}

// FuzzPack: any column of fields the length of a UUID or of a time,
// packed or not, reads back byte for byte.
func FuzzPack(f *testing.F) {
	f.Add([]byte("D5D52874-096C-4AAE-A6A8-CB6DB09B54AF3cd540c1-7385-46dd-afbf-15132d2e4652"), true)
	f.Add([]byte("2024-07-21 06:34:382024-07-01 00:00:009999-12-31 23:59:59"), false)
	f.Add([]byte("2024-02-29T00:00:001970-01-01T00:00:00"), false)
	f.Fuzz(func(t *testing.T, data []byte, uuids bool) {
		n := timeLen
		if uuids {
			n = uuidLen
		}
		var rows []testRow
		for i := 0; i+n <= len(data); i += n {
			rows = append(rows, testRow{line: int64(i), fields: [][]byte{data[i : i+n]}})
		}
		checkBlock(t, decodeWritten(t, NewBlockWriter(1), rows), rows)
	})
}

// FuzzPackAmounts: any column of fields (the data cut at commas), packed
// as amounts or not, reads back byte for byte, and the units of those
// packed are what ParseDecimal reads.
func FuzzPackAmounts(f *testing.F) {
	f.Add([]byte("40.55,-16101.62,0.00,100.10"))
	f.Add([]byte("7,0,-12,1000000"))
	f.Add([]byte("-0.00,05,+1,.5,5."))
	f.Fuzz(func(t *testing.T, data []byte) {
		var rows []testRow
		for i, fld := range bytes.Split(data, []byte(",")) {
			rows = append(rows, testRow{line: int64(i), fields: [][]byte{fld}})
		}
		checkBlock(t, decodeWritten(t, NewBlockWriter(1), rows), rows)
	})
}

// BenchmarkPackColumns: packing a block's UUID and time columns as the
// writer does (the text checked, then packed), per field.
func BenchmarkPackColumns(b *testing.B) {
	rows := invoiceRows(rand.New(rand.NewPCG(5, 6)), 256)
	for _, col := range []struct {
		name string
		j    int
		pack func([]byte, []uint32, []byte) ([]byte, bool)
	}{
		{"uuid", 0, appendUUIDs},
		{"time", 3, func(dst []byte, lens []uint32, data []byte) ([]byte, bool) { return appendTimes(dst, lens, data, true) }},
		{"time-varint", 3, func(dst []byte, lens []uint32, data []byte) ([]byte, bool) {
			return appendTimes(dst, lens, data, false)
		}},
		{"amount", 4, appendAmounts},
	} {
		var lens []uint32
		var data []byte
		for _, r := range rows {
			lens = append(lens, uint32(len(r[col.j])))
			data = append(data, r[col.j]...)
		}
		b.Run(col.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			var dst []byte
			for b.Loop() {
				var ok bool
				if dst, ok = col.pack(dst[:0], lens, data); !ok {
					b.Fatal("not packed")
				}
			}
		})
	}
}
