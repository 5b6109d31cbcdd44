package csvread

import (
	"bytes"
	"slices"
	"testing"
)

// splitOracle is lineFields by bytes.Split.
func splitOracle(ln []byte, delim byte, n int) (int, []span) {
	parts := bytes.Split(ln, []byte{delim})
	var bd []span
	s := 0
	for _, p := range parts {
		if len(bd) < n {
			bd = append(bd, span{s, s + len(p)})
		}
		s += len(p) + 1
	}
	return len(parts), bd
}

func checkLineFields(t *testing.T, ln []byte, delim byte, n int) {
	t.Helper()
	bd := make([]span, n)
	got := lineFields(ln, delim, bd)
	want, wbd := splitOracle(ln, delim, n)
	if got != want {
		t.Fatalf("lineFields(%q, %q, %d) = %d fields, want %d", ln, delim, n, got, want)
	}
	if got == n {
		for i := range bd {
			if bd[i] != wbd[i] {
				t.Fatalf("lineFields(%q, %q, %d): field %d at %v, want %v", ln, delim, n, i, bd[i], wbd[i])
			}
		}
	}
}

func TestLineFields(t *testing.T) {
	for _, c := range []struct {
		line  string
		delim byte
	}{
		{"", ','},
		{",", ','},
		{",,,,,,,,,,,,,,,,,", ','},
		{"a", ','},
		{"abcdefgh", ','},                // one word, no delimiter
		{"abcdefg,", ','},                // a delimiter in the last byte of a word
		{",bcdefgh", ','},                // in the first
		{"abcdefgh,ijklmnop", ','},       // on a word boundary
		{"a-,-b,--,-", ','},              // '-' is ',' + 1: no borrow may make it match
		{"+,+,++,+", ','},                // '+' is ',' - 1
		{"\xac,\x2c\xff,\x80,\x7f", ','}, // high bytes around the delimiter
		{"D5D52874-096C-4AAE-A6A8-CB6DB09B54AF,JAU4803239VE,VWA4209141FW,2024-07-21 06:34:38,40.55,MXN,Material eléctrico", ','},
		{"a;b;c;d;e;f;g;h;i;j", ';'},
		{"a\tb\t\tc", '\t'},
		{"a|b||c|", '|'},
	} {
		for n := 1; n <= 9; n++ {
			checkLineFields(t, []byte(c.line), c.delim, n)
		}
	}
}

// FuzzLineFields holds lineFields (8 bytes at a time) to bytes.Split.
func FuzzLineFields(f *testing.F) {
	f.Add([]byte("D5D52874-096C-4AAE-A6A8-CB6DB09B54AF,JAU4803239VE,VWA4209141FW,2024-07-21 06:34:38,40.55,MXN,x"), byte(','), uint8(7))
	f.Add([]byte("a-,-b,--,-+,+"), byte(','), uint8(3))
	f.Add([]byte("\x00\x00\x01\x00"), byte(0), uint8(2))
	f.Fuzz(func(t *testing.T, ln []byte, delim byte, n uint8) {
		checkLineFields(t, ln, delim, 1+int(n%12))
	})
}

// checkQuotedFields holds quotedFields to parseRecord: when it takes a
// line, it must find the fields parseRecord unescapes.
func checkQuotedFields(t *testing.T, ln []byte, delim byte) (took bool) {
	t.Helper()
	if bytes.IndexByte(ln, '\n') >= 0 {
		return false
	}
	var out []byte
	var ends []uint32
	next, closed := parseRecord(append(slices.Clip(ln), '\n'), 0, delim, &out, &ends)
	trimmed := ln
	if n := len(trimmed); n > 0 && trimmed[n-1] == '\r' {
		trimmed = trimmed[:n-1]
	}
	bd := make([]span, len(ends)+2)
	nf, ok := quotedFields(trimmed, delim, bd)
	if !ok {
		return false
	}
	if !closed || next != len(ln)+1 {
		t.Fatalf("quotedFields took %q, which parseRecord reads past its line (next %d, closed %v)", ln, next, closed)
	}
	if nf != len(ends) {
		t.Fatalf("quotedFields(%q) = %d fields, parseRecord %d", ln, nf, len(ends))
	}
	var s uint32
	for i, e := range ends {
		want := string(out[s:e])
		if got := string(trimmed[bd[i].a:bd[i].b]); got != want {
			t.Fatalf("quotedFields(%q): field %d is %q, parseRecord %q", ln, i, got, want)
		}
		s = e
	}
	return true
}

func TestQuotedFields(t *testing.T) {
	for _, c := range []struct {
		line string
		took bool
	}{
		{`a,"b, c",d`, true},
		{`"a","b","c"`, true},
		{`"",x,""`, true},
		{`a,"b"`, true},
		{`"a",`, true},
		{`a,"b"` + "\r", true},
		{`a,"b` + "\r\"", true}, // a '\r' inside quotes is data
		{`D5D52874,JAU4803239VE,VWA4209141FW,2024-07-21 06:34:38,40.55,MXN,"Material eléctrico: cable, contactos y apagadores"`, true},
		{`a,"b""c",d`, false}, // an escaped quote
		{`a,"b"c,d`, false},   // data after the closing quote
		{`a,b"c,d`, false},    // a quote inside an unquoted field
		{`a,"b`, false},       // open: the record goes on
		{`a,"b"` + "\r\r", false},
		{`"""`, false},
	} {
		if got := checkQuotedFields(t, []byte(c.line), ','); got != c.took {
			t.Errorf("quotedFields(%q) took it: %v, want %v", c.line, got, c.took)
		}
	}
	if !checkQuotedFields(t, []byte(`a;"b;c";d`), ';') {
		t.Error("quotedFields with ';' did not take a simple line")
	}
}

// FuzzQuotedFields holds quotedFields to parseRecord on any line.
func FuzzQuotedFields(f *testing.F) {
	f.Add([]byte(`a,"b, c",d`), byte(','))
	f.Add([]byte(`"",x,"y""z"`), byte(','))
	f.Add([]byte(`a;"b;c";"d"`+"\r"), byte(';'))
	f.Fuzz(func(t *testing.T, ln []byte, delim byte) {
		if delim == '"' || delim == '\n' || delim == '\r' {
			return // not a delimiter a file can have
		}
		checkQuotedFields(t, ln, delim)
	})
}
