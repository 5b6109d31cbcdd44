//go:build !faultinject

package csvread

import (
	"io"
	"os"
)

// wrapInput returns the reader of the input file at path. Test builds
// (build tag faultinject, see faultinput_on.go) may return one that
// fails at a chosen byte; this build reads the file as it is.
var wrapInput = func(_ string, f *os.File) io.Reader { return f }
