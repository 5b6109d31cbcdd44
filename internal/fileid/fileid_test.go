package fileid

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBase(t *testing.T) {
	f := func(in, want string, comp bool) {
		t.Helper()
		if got := Base(in); got != want {
			t.Errorf("Base(%q) = %q, want %q", in, got, want)
		}
		if got := Compressed(in); got != comp {
			t.Errorf("Compressed(%q) = %v, want %v", in, got, comp)
		}
	}
	f("data/jan.csv", "jan.csv", false)
	f("/x/jan.csv.gz", "jan.csv", true)
	f("jan.csv.zst", "jan.csv", true)
	f("jan.csv.zstd", "jan.csv", true)
	f("a.csv.zst.gz", "a.csv", true)
	f("JAN.CSV.GZ", "JAN.CSV.GZ", false)
	f("a.gz.csv", "a.gz.csv", false)
}

func TestNamer_Name(t *testing.T) {
	var n Namer
	for _, c := range []struct{ in, want string }{
		{"/a/jan.csv", "jan.csv.features.csv"},
		{"/b/jan.csv.gz", "jan.csv-2.features.csv"},
		{"/c/jan.csv", "jan.csv-3.features.csv"},
		{"/c/feb.csv", "feb.csv.features.csv"},
	} {
		if got := n.Name(c.in); got != c.want {
			t.Errorf("Name(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestExactBytes(t *testing.T) {
	for _, name := range []string{"jan.csv", "año.csv", "a\xf1o.csv", ""} {
		b := ExactBytes(name)
		if (b != nil) == utf8.ValidString(name) {
			t.Errorf("ExactBytes(%q) = %v: want bytes exactly when the name is not UTF-8", name, b)
		}
		text := strings.ToValidUTF8(name, "\uFFFD") // what encoding/json keeps
		if got := FromJSON(text, b); got != name {
			t.Errorf("FromJSON(%q, %v) = %q, want %q", text, b, got, name)
		}
	}
}
