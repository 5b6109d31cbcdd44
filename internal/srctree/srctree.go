// Package srctree holds mce's own source code, embedded into the mce
// binary, so that `--features f.go` can compile the user's features
// together with mce on a machine that has only the mce binary and Go.
//
// `make build` runs `go generate ./internal/srctree` first, which writes
// data/src.tar.gz (the module's non-test Go files, go.mod and go.sum). A
// binary built without that step has no source embedded and needs the
// MCE_SOURCE environment variable to name an mce checkout.
package srctree

//go:generate go run ./mksrc -o data/src.tar.gz ../..

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

//go:embed all:data
var data embed.FS

// ErrNoSource is returned when this binary carries no source and
// MCE_SOURCE names no checkout.
var ErrNoSource = errors.New("this mce binary was built without its source " +
	"(build it with `make build`, or set MCE_SOURCE to an mce checkout)")

// Archive returns the embedded source archive (a gzipped tar), or nil.
func Archive() []byte {
	b, err := data.ReadFile("data/src.tar.gz")
	if err != nil {
		return nil
	}
	return b
}

// Source describes where mce's source for a features build comes from.
type Source struct {
	// Hash identifies the source: the same hash means the same mce.
	Hash string
	// archive is the embedded tarball, or one made from MCE_SOURCE's
	// checkout.
	archive []byte
}

// Find returns the checkout named by MCE_SOURCE, or the embedded source.
// MCE_SOURCE, when set, wins over the embedded copy, so that a developer
// can build features against the checkout they are editing.
func Find() (*Source, error) {
	dir := os.Getenv("MCE_SOURCE")
	if dir == "" {
		if a := Archive(); len(a) > 0 {
			sum := sha256.Sum256(a)
			return &Source{Hash: hex.EncodeToString(sum[:12]), archive: a}, nil
		}
		return nil, ErrNoSource
	}
	var buf bytes.Buffer
	if err := Write(&buf, dir); err != nil {
		return nil, fmt.Errorf("MCE_SOURCE=%s: %w", dir, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return &Source{Hash: hex.EncodeToString(sum[:12]), archive: buf.Bytes()}, nil
}

// Extract writes the source tree into dir, which must not exist yet; it is
// created through a temporary sibling and a rename, so a crash never
// leaves half a tree under dir.
func (s *Source) Extract(dir string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".tmp")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	zr, err := gzip.NewReader(bytes.NewReader(s.archive))
	if err != nil {
		return fmt.Errorf("embedded source: %w", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("embedded source: %w", err)
		}
		name := filepath.FromSlash(h.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("embedded source: bad path %q", h.Name)
		}
		p := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return fmt.Errorf("extract %s: %w", h.Name, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "go.mod")); statErr == nil {
			return nil // another build extracted it first
		}
		return fmt.Errorf("extract source: %w", err)
	}
	return nil
}

// Write writes the source of the mce module rooted at root as a gzipped
// tar: go.mod, go.sum, every non-test .go file and the files packages
// embed, skipping tests, testdata, hidden folders and build outputs. Names are sorted so that the archive,
// and its hash, depend only on the content.
func Write(w io.Writer, root string) error {
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("not an mce checkout: %w", err)
	}
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			base := d.Name()
			if rel != "." && (strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") ||
				base == "testdata" || base == "node_modules" || rel == "bin" || rel == "out" ||
				rel == "demo" || rel == "examples" || rel == "docs" || rel == "bench/results" || rel == "bench/work") {
				return filepath.SkipDir
			}
			return nil
		}
		// Every file a package may embed comes along (awk and JavaScript
		// files of the benchmark, for one); tests and big files do not.
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || strings.HasSuffix(rel, "_test.go") || info.Size() > 1<<20 ||
			rel == "internal/srctree/data/src.tar.gz" || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	for _, rel := range files { // WalkDir visits in lexical order
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}
