package main

import (
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/filejob"
	"github.com/mce-engine/mce/engine/output"
)

// parseRun parses `mce run` arguments into engine options without running.
func parseRun(t *testing.T, args ...string) (engine.Options, error) {
	o, _, err := parseRunPaths(t, args...)
	return o, err
}

// parseRunPaths is parseRun that also returns the input paths.
func parseRunPaths(t *testing.T, args ...string) (engine.Options, []string, error) {
	t.Helper()
	env := &Env{Spec: feature.Invoice(), Logger: slog.New(slog.DiscardHandler)}
	cmd := runCommand(env)
	var opts engine.Options
	var paths []string
	var perr error
	cmd.Action = func(c *ucli.Context) error {
		var err error
		paths, err = argsAndLateFlags(c)
		if err != nil {
			perr = err
			return nil
		}
		opts, _, perr = runOptions(c, env, paths)
		return nil
	}
	app := &ucli.App{
		Name:     "mce",
		Flags:    []ucli.Flag{&ucli.StringFlag{Name: "log-level", Value: "info"}},
		Commands: []*ucli.Command{cmd},
	}
	if err := app.Run(append([]string{"mce", "run"}, args...)); err != nil {
		return opts, nil, err
	}
	return opts, paths, perr
}

func TestRunCommand_flags(t *testing.T) {
	o, paths, err := parseRunPaths(t, "a.csv", "--out", "runs", "dir/", "--clusters", "3,2,1", "--queue=fifo",
		"--param", "k=v", "--param", "x=1", "--ram-limit", "12GiB", "--poll", "250ms", "--recycle-after", "4",
		"--recycle-rss", "2GiB", "--no-progress", "--job", "jan", "--alias", "issuer=rfc", "--delimiter", ";")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(paths, []string{"a.csv", "dir/"}) || o.Out != "runs" || o.JobName != "jan" {
		t.Errorf("paths %v, out %q, job %q", paths, o.Out, o.JobName)
	}
	if !slices.Equal(o.Clusters, []int{3, 2, 1}) || o.Queue != engine.QueueFIFO || o.RAMLimitBytes != 12<<30 ||
		o.Poll != 250*time.Millisecond || o.RecycleAfter != 4 || o.RecycleRSSBytes != 2<<30 || o.Progress != nil {
		t.Errorf("cluster options %+v", o)
	}
	if o.Params["k"] != "v" || o.Params["x"] != "1" || len(o.Params) != 2 {
		t.Errorf("params %v", o.Params)
	}
	var job filejob.Job
	if err := json.Unmarshal(o.Job, &job); err != nil {
		t.Fatal(err)
	}
	if job.Reader.Delimiter != ';' || !slices.Contains(job.Reader.Aliases["issuer"], "rfc") || job.Mode != filejob.ModeAuto {
		t.Errorf("run settings %s", o.Job)
	}
	if o.FeatureName != "invoice" || len(o.WorkerArgs) == 0 || o.WorkerArgs[len(o.WorkerArgs)-1] != "worker" {
		t.Errorf("feature %q, worker args %v", o.FeatureName, o.WorkerArgs)
	}
}

func TestRunCommand_badFlags(t *testing.T) {
	f := func(args ...string) {
		t.Helper()
		if _, err := parseRun(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	f()                                   // no inputs
	f("a.csv", "--resume", "runs/job0")   // inputs with --resume
	f("a.csv", "--clusters", "2,x")       // bad layout
	f("a.csv", "--queue", "lifo")         // bad queue
	f("a.csv", "--ram-limit", "lots")     // bad limit
	f("a.csv", "--poll", "0s")            // no poll
	f("a.csv", "--recycle-after", "-1")   // negative
	f("a.csv", "--param", "novalue")      // bad param
	f("a.csv", "--nope")                  // unknown late flag
	f("a.csv", "--out")                   // late flag without its value
	f("a.csv", "--alias", "nocolumn=hdr") // unknown column
	f("a.csv", "--format", "xlsx")        // unknown format
	f("a.csv", "--key-name", `a"b`)       // a quote in the key name
	f("--resume", "runs/job0", "--format", "parquet")
	f("--resume", "runs/job0", "--key-name", "input")
}

func TestRunCommand_outputFlags(t *testing.T) {
	f := func(want output.Options, args ...string) {
		t.Helper()
		o, err := parseRun(t, append([]string{"a.csv"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var job filejob.Job
		if err := json.Unmarshal(o.Job, &job); err != nil {
			t.Fatal(err)
		}
		if job.Output != want {
			t.Errorf("%v: output settings %+v, want %+v", args, job.Output, want)
		}
	}
	f(output.Options{Format: output.CSV})
	f(output.Options{Format: output.Parquet}, "--format", "parquet")
	f(output.Options{Format: output.CSV}, "--key-name", "user")
	f(output.Options{Format: output.Parquet, KeyFromInput: true}, "--format=parquet", "--key-name", "input")
	f(output.Options{Format: output.CSV, KeyName: "rfc_emisor"}, "--key-name", "rfc_emisor")
}
