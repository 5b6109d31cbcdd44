package report

import (
	"fmt"
	"reflect"
)

// Mirrors are the types this package reads the engine's JSON files into,
// by the name of the engine's type they mirror (for schema_test.go, which
// compares them with the engine's).
var Mirrors = map[string]reflect.Type{
	"Summary":     reflect.TypeFor[summary](),
	"TaskSummary": reflect.TypeFor[taskSummary](),
	"Result":      reflect.TypeFor[result](),
	"TaskError":   reflect.TypeFor[taskError](),
	"Plan":        reflect.TypeFor[plan](),
	"Task":        reflect.TypeFor[planTask](),
}

// ParseTimings reads timings.csv b as the report does and gives each
// line's values by the name of the column each was read from (for
// schema_test.go, which checks them against the engine's header).
func ParseTimings(b []byte) []map[string]string {
	r := &run{bad: map[string]int{}}
	r.parseTimings(b)
	n := func(v any) string { return fmt.Sprint(v) }
	var lines []map[string]string
	for _, t := range r.timings {
		lines = append(lines, map[string]string{
			"file": t.file, "cluster": n(t.cluster),
			"bytes": n(t.bytes), "rows": n(t.rows), "bad_rows": n(t.badRows), "users": n(t.users),
			"bad_values":  n(t.badValues),
			"map_seconds": n(t.mapSeconds), "reduce_seconds": n(t.reduceSeconds), "peak_rss_mib": n(t.peakRSSMiB),
			"worker_max_seconds": n(t.workerMaxSeconds), "worker_mean_seconds": n(t.workerMeanSecs),
			"skew": n(t.skew), "status": t.status, "mode": t.mode, "mode_reason": t.modeReason,
		})
	}
	return lines
}
