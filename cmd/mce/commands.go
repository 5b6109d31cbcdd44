package main

import ucli "github.com/urfave/cli/v2"

// commands lists every subcommand; each lives in its own file.
func commands(env *Env) []*ucli.Command {
	var cmds []*ucli.Command
	for _, f := range []func(*Env) *ucli.Command{
		genCommand,
		featuresCommand,
		debugCommand,
		runCommand,
		workerCommand,
		benchCommand,
		partitionCommand,
		storeCommand,
		reduceCommand,
		reportCommand,
		beamCommand,
	} {
		if f != nil {
			cmds = append(cmds, f(env))
		}
	}
	return cmds
}
