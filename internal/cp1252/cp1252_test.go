package cp1252

import (
	"bytes"
	"testing"

	"golang.org/x/text/encoding/charmap"
)

// decoded is what x/text's Windows-1252 decoder makes of b.
func decoded(t testing.TB, b []byte) []byte {
	out, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAppendUTF8(t *testing.T) {
	for c := range 256 {
		b := []byte{'a', byte(c), 'z'}
		if got, want := AppendUTF8([]byte("x"), b), append([]byte("x"), decoded(t, b)...); !bytes.Equal(got, want) {
			t.Errorf("byte %#x: %q, want %q", c, got, want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"Pi\xf1atas y art\xedculos", "Piñatas y artículos"},
		{"\x80 5", "€ 5"},
		{"\x81\x8d\x8f\x90\x9d", "\ufffd\ufffd\ufffd\ufffd\ufffd"}, // undefined in the code page
	} {
		if got := string(AppendUTF8(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("AppendUTF8(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzAppendUTF8(f *testing.F) {
	f.Add([]byte("Pi\xf1atas \x80\x81"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := AppendUTF8(nil, b), decoded(t, b); !bytes.Equal(got, want) {
			t.Fatalf("AppendUTF8(%q) = %q, want %q", b, got, want)
		}
	})
}
