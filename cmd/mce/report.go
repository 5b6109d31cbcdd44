package main

import (
	"errors"
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/engine/report"
)

// reportCommand is `mce report`: the HTML report of a run folder (old ones
// included), and advice for the next run's layout.
func reportCommand(*Env) *ucli.Command {
	return &ucli.Command{
		Name:      "report",
		Usage:     "write RUN_DIR/report.html (a self-contained page: timeline, RAM, files, failures, advice); --advise prints the advice",
		ArgsUsage: "RUN_DIR",
		Description: "Reads what a run folder of mce run or mce reduce recorded (status.log, ram_usage.log, timings.csv,\n" +
			"failure.log, summary.json, plan.json) and writes report.html beside them: open it from disk, it needs no\n" +
			"network. Runs write it themselves at the end; this command draws it for any run folder, old ones\n" +
			"included. --advise replays the measured file times through the scheduler over other --clusters\n" +
			"layouts and prints the one predicted fastest.",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "advise", Usage: "print advice for the next run's --clusters (and --ram-limit, --mode) instead of writing the page"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return &ExitError{Code: 2, Err: errors.New("report: give one run folder")}
			}
			dir := c.Args().First()
			if c.Bool("advise") {
				a, err := report.Advise(dir)
				if err != nil {
					return &ExitError{Code: 1, Err: err}
				}
				fmt.Print(a.String())
				return nil
			}
			path, err := report.Write(dir)
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			fmt.Printf("report: %s\n", path)
			return nil
		},
	}
}
