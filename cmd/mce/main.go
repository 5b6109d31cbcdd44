// Command mce is the Multiple Cluster Engine: map-reduce of per-user
// features over many large files on one machine.
//
// See `mce --help` and the README.
package main

import (
	"os"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args, feature.Invoice()))
}
