package main

import (
	"fmt"
	"os"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/bench"
)

// benchCommand is `mce bench`: the mode-vs-mode benchmark of package bench.
// Its flags are the bench package's own (parsed there, so that
// bench/cmd/mcebench and this command take the same ones).
func benchCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "bench",
		Usage:     "measure mce run, partition and reduce against sort|awk, DuckDB and the read+split floor",
		ArgsUsage: "[--size 300MB] [--runs 3] [--cpus N] [--sweep] [--skip SYSTEMS] [--keep-data] [--out DIR] ...",
		Description: "Generates invoice data with `mce gen`, runs every system --runs times with the same CPUs,\n" +
			"checks that their features agree (a disagreement fails the benchmark and prints no figure),\n" +
			"and writes a Markdown table, the targets met or not, and an SVG chart to stdout and\n" +
			"bench/results. Run it inside the mce repository after `make build`; `mce bench -h` lists\n" +
			"the flags. DuckDB is installed with npm into bench/duckdb/node_modules on first use.",
		SkipFlagParsing: true,
		Action: func(c *ucli.Context) error {
			exe, err := os.Executable()
			if err != nil {
				return &ExitError{Code: 1, Err: fmt.Errorf("bench: %w", err)}
			}
			if code := bench.Main(c.Context, c.Args().Slice(), []string{exe, "bench"}, os.Stdout, os.Stderr); code != 0 {
				return &ExitError{Code: code}
			}
			return nil
		},
	}
}
