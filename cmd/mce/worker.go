package main

import (
	"maps"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/filejob"
	"github.com/mce-engine/mce/reduce"
)

// workerCommand is the hidden `mce worker`: one cluster of `mce run`,
// started by mce itself with GOMAXPROCS set to the cluster's CPUs. It reads
// its config and tasks as JSON lines on stdin, answers on stdout, logs on
// stderr, and exits when stdin closes.
func workerCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:   "worker",
		Hidden: true,
		Usage:  "run one cluster for mce run (started by mce; JSON lines on stdin and stdout)",
		Action: func(c *ucli.Context) error {
			handlers := filejob.Handlers()
			maps.Copy(handlers, reduce.Handlers())
			err := engine.Serve(c.Context, engine.WorkerOptions{Spec: env.Spec, Handlers: handlers, Logger: env.Logger})
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			return nil
		},
	}
}
