package bytesize

import "testing"

func TestParse(t *testing.T) {
	f := func(in string, want int64, wantErr bool) {
		t.Helper()
		got, err := Parse(in)
		if (err != nil) != wantErr || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d, error %v", in, got, err, want, wantErr)
		}
	}
	f("1048576", 1<<20, false)
	f("512MiB", 512<<20, false)
	f("512 MiB", 512<<20, false)
	f("2GB", 2e9, false)
	f("1.5GiB", 3<<29, false)
	f("300M", 300<<20, false)
	f("4k", 4096, false)
	f("1_000MB", 1e9, false)
	f("0", 0, false)
	f("7b", 7, false)
	f("", 0, true)
	f("-1MB", 0, true)
	f("12 parsecs", 0, true)
	f("1e", 0, true)
	f("99999999TiB", 0, true)
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		b    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{1<<20 - 1, "1024.0 KiB"}, {1 << 20, "1.0 MiB"}, {300 << 20, "300.0 MiB"},
		{1<<30 + 1<<29, "1.5 GiB"}, {5 << 40, "5120.0 GiB"},
	} {
		if got := Format(tc.b); got != tc.want {
			t.Errorf("Format(%d) = %q, want %q", tc.b, got, tc.want)
		}
	}
}
