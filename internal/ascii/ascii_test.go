package ascii

import (
	"strings"
	"testing"
)

// byteByByte is Valid as it was written before: the reference.
func byteByByte(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// TestValid: every length up to three words, with one byte of every kind
// at every position.
func TestValid(t *testing.T) {
	if !Valid(nil) {
		t.Error("Valid(nil) = false")
	}
	for n := 1; n <= 24; n++ {
		for at := 0; at < n; at++ {
			for _, c := range []byte{0x00, 'A', 0x7f, 0x80, 0xd1, 0xff} {
				b := []byte(strings.Repeat("x", n))
				b[at] = c
				if got, want := Valid(b), c < 0x80; got != want {
					t.Fatalf("Valid(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
	for _, s := range []string{"HÑ&O931109PDA", "BNM840515VB1", "PEÑA010101AB1", "\x80", "abcdefg\x80"} {
		if Valid([]byte(s)) != byteByByte([]byte(s)) {
			t.Errorf("Valid(%q) = %v", s, Valid([]byte(s)))
		}
	}
}

func FuzzValid(f *testing.F) {
	f.Add([]byte("BNM840515VB1"))
	f.Add([]byte("HÑ&O931109PDA"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if Valid(b) != byteByByte(b) {
			t.Fatalf("Valid(%q) = %v", b, Valid(b))
		}
	})
}
