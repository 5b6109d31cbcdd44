package pipeline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/csvread"
)

// Main is the pipeline binary's main: `mce beam` builds a program whose
// main calls it with the user's Spec, and runs it. It registers the Spec,
// reads its own flags and Beam's (--runner, --endpoint,
// --environment_type, --project, ...) from the process's command line,
// lets beam.Init turn the process into a worker when a runner started it
// as one, and otherwise runs the job and returns the exit status.
//
// NB: Beam's flags live in the standard flag package's CommandLine, which
// is where a worker finds its options, so Main parses os.Args there; args
// is os.Args.
func Main(args []string, spec feature.Spec) int {
	rs, err := Register(spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mce beam:", err)
		return 2
	}
	fs := flag.CommandLine
	beams := map[string]bool{} // the flags Beam defined, before ours
	fs.VisitAll(func(f *flag.Flag) { beams[f.Name] = true })
	var o Options
	var params, aliases listFlag
	fs.StringVar(&o.Out, "out", "", "DIR for the features files and summary.json (must hold no earlier results)")
	fs.Var(&params, "param", "key=value passed to the feature functions (repeatable)")
	fs.BoolVar(&o.AcrossFiles, "across-files", false, "one features file, "+acrossFilesOutput+", with one line per user over all the files")
	delim := fs.String("delimiter", "", "field separator: , ; | tab (default: sniffed per file)")
	enc := fs.String("encoding", "auto", "text encoding: auto, utf8 or cp1252")
	fs.Var(&aliases, "alias", "column=header maps a file's header name to a column (repeatable)")
	userCol := fs.String("user-col", "", "header name of the user column in the files")
	maxBad := fs.Float64("max-bad-rows", 0.01, "fail a file whose share of malformed rows exceeds this (negative: never)")
	fs.IntVar(&o.Fanout, "fanout", DefaultFanout, "sub-keys a hot user's rows are combined on (1: no fan-out)")
	fs.Int64Var(&o.HotRows, "hot-rows", DefaultHotRows, "rows of a user in a file before it may be fanned out")
	fs.Float64Var(&o.HotShare, "hot-share", DefaultHotShare, "share of its file's rows above which a user is fanned out")
	fs.BoolVar(&o.SortValues, "sort-values", false, "sort each user's rows in memory before the Reduce (for runners that reorder them)")
	fs.IntVar(&o.Parsers, "parsers", 0, "parser goroutines per file (default: the CPUs, at most 4)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error; Beam's and Prism's own logs show at debug")
	// The usage lists mce's flags, not Beam's many.
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s --out DIR [flags] [Beam flags] INPUTS...\n", args[0])
		fs.VisitAll(func(f *flag.Flag) {
			if !beams[f.Name] {
				fmt.Fprintf(fs.Output(), "  -%s\n    \t%s\n", f.Name, f.Usage)
			}
		})
		fmt.Fprintln(fs.Output(), "Beam's flags (--runner, --endpoint, --environment_type, --project, ...) pass to Beam.")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "mce beam: --log-level %q: want debug, info, warn or error\n", *logLevel)
		return 2
	}
	// Prism and the SDK log every job's start and stop through the
	// default logger: keep them to warnings unless asked.
	beamLevel := max(level, slog.LevelWarn)
	if level <= slog.LevelDebug {
		beamLevel = level
	}
	// A worker started by the runner never comes back from here.
	beam.Init()
	// NB: after beam.Init, which sets the default logger up its own way.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: beamLevel})))

	o.Inputs = fs.Args()
	o.Runner = *runners.Runner
	if o.Out == "" || len(o.Inputs) == 0 {
		fmt.Fprintf(os.Stderr, "usage: %s --out DIR [flags] INPUTS...\n", args[0])
		return 2
	}
	if o.Params, err = feature.ParseParams(params); err != nil {
		fmt.Fprintln(os.Stderr, "mce beam:", err)
		return 2
	}
	if o.Reader, err = readerOptions(*delim, *enc, aliases, *userCol, *maxBad, rs.Schema); err != nil {
		fmt.Fprintln(os.Stderr, "mce beam:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	sum, err := Run(ctx, spec, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mce beam:", err)
		if ctx.Err() != nil {
			return 130
		}
		return 1
	}
	fmt.Printf("output folder: %s\n%s\n", o.Out, sum.LastLine())
	return 0
}

// readerOptions reads the reader flags as `mce run` reads them.
func readerOptions(delim, enc string, aliases []string, userCol string, maxBad float64, schema *feature.Schema) (ReaderOptions, error) {
	if schema == nil {
		schema = feature.InvoiceSchema
	}
	o := ReaderOptions{MaxBadRowShare: maxBad, Aliases: map[string][]string{}}
	if o.MaxBadRowShare == 0 {
		o.MaxBadRowShare = 1e-12 // 0 means "no bad rows at all", as for mce run
	}
	switch delim {
	case "":
	case ",", ";", "|":
		o.Delimiter = delim[0]
	case "tab", "\\t", "\t":
		o.Delimiter = '\t'
	default:
		return o, fmt.Errorf("--delimiter %q: want , ; | or tab", delim)
	}
	var err error
	if o.Encoding, err = feature.ParseEncoding(enc); err != nil {
		return o, fmt.Errorf("--encoding: %w", err)
	}
	if o.Aliases, err = csvread.ParseAliases(schema, aliases, userCol); err != nil {
		return o, err
	}
	return o, nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	*l = append(*l, v)
	return nil
}
