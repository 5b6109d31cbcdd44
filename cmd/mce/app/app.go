// Package app is mce's command line as a library: a program of your own
// can carry its own feature Spec and be the whole mce CLI, clusters
// included.
//
//	package main
//
//	import (
//		"os"
//
//		"github.com/mce-engine/mce/cmd/mce/app"
//		"github.com/mce-engine/mce/engine/feature"
//	)
//
//	var Features = feature.Spec{...}
//
//	func main() { os.Exit(app.FeaturesMain(os.Args, Features)) }
//
// `mce run --features f.go` builds exactly such a program from f.go.
package app

import (
	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/cli"
)

// Main runs the mce command line with spec as its built-in feature set and
// returns the exit code.
func Main(args []string, spec feature.Spec) int { return cli.Main(args, spec) }

// FeaturesMain runs the mce command line of a features binary: spec is the
// user's feature set, used by `run`, `reduce` and their clusters.
func FeaturesMain(args []string, spec feature.Spec) int { return cli.FeaturesMain(args, spec) }
