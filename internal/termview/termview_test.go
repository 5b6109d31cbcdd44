package termview

import (
	"bytes"
	"log/slog"
	"os"
	"testing"
)

func TestBar(t *testing.T) {
	f := func(frac float64, width int, want string) {
		t.Helper()
		if got := Bar(frac, width); got != want {
			t.Errorf("Bar(%v, %d) = %q, want %q", frac, width, got, want)
		}
	}
	f(0, 6, "[░░░░]")
	f(0.5, 6, "[██░░]")
	f(1, 6, "[████]")
	f(1.7, 6, "[████]")
	f(0.12, 12, "[█░░░░░░░░░]")
	f(-1, 6, "[    ]") // unknown
	f(0.5, 1, "[█]")
}

func TestCut(t *testing.T) {
	f := func(s string, n int, want string) {
		t.Helper()
		if got := Cut(s, n); got != want {
			t.Errorf("Cut(%q, %d) = %q, want %q", s, n, got, want)
		}
	}
	f("abc", 5, "abc")
	f("abcdef", 3, "abc")
	f("█░█░", 2, "█░") // runes, not bytes
	f("ÑANDÚ", 4, "ÑAND")
}

func TestMiddle(t *testing.T) {
	f := func(s string, n int, want string) {
		t.Helper()
		if got := Middle(s, n); got != want {
			t.Errorf("Middle(%q, %d) = %q, want %q", s, n, got, want)
		}
	}
	f("invoices.csv", 20, "invoices.csv")
	f("invoices_2024_12.csv", 11, "invoi…2.csv")
	f("abcdef", 2, "ab")
}

func TestPad(t *testing.T) {
	if got := Pad("ñ", 3); got != "ñ  " {
		t.Errorf("Pad: %q", got)
	}
	if got := PadLeft("5%", 4); got != "  5%" {
		t.Errorf("PadLeft: %q", got)
	}
	if got := Pad("toolong", 3); got != "toolong" {
		t.Errorf("Pad of a longer string: %q", got)
	}
}

// TestView_offTerminal checks that a view on anything but a terminal
// draws nothing and leaves a logger's handler as it is.
func TestView_offTerminal(t *testing.T) {
	var b bytes.Buffer
	v := New(&b)
	if v.TTY() || IsTerminal(&b) || v.Width() != 0 {
		t.Fatal("a buffer taken for a terminal")
	}
	v.Draw([]string{"cluster 0", "total"})
	v.Clear()
	if b.Len() != 0 {
		t.Errorf("a view off a terminal wrote %q", b.String())
	}
	h := slog.NewTextHandler(&b, nil)
	if v.Handler(h) != slog.Handler(h) {
		t.Error("the handler was wrapped off a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if New(f).TTY() {
		t.Error("a regular file taken for a terminal")
	}
}
