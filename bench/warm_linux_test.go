package bench

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestWarmInputs: a file the page cache dropped (fadvise DONTNEED after a
// sync) counts as not cached, warmInputs reads it back, and the next look
// finds every byte cached; folders are walked, empty files and missing
// paths are no error.
func TestWarmInputs(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "sub", "big.csv")
	if err := os.MkdirAll(filepath.Dir(big), 0o755); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 4<<20+123)
	for i := range data {
		data[i] = byte(i)
	}
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty.csv"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(big)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Skipf("fadvise: %v", err)
	}
	before, err := warmInputs([]string{dir, filepath.Join(dir, "gone")})
	if err != nil {
		t.Fatal(err)
	}
	if before.Bytes != int64(len(data)) {
		t.Fatalf("inputs of %d bytes, want %d", before.Bytes, len(data))
	}
	if before.Cached == before.Bytes {
		t.Skip("the page cache kept the file after DONTNEED (a file system that ignores it)")
	}
	after, err := warmInputs([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if after.Bytes != before.Bytes || after.Cached != after.Bytes {
		t.Errorf("after warming: %+v, want all %d bytes cached (before: %+v)", after, before.Bytes, before)
	}
	if s := (warmStats{Bytes: 4, Cached: 1}).share(); s != 25 {
		t.Errorf("share %v, want 25", s)
	}
}
