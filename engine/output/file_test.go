package output

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestFile_writeBehind writes 2.5 MiB through a File in pieces: the
// write-back starts at every MiB (and the kernel takes the request), and
// the committed file holds every byte, under its final name only.
func TestFile_writeBehind(t *testing.T) {
	final := filepath.Join(t.TempDir(), "x.features.csv")
	o, err := Create(final)
	if err != nil {
		t.Fatal(err)
	}
	if err := startWriteBack(o.f, 0, 1); err != nil {
		t.Fatalf("sync_file_range refused: %v", err)
	}
	var want bytes.Buffer
	piece := make([]byte, 60<<10)
	for i := 0; want.Len() < 5<<19; i++ {
		for j := range piece {
			piece[j] = byte('a' + (i+j)%26)
		}
		if _, err := o.Write(piece); err != nil {
			t.Fatal(err)
		}
		want.Write(piece)
		if got, min := o.flushed, o.written-writeBehindBytes; got <= min {
			t.Fatalf("after %d bytes the write-back started for %d", o.written, got)
		}
	}
	if o.flushed < 2<<20 {
		t.Errorf("write-back started for %d bytes of %d", o.flushed, o.written)
	}
	if _, err := os.Stat(final); !os.IsNotExist(err) {
		t.Fatalf("the final name exists before Commit: %v", err)
	}
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(final)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("committed %d bytes, wrote %d; not the same bytes", len(got), want.Len())
	}
	if _, err := os.Stat(final + TempSuffix); !os.IsNotExist(err) {
		t.Errorf("the temporary file is left: %v", err)
	}
}
