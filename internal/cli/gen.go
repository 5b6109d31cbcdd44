package cli

import ucli "github.com/urfave/cli/v2"

// genCommand is `mce gen`. TODO(helper): implement.
func genCommand(env *Env) *ucli.Command {
	return &ucli.Command{Name: "gen", Usage: "generate demo invoice files"}
}
