package beamrun

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mce-engine/mce/internal/fbuild"
)

func TestParseArgs(t *testing.T) {
	o, err := ParseArgs([]string{"--features", "f.go", "data/", "--param", "a=1", "--param=b=2", "-o", "out",
		"--runner=universal", "--endpoint", "localhost:8099", "--environment_type=LOOPBACK", "--across-files",
		"--delimiter", ";", "--sort-values", "more/", "--", "--odd-name.csv"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Features != "f.go" || o.Out != "out" || o.Runner != "universal" || o.Endpoint != "localhost:8099" || !o.AcrossFiles {
		t.Errorf("parsed %+v", o)
	}
	if !slices.Equal(o.Params, []string{"a=1", "b=2"}) {
		t.Errorf("params %q", o.Params)
	}
	if !slices.Equal(o.Inputs, []string{"data/", "more/", "--odd-name.csv"}) {
		t.Errorf("inputs %q", o.Inputs)
	}
	// Unknown flags go through as they are; the pipeline's value flags
	// take their value with them.
	if !slices.Equal(o.PipelineArgs, []string{"--environment_type=LOOPBACK", "--delimiter=;", "--sort-values"}) {
		t.Errorf("pipeline args %q", o.PipelineArgs)
	}
	o, err = ParseArgs([]string{"--out", "o", "d"})
	if err != nil || o.Runner != "prism" {
		t.Errorf("default runner: %q %v", o.Runner, err)
	}
}

func TestParseArgs_Errors(t *testing.T) {
	f := func(want string, args ...string) {
		t.Helper()
		_, err := ParseArgs(args)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", args, err, want)
		}
	}
	f(`--runner "flink": unknown runner (want prism, universal, dataflow`, "--runner", "flink", "--out", "o", "d")
	f("needs --endpoint", "--runner", "universal", "--out", "o", "d")
	f("--out", "d")
	f("input files", "--out", "o")
	f("want key=value", "--param", "x", "--out", "o", "d")
	f("flag needs an argument: --out", "d", "--out")
}

func TestWantsHelp(t *testing.T) {
	if !WantsHelp([]string{"--out", "o", "-h"}) || WantsHelp([]string{"--", "-h"}) || WantsHelp([]string{"d"}) {
		t.Error("WantsHelp")
	}
}

func TestRun_NoGo(t *testing.T) {
	t.Setenv("MCE_GO", filepath.Join(t.TempDir(), "no-go"))
	err := Run(context.Background(), Options{Out: "o", Inputs: []string{"d"}, Build: fbuild.Options{CacheDir: t.TempDir()}})
	if !errors.Is(err, fbuild.ErrNoGo) {
		t.Errorf("got %v", err)
	}
}
