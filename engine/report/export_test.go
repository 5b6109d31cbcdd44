package report

import "reflect"

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
