package srctree

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"path/filepath"
	"testing"
)

// TestWrite_BeamModule: the archive carries the nested engine/beam module
// (its go.mod and go.sum too), which `mce beam` builds, but not its tests.
func TestWrite_BeamModule(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, root); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		have[h.Name] = true
	}
	for _, want := range []string{"go.mod", "engine/beam/go.mod", "engine/beam/go.sum",
		"engine/beam/pipeline/job.go", "engine/beam/cmd/mce-beam/main.go"} {
		if !have[want] {
			t.Errorf("archive lacks %s", want)
		}
	}
	for _, not := range []string{"engine/beam/testdata/ordered/f.go", "engine/beam/e2e/e2e_test.go",
		"engine/beam/pipeline/pipeline_test.go"} {
		if have[not] {
			t.Errorf("archive has %s", not)
		}
	}
}
