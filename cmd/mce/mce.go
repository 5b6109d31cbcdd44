package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/prefork"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

// Env is what every command gets: the feature Spec this binary carries and
// the logger.
type Env struct {
	// Spec is the feature set compiled into this binary: the built-in
	// invoice set for mce, the user's for a features binary.
	Spec feature.Spec
	// FeaturesBinary is true in a binary compiled from a user's f.go.
	FeaturesBinary bool
	// Logger writes log records to stderr, at --log-level in
	// --log-format.
	Logger *slog.Logger
	// LogExplicit is true when --log-level or --log-format was given:
	// the user asked for log records on stderr, live view or not.
	LogExplicit bool
	// LogLevel is --log-level's.
	LogLevel slog.Level
}

// ExitError carries an exit code through urfave/cli.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Main runs the mce command line with the given feature Spec (the user's
// in a features binary) and returns the process exit code. Ctrl-C (SIGINT)
// or SIGTERM cancels the context.
func Main(args []string, spec feature.Spec, features bool) int {
	env := &Env{Spec: spec, FeaturesBinary: features}
	if err := env.Spec.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "mce:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dir := os.Getenv(CPUProfileEnv); dir != "" {
		profiling = append(profiling, startCPUProfile(dir))
	}
	if dir := os.Getenv(TraceEnv); dir != "" {
		profiling = append(profiling, startTrace(dir))
	}
	if dir := os.Getenv(MemProfileEnv); dir != "" {
		profiling = append(profiling, startMemProfile(dir))
	}
	defer stopProfiling()
	// The cluster process started at initialisation is killed unless a
	// run took it.
	defer prefork.Discard()
	app := newApp(env)
	err := app.RunContext(ctx, args)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(os.Stderr, "mce:", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintln(os.Stderr, "mce:", err)
	if ctx.Err() != nil {
		return 130
	}
	return 1
}

// CPUProfileEnv names a folder: when set, every mce process (the parent
// and each cluster) writes its CPU profile there as mce-<pid>.pprof, for
// `go tool pprof`. The benchmark's --profile uses it.
const CPUProfileEnv = "MCE_CPUPROFILE"

// TraceEnv names a folder: when set, every mce process writes its
// execution trace there as mce-<pid>.trace, for `go tool trace` (where
// the CPUs waited: on locks, channels, the collector).
const TraceEnv = "MCE_TRACE"

// MemProfileEnv names a folder: when set, every mce process writes its
// memory profile there as mce-<pid>.mprof when it ends, for `go tool
// pprof` (-sample_index=alloc_space: what each function allocated over
// the run; inuse_space: what was live at the last collection).
const MemProfileEnv = "MCE_MEMPROFILE"

// memProfileRate is the sampling rate of MCE_MEMPROFILE, in bytes: eight
// times finer than the runtime's default, so that a short run's
// allocations show.
const memProfileRate = 64 << 10

// profiling holds the stop functions of this process's CPU profile, trace
// and memory profile (MCE_CPUPROFILE, MCE_TRACE, MCE_MEMPROFILE) while
// they run.
var profiling []func()

// stopProfiling stops and writes out this process's profiles and trace.
// It runs before mce replaces itself with a features binary: the CPU
// profiler's interval timer survives execve(2), and its next SIGPROF
// would kill the new program before the Go runtime catches the signal.
func stopProfiling() {
	for _, stop := range profiling {
		stop()
	}
	profiling = nil
}

// startCPUProfile starts profiling into dir and returns the function that
// stops it; a profile that cannot start is reported on stderr and skipped.
func startCPUProfile(dir string) (stop func()) {
	return startInto(dir, "pprof", CPUProfileEnv, "CPU profile", pprof.StartCPUProfile, pprof.StopCPUProfile)
}

// startTrace is startCPUProfile for an execution trace.
func startTrace(dir string) (stop func()) {
	return startInto(dir, "trace", TraceEnv, "trace", trace.Start, trace.Stop)
}

