package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/internal/fbuild"
)

// featuresFlag is the --features flag shared by run, reduce and features.
var featuresFlag = &ucli.StringFlag{
	Name:  "features",
	Usage: "a Go `FILE` declaring var Features = feature.Spec{...} (see examples/); compiled with mce and cached. Default: the built-in invoice features",
}

// WorkerExe returns the binary whose hidden worker command runs clusters:
// this binary when no features file is given, else the features binary
// compiled from it.
func WorkerExe(c *ucli.Context, env *Env) (string, error) {
	path := c.String(featuresFlag.Name)
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("find own binary: %w", err)
		}
		return exe, nil
	}
	if env.FeaturesBinary {
		return "", fmt.Errorf("--features %s: this binary already carries the %s features", path, env.Spec.Name)
	}
	return fbuild.Build(c.Context, path, fbuild.Options{Logger: env.Logger})
}

func featuresCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "features",
		Usage: "list the features a job computes (the built-in set, or those of --features f.go)",
		Description: "Prints the feature set's name, input schema and output columns. With --features, compiles\n" +
			"f.go first (the same build `mce run --features` uses) and prints the features binary's path\n" +
			"(the whole mce command line with these features built in), so it is also the quick way to\n" +
			"check that f.go compiles.",
		Flags: []ucli.Flag{featuresFlag},
		Action: func(c *ucli.Context) error {
			if c.String(featuresFlag.Name) != "" {
				exe, err := WorkerExe(c, env)
				if err != nil {
					return &ExitError{Code: 1, Err: err}
				}
				fmt.Printf("features binary: %s\n", exe)
				cmd := exec.CommandContext(c.Context, exe, "features")
				cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
				if err := cmd.Run(); err != nil {
					return &ExitError{Code: 1, Err: fmt.Errorf("run features binary: %w", err)}
				}
				return nil
			}
			s := env.Spec
			fmt.Printf("feature set: %s (mergeable: %v, map step: %v)\n", s.Name, s.Mergeable(), s.Map != nil)
			fmt.Printf("input schema: %s\n", s.Schema)
			fmt.Println("output columns:")
			w := 0
			for _, col := range s.Columns {
				w = max(w, len(col.Name))
			}
			for _, col := range s.Columns {
				fmt.Printf("  %-*s  %-6s  %s\n", w, col.Name, col.Type, strings.TrimSpace(col.Doc))
			}
			return nil
		},
	}
}
