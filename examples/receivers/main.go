// This file is not needed by `mce run --features f.go` (mce adds its own
// main). It shows the other way to use mce: as a library, from a main of
// your own, built with `go build`; the result is the whole mce command
// line with these features built in.
package main

import (
	"os"

	"github.com/mce-engine/mce/cmd/mce/app"
)

func main() {
	os.Exit(app.FeaturesMain(os.Args, Features))
}