// startMemProfile samples allocations from now on and returns the
// function that writes them to dir/mce-<pid>.mprof.
func startMemProfile(dir string) (stop func()) {
	runtime.MemProfileRate = memProfileRate
	var out io.Writer // the file, once startInto has made it
	return startInto(dir, "mprof", MemProfileEnv, "memory profile",
		func(w io.Writer) error { out = w; return nil },
		func() {
			runtime.GC() // the profile is as of the last collection
			if err := pprof.Lookup("allocs").WriteTo(out, 0); err != nil {
				fmt.Fprintf(os.Stderr, "mce: %s: no memory profile: %v\n", MemProfileEnv, err)
			}
		})
}

// startInto creates dir/mce-<pid>.ext, starts writing it with start and
// returns the function that stops it (with stop) and closes the file; one
// that cannot start is reported on stderr (naming env and what) and
// skipped.
func startInto(dir, ext, env, what string, start func(io.Writer) error, stop func()) func() {
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("mce-%d.%s", os.Getpid(), ext)))
	if err == nil {
		if err = start(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mce: %s: no %s: %v\n", env, what, err)
		return func() {}
	}
	return func() {
		stop()
		f.Close()
	}
}

func newApp(env *Env) *ucli.App {
	return &ucli.App{
		Name:    "mce",
		Usage:   "map-reduce of per-user features over many large files on one machine",
		Version: Version,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&ucli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json: log records go to stderr (on a terminal run, reduce and partition show a live view instead and keep the records in the run folder's status.log or the store's partition.log, unless -v or one of these two flags is given)"},
		},
		Before: func(c *ucli.Context) error {
			l, err := newLogger(c.String("log-level"), c.String("log-format"))
			if err != nil {
				return err
			}
			env.Logger = l
			env.LogExplicit = c.IsSet("log-level") || c.IsSet("log-format")
			env.LogLevel.UnmarshalText([]byte(c.String("log-level"))) // checked by newLogger
			slog.SetDefault(l)
			return nil
		},
		Commands:               commands(env),
		UseShortOptionHandling: true,
		HideHelpCommand:        false,
		ExitErrHandler:         func(*ucli.Context, error) {}, // errors are handled by run
	}
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// verboseFlag asks a command that draws a live view for its log records on
// stderr too, above the view.
var verboseFlag = &ucli.BoolFlag{Name: "verbose", Aliases: []string{"v"},
	Usage: "log records on stderr too (above the live view on a terminal); they always go to the run folder's status.log"}

// commandLogger is the logger of a command that draws a live view (live:
// stderr is a terminal and --no-progress was not given). While the view
// has the terminal the records go only to the run folder, where the engine
// writes them to status.log (partition: the store's partition.log), so
// that the terminal shows the view and then the summary, and no log lines
// among them; -v or an explicit --log-level or --log-format puts them on
// stderr as well. Off a terminal stderr gets them as before: one line per
// file started, done, failed or retried, and the warnings.
func (env *Env) commandLogger(c *ucli.Context, live bool) *slog.Logger {
	if live && !c.Bool(verboseFlag.Name) && !env.LogExplicit {
		return slog.New(slog.DiscardHandler)
	}
	return env.Logger
}

// noteHandler writes each record of Info and above as a short line for
// people, its message and the features file ("compiling features: f.go",
// "compiled features: f.go in 23.9 s"): for the features build that a
// command with a live view runs before the view starts.
type noteHandler struct{ w io.Writer }

func (h noteHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h noteHandler) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "features":
			line += ": " + a.Value.String()
		case "seconds":
			if a.Value.Kind() == slog.KindFloat64 {
				line += fmt.Sprintf(" in %.1f s", a.Value.Float64())
			}
		}
		return true
	})
	_, err := fmt.Fprintln(h.w, line)
	return err
}

func (h noteHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h noteHandler) WithGroup(string) slog.Handler      { return h }
