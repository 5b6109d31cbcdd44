package report_test

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/report"
)

// TestMirrors_MatchEngine compares the types report reads summary.json
// and plan.json into with the engine's, which write them: every field the
// engine writes is read, or listed here as left unread with the reason,
// and every field read is one the engine writes, or one an older mce wrote.
// The package repeats the types instead of importing the engine (which
// calls it); without this test a field the engine adds or moves goes
// unseen, as version 2 of plan.json moved the reader's settings.
func TestMirrors_MatchEngine(t *testing.T) {
	for _, tc := range []struct {
		name   string
		engine reflect.Type
		unread map[string]string // written, not read: why
		older  map[string]string // read, no longer written: by what
	}{
		{"Summary", reflect.TypeFor[engine.Summary](), map[string]string{
			"ram_measure":        "status.log's \"RAM measure\" line says it",
			"bad_values":         "the file table sums the tasks' results",
			"bad_values_emptied": "the file table sums the tasks' results",
		}, nil},
		{"TaskSummary", reflect.TypeFor[engine.TaskSummary](), nil, nil},
		{"Result", reflect.TypeFor[engine.Result](), map[string]string{
			"bad_row_samples": "status.log's sample lines give them, for every attempt",
		}, nil},
		{"TaskError", reflect.TypeFor[engine.TaskError](), nil, nil},
		{"Plan", reflect.TypeFor[engine.Plan](), map[string]string{
			"resources": "status.log's start lines give the layout, queue and RAM limit each session ran with",
		}, map[string]string{
			"reader": "plan.json version 1, which version 2 moved into settings",
		}},
		{"Task", reflect.TypeFor[engine.Task](), map[string]string{
			"args":       "the mode's own settings of the task",
			"low_memory": "set on a retry, which status.log records",
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mirror, ok := report.Mirrors[tc.name]
			if !ok {
				t.Fatalf("report mirrors no %s", tc.name)
			}
			written, read := jsonFields(tc.engine), jsonFields(mirror)
			for _, f := range written {
				if !slices.Contains(read, f) && tc.unread[f] == "" {
					t.Errorf("engine.%s writes %q, which report's %v does not read: read it, or say here why not", tc.name, f, mirror)
				}
			}
			for f := range tc.unread {
				if slices.Contains(read, f) || !slices.Contains(written, f) {
					t.Errorf("%q is listed as written and left unread, but read %v, written %v", f, slices.Contains(read, f), slices.Contains(written, f))
				}
			}
			for _, f := range read {
				if !slices.Contains(written, f) && tc.older[f] == "" {
					t.Errorf("report's %v reads %q, which engine.%s does not write", mirror, f, tc.name)
				}
			}
		})
	}
}

// jsonFields returns the JSON names of t's exported fields.
func jsonFields(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case !f.IsExported() || name == "-":
			continue
		case name == "":
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

// TestTimings_MatchEngine is TestMirrors_MatchEngine for timings.csv, which
// the report reads by its header's names: a line whose every column holds
// a value of its own must come back with each value under its own column,
// every column the engine writes is read, and every column read is one the
// engine writes.
func TestTimings_MatchEngine(t *testing.T) {
	cols := strings.Split(engine.TimingsHeader, ",")
	want := map[string]string{}
	vals := make([]string, len(cols))
	for i, c := range cols {
		vals[i] = strconv.Itoa(i + 2) // a number parses as text too
		want[c] = vals[i]
	}
	lines := report.ParseTimings([]byte(engine.TimingsHeader + "\n" + strings.Join(vals, ",") + "\n"))
	if len(lines) != 1 {
		t.Fatalf("read %d lines of timings.csv, want 1", len(lines))
	}
	got := lines[0]
	for _, c := range cols {
		if got[c] != want[c] {
			t.Errorf("column %q: the report read %q, want %q (the column's own value)", c, got[c], want[c])
		}
	}
	for c := range got {
		if _, ok := want[c]; !ok {
			t.Errorf("the report reads column %q, which the engine's timings.csv does not have", c)
		}
	}
}
