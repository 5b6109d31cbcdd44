// Command mce-beam runs mce's built-in feature set as an Apache Beam
// pipeline; `mce beam` without --features builds and runs it. With
// --features, mce generates the same main around the user's Features.
//
//	mce-beam --out OUT [--runner prism|universal|dataflow] [Beam flags] INPUTS...
package main

import (
	"os"

	"github.com/mce-engine/mce/engine/beam/pipeline"
	"github.com/mce-engine/mce/engine/feature"
)

func main() {
	os.Exit(pipeline.Main(os.Args, feature.Invoice()))
}
