package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/engine/feature"
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
				args := []string{"debug"}
				for _, a := range os.Args[2:] {
					args = append(args, a)
				}
				args = dropFlag(args, "features")
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

func debugFile(c *ucli.Context, env *Env, path, onlyUser string, params feature.Params, ropts csvread.Options) error {
	spec := env.Spec
	f, err := csvread.Open(path, ropts)
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	defer f.Close()

	type batchRows struct {
		seq  int64
		keys []string
		rows [][][]byte
	}
	var batches []batchRows
	var row feature.Row
	stats, err := f.Scan(c.Context, 1, func(b *csvread.Batch) error {
		br := batchRows{seq: b.Seq()}
		for i := 0; i < b.Len(); i++ {
			b.Row(i, &row)
			key := b.User(i)
			if spec.Map != nil {
				var k []byte
				var keep bool
				if err := feature.Guard(func() error { k, keep = spec.Map(&row, params); return nil }); err != nil {
					return fmt.Errorf("%s:%d: map: %w", path, b.Line(i), err)
				}
				if !keep {
					continue
				}
				if k != nil {
					key = feature.KeyUTF8(k, row.Encoding)
				}
			}
			if onlyUser != "" && string(key) != onlyUser {
				continue
			}
			fields := make([][]byte, len(row.Fields))
			for j, fb := range row.Fields {
				fields[j] = slices.Clone(fb)
			}
			br.keys = append(br.keys, string(key))
			br.rows = append(br.rows, fields)
		}
		batches = append(batches, br)
		return nil
	})
	if err != nil {
		return &ExitError{Code: 1, Err: err}
	}
	sort.Slice(batches, func(i, j int) bool { return batches[i].seq < batches[j].seq })
	groups := map[string][][][]byte{}
	for _, br := range batches {
		for i, k := range br.keys {
			groups[k] = append(groups[k], br.rows[i])
		}
	}
	users := make([]string, 0, len(groups))
	for u := range groups {
		users = append(users, u)
	}
	sort.Strings(users)

	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	w.WriteString("user")
	for _, col := range spec.Columns {
		w.WriteString("," + col.Name)
	}
	w.WriteString("\n")
	out := spec.NewRecord()
	base := baseName(path)
	var line []byte
	for _, u := range users {
		user := &feature.User{Key: []byte(u), File: base, Params: params}
		err := spec.ReduceUser(user, feature.NewSliceRows(spec.Schema, f.Encoding, groups[u]), out)
		if err != nil {
			var pe *feature.PanicError
			if errors.As(err, &pe) {
				fmt.Fprintf(os.Stderr, "%s: user %q: %v\n%s", path, u, pe, pe.Stack)
			}
			w.Flush()
			return &ExitError{Code: 1, Err: fmt.Errorf("%s: user %q: %w", path, u, err)}
		}
		line = appendCSVField(line[:0], []byte(u))
		for i := range spec.Columns {
			line = append(line, ',')
			line = appendCSVField(line, out.AppendField(nil, i))
		}
		line = append(line, '\n')
		w.Write(line)
	}
	env.Logger.Info("debug done", "file", path, "rows", stats.Rows, "bad_rows", stats.BadRows, "users", len(users))
	for _, s := range stats.Samples {
		env.Logger.Warn("bad row", "error", s.Error(), "text", s.Text)
	}
	return nil
}
