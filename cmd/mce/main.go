// Command mce is the Multiple Cluster Engine: map-reduce of per-user
// features over many large files on one machine.
//
// This package is the whole command line, one file per command: each
// binds its flags into a package's Options and calls its Run (engine,
// engine/filejob, partition, reduce, store, bench, internal/gen). A
// features binary (`--features f.go`) is this same package compiled with
// the user's file, whose Features replaces the built-in set (package
// internal/fbuild generates the init function that does it).
//
// See `mce --help` and the README.
package main

import (
	"os"

	"github.com/mce-engine/mce/engine/feature"
)

// builtinSpec returns the feature set this binary carries: the built-in
// invoice set, or the user's in a features binary.
var builtinSpec = feature.Invoice

// featuresBinary is true in a binary compiled from a user's f.go.
var featuresBinary bool

func main() {
	os.Exit(Main(os.Args, builtinSpec(), featuresBinary))
}
