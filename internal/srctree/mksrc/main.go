// Command mksrc writes mce's source archive for embedding:
//
//	go run ./internal/srctree/mksrc -o internal/srctree/data/src.tar.gz .
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mce-engine/mce/internal/srctree"
)

func main() {
	out := flag.String("o", "", "output file")
	flag.Parse()
	if *out == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: mksrc -o FILE ROOT")
		os.Exit(2)
	}
	var buf bytes.Buffer
	if err := srctree.Write(&buf, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "mksrc:", err)
		os.Exit(1)
	}
	// Leave an unchanged archive alone so that builds stay cached.
	if old, err := os.ReadFile(*out); err == nil && bytes.Equal(old, buf.Bytes()) {
		return
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "mksrc:", err)
		os.Exit(1)
	}
	if err := os.Rename(tmp, filepath.Clean(*out)); err != nil {
		fmt.Fprintln(os.Stderr, "mksrc:", err)
		os.Exit(1)
	}
}
