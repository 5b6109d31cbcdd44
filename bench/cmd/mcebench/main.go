// Command mcebench runs the mode-vs-mode benchmark of package bench: mce
// run, partition and reduce against sort|awk, DuckDB and the read+split
// floor, on generated data, and writes bench/results/<date>-<host>.md.
//
//	go build -o bin/mcebench ./bench/cmd/mcebench && bin/mcebench [flags]
//
// Run it from inside the repository after `make build`; -h lists the flags.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mce-engine/mce/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcebench:", err)
		os.Exit(1)
	}
	code := bench.Main(ctx, os.Args[1:], []string{exe}, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
