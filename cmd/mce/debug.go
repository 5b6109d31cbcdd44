package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/filejob"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/internal/csvread"
)

// debugCommand is `mce debug`: the feature function on one file (or one
// user), in this one process, with a panic's full stack on the terminal.
// The original engine's advice was to "run the function without MCE but
// pass in arguments that MCE would have passed in"; this does that.
func debugCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "debug",
		Usage:     "run the features on one file (or one --user) in this process and print them",
		ArgsUsage: "FILE",
		Description: "Reads FILE with the same reader as `mce run`, groups it in RAM in this one process\n" +
			"(no clusters), runs the feature function user by user and writes the features as CSV to\n" +
			"stdout. A panic prints its full stack. Meant for small files and single users while\n" +
			"writing a features file; use `mce run` for real work.",
		Flags: append([]ucli.Flag{
			featuresFlag,
			&ucli.StringFlag{Name: "user", Usage: "only this user (the grouping key)"},
			&ucli.StringSliceFlag{Name: "param", Usage: "`key=value` passed to the feature function (repeatable)"},
		}, readerFlags()...),
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return &ExitError{Code: 2, Err: errors.New("debug: give exactly one FILE")}
			}
			if c.String(featuresFlag.Name) != "" {
				exe, err := WorkerExe(c, env)
				if err != nil {
					return &ExitError{Code: 1, Err: err}
				}
				args := dropFlag(append([]string{"debug"}, os.Args[2:]...), "features")
				cmd := exec.CommandContext(c.Context, exe, args...)
				cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
				if err := cmd.Run(); err != nil {
					var ee *exec.ExitError
					if errors.As(err, &ee) {
						return &ExitError{Code: ee.ExitCode()}
					}
					return &ExitError{Code: 1, Err: err}
				}
				return nil
			}
			params, err := feature.ParseParams(c.StringSlice("param"))
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			ropts, err := readerOptions(c, env.Spec.Schema)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			return debugFile(c, env, c.Args().First(), c.String("user"), params, ropts)
		},
	}
}

// dropFlag removes --name value and --name=value from args.
func dropFlag(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--"+name || a == "-"+name {
			i++
			continue
		}
		if len(a) > len(name)+3 && (a[:len(name)+3] == "--"+name+"=") {
			continue
		}
		out = append(out, a)
	}
	return out
}

// debugFile runs `mce run`'s per-file job (package filejob) on one worker
// in this process, grouping in RAM, and writes the features table to
// stdout; onlyUser keeps that user's rows only (the key after the Map).
func debugFile(c *ucli.Context, env *Env, path, onlyUser string, params feature.Params, ropts csvread.Options) error {
	spec := env.Spec
	// The table is written as mce run writes it (the key column's name,
	// times without a zone), for the Spec as given: --user's filter is no
	// Map of the user's.
	table, err := output.NewWriter(os.Stdout, &env.Spec, output.Options{})
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	if onlyUser != "" {
		spec.Map = onlyKey(spec.Map, spec.Schema.User(), onlyUser)
	}
	st, err := os.Stat(path)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	res, err := filejob.Run(c.Context, filejob.Input{
		Path: path, Size: st.Size(), Job: filejob.Job{Reader: ropts, Mode: filejob.ModeGroup},
		Env: &engine.TaskEnv{Spec: &spec, Params: params, CPUs: 1, Progress: &engine.Progress{}, Logger: env.Logger},
	}, table)
	if err == nil {
		err = table.Close()
	}
	if err != nil {
		var pe *feature.PanicError
		if errors.As(err, &pe) {
			fmt.Fprintf(os.Stderr, "%v\n%s", err, pe.Stack)
		}
		return &ExitError{Code: 1, Err: err}
	}
	env.Logger.Info("debug done", "file", path, "rows", res.Rows, "bad_rows", res.BadRows, "users", res.Users)
	for _, s := range res.BadRowSamples {
		env.Logger.Warn("bad row", "sample", s)
	}
	return nil
}

// onlyKey wraps a Map (nil: none) so that only rows whose key, after it,
// is user are kept.
func onlyKey(inner func(*feature.Row, feature.Params) ([]byte, bool), userCol int, user string) func(*feature.Row, feature.Params) ([]byte, bool) {
	return func(row *feature.Row, p feature.Params) ([]byte, bool) {
		var key []byte
		if inner != nil {
			k, keep := inner(row, p)
			if !keep {
				return nil, false
			}
			key = k
		}
		if key == nil {
			key = row.Fields[userCol]
		}
		if string(feature.KeyUTF8(key, row.Encoding)) != user {
			return nil, false
		}
		return key, true
	}
}
