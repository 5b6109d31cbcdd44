//go:build faultinject

package csvread

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// wrapInput returns the reader of the input file at path: f itself, or a
// badSector reader when FaultReadEnv names the file.
var wrapInput = faultyInput

func faultyInput(path string, f *os.File) io.Reader {
	abs, err := filepath.Abs(path)
	if err != nil {
		return f
	}
	for _, ln := range strings.Split(os.Getenv(FaultReadEnv), "\n") {
		off, p, ok := strings.Cut(ln, " ")
		n, err := strconv.ParseInt(off, 10, 64)
		if !ok || err != nil || n < 0 {
			if ln != "" {
				fmt.Fprintf(os.Stderr, "%s: bad line %q, want \"OFFSET PATH\"\n", FaultReadEnv, ln)
			}
			continue
		}
		if q, err := filepath.Abs(p); err == nil && q == abs {
			return &badSector{f: f, path: path, bad: n}
		}
	}
	return f
}

// badSector reads f until byte bad, and fails every read from there on.
type badSector struct {
	f    *os.File
	path string
	pos  int64
	bad  int64
}

func (b *badSector) Read(p []byte) (int, error) {
	if b.pos >= b.bad && len(p) > 0 {
		return 0, &fs.PathError{Op: "read", Path: b.path, Err: syscall.EIO}
	}
	if rest := b.bad - b.pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.f.Read(p)
	b.pos += int64(n)
	return n, err
}
