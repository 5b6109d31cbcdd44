// Package beamrun is `mce beam`: it compiles the user's features (or the
// built-in set) into mce's Apache Beam pipeline binary (package
// internal/fbuild, module engine/beam) and runs the job with it, on Prism
// in-process, on a Beam job server (Flink, Spark, or a Prism job server)
// through the universal runner, or on Google Dataflow.
//
// The command line is parsed here, not by the CLI library, because Beam's
// own flags (--environment_type, --project, --temp_location, ...) pass
// through to the pipeline binary unchanged; the command file only calls
// ParseArgs and Run.
package beamrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/fbuild"
)

// Runners are the runners `mce beam --runner` accepts.
var Runners = []string{"prism", "universal", "dataflow"}

// Options are a `mce beam` job.
type Options struct {
	// Features is the features file (f.go); "" runs the built-in set.
	Features string
	// Params are the --param key=value pairs.
	Params []string
	// Runner is prism (the default), universal or dataflow.
	Runner string
	// Endpoint is the HOST:PORT of a Beam job server: needed by the
	// universal runner; with prism it names a standalone Prism instead of
	// the in-process one.
	Endpoint string
	// AcrossFiles writes one features file over all the inputs.
	AcrossFiles bool
	// Out is the output folder; Inputs the files and folders.
	Out    string
	Inputs []string
	// PipelineArgs are the other flags, passed to the pipeline binary as
	// they are: Beam's runner flags and the reader's (--delimiter, ...).
	PipelineArgs []string
	// Build configures the pipeline binary's build (its cache).
	Build fbuild.Options
	// Stdout and Stderr receive the pipeline's output (default: this
	// process's).
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
}

// ExitError is a pipeline binary that ended with a non-zero status; it
// has already said why on its stderr.
type ExitError struct {
	Code int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("the Beam pipeline exited with status %d", e.Code)
}

// valueFlags are the pipeline binary's flags that take a value, which may
// come as the next argument; every other unknown flag must be written
// --name=value (or be a boolean --name).
var valueFlags = []string{"delimiter", "encoding", "alias", "user-col", "max-bad-rows", "fanout", "hot-rows",
	"hot-share", "parsers"}

// WantsHelp reports whether the arguments ask for help (-h, --help).
func WantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

// ParseArgs reads `mce beam`'s arguments (those after "beam"). Flags may
// come before, after and between the inputs; "--" ends them.
func ParseArgs(args []string) (Options, error) {
	var o Options
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			o.Inputs = append(o.Inputs, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			o.Inputs = append(o.Inputs, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("flag needs an argument: %s", a)
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "features":
			o.Features, err = value()
		case "param":
			var kv string
			if kv, err = value(); err == nil {
				o.Params = append(o.Params, kv)
			}
		case "runner":
			o.Runner, err = value()
		case "endpoint":
			o.Endpoint, err = value()
		case "out", "o":
			o.Out, err = value()
		case "across-files":
			if hasVal && val != "true" {
				if val != "false" {
					return o, fmt.Errorf("--across-files=%s: want true or false", val)
				}
				continue
			}
			o.AcrossFiles = true
		default:
			if !hasVal && slices.Contains(valueFlags, name) {
				var v string
				if v, err = value(); err == nil {
					a = "--" + name + "=" + v
				}
			}
			o.PipelineArgs = append(o.PipelineArgs, a)
		}
		if err != nil {
			return o, err
		}
	}
	return o, o.validate()
}

func (o *Options) validate() error {
	if o.Runner == "" {
		o.Runner = "prism"
	}
	if !slices.Contains(Runners, o.Runner) {
		return fmt.Errorf("--runner %q: unknown runner (want %s; Flink and Spark run through their job servers "+
			"with --runner universal --endpoint HOST:PORT)", o.Runner, strings.Join(Runners, ", "))
	}
	if o.Runner == "universal" && o.Endpoint == "" {
		return errors.New("--runner universal needs --endpoint HOST:PORT, the job server's address (Flink, Spark or a Prism job server)")
	}
	if o.Out == "" {
		return errors.New("beam: give the output folder with --out")
	}
	if len(o.Inputs) == 0 {
		return errors.New("beam: give input files or folders")
	}
	if _, err := feature.ParseParams(o.Params); err != nil {
		return err
	}
	return nil
}

// Run builds the pipeline binary (cached: seconds, except the first time)
// and runs the job with it, until it ends or ctx is cancelled (the
// pipeline is then interrupted and removes its temporary files). A
// pipeline that fails returns an *ExitError.
func Run(ctx context.Context, o Options) error {
	if err := o.validate(); err != nil {
		return err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Build.Logger == nil {
		o.Build.Logger = o.Logger
	}
	exe, err := fbuild.BuildBeam(ctx, o.Features, o.Build)
	if err != nil {
		return err
	}
	args := []string{"--out", o.Out, "--runner", o.Runner}
	if o.Endpoint != "" {
		args = append(args, "--endpoint", o.Endpoint)
	}
	for _, p := range o.Params {
		args = append(args, "--param", p)
	}
	if o.AcrossFiles {
		args = append(args, "--across-files")
	}
	if o.Runner != "prism" && !hasFlag(o.PipelineArgs, "worker_binary") {
		// Workers that are not this process (Dataflow's, or a job
		// server's DOCKER or PROCESS environment) run the staged binary,
		// on linux/amd64: stage that build of the same pipeline. (Beam
		// would otherwise try to compile the program's source, which a
		// built binary does not have.) LOOPBACK ignores it.
		worker := exe
		if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
			if worker, err = fbuild.BuildBeamWorker(ctx, o.Features, o.Build); err != nil {
				return err
			}
		}
		args = append(args, "--worker_binary="+worker)
	}
	args = append(args, o.PipelineArgs...)
	args = append(args, "--")
	args = append(args, o.Inputs...)
	// The pipeline's temporary files (Beam leaves an empty
	// beamloopbackworker-* file per LOOPBACK job) go to a folder of this
	// job's, removed after it.
	tmp, err := os.MkdirTemp("", "mce-beam-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	// On Ctrl-C the pipeline gets SIGINT, so that it cancels the job and
	// removes its temporary folder, and some time to do so.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 30 * time.Second
	o.Logger.Debug("running the Beam pipeline", "binary", exe, "args", args)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return &ExitError{Code: ee.ExitCode()}
		}
		return fmt.Errorf("run the Beam pipeline %s: %w", exe, err)
	}
	return nil
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if n == name {
			return true
		}
	}
	return false
}
