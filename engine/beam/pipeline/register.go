package pipeline

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/mce-engine/mce/engine/feature"
)

// NB: Beam rebuilds every DoFn on its workers from the DoFn's exported
// fields, encoded as JSON; the Spec's functions (Map, Reduce,
// NewAggregator) cannot travel that way. A worker is the same program as
// the launcher (in-process for Prism's loopback, the staged binary on
// Dataflow, Flink or Spark), so each DoFn carries the Spec's name and finds
// the Spec in this table, which the program's main fills through Register
// before beam.Init. It is the package's only mutable state.
var specs struct {
	sync.Mutex
	byName map[string]*feature.Spec
}

// Register makes spec available to the pipeline's workers under its name.
// Call it before beam.Init (Main does). It validates the Spec; registering
// another Spec under a name already taken is an error.
func Register(spec feature.Spec) (*feature.Spec, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	specs.Lock()
	defer specs.Unlock()
	if specs.byName == nil {
		specs.byName = map[string]*feature.Spec{}
	}
	s := &spec
	specs.byName[spec.Name] = s
	return s, nil
}

// lookup returns the registered Spec of that name.
func lookup(name string) (*feature.Spec, error) {
	specs.Lock()
	defer specs.Unlock()
	if s, ok := specs.byName[name]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("feature set %q is not registered in this binary: a worker must run the "+
		"pipeline binary that mce built for it", name)
}

func init() {
	// The pipeline's types and functions, registered so that Beam calls
	// them without reflection and a worker can rebuild them by name.
	beam.RegisterType(reflect.TypeOf((*inputFile)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*FileStats)(nil)).Elem())
	beam.RegisterCoder(reflect.TypeOf((*partial)(nil)), encodePartial, decodePartial)

	register.DoFn4x1[context.Context, inputFile, func([]byte), func(FileStats), error](&readFn{})
	register.DoFn3x1[context.Context, []byte, func([]byte, []byte), error](&mapFn{})
	register.Combiner2[*partial, []byte](&addFn{})
	register.Function4x1(unsaltFn)
	// finishFn's ExtractOutput takes a context (for its counters), which
	// the register package's callers do not cover: it runs by reflection,
	// once per user.
	beam.RegisterType(reflect.TypeOf((*finishFn)(nil)).Elem())
	register.Function2x3(byFileFn)
	register.DoFn3x1[[]byte, func(*[]byte) bool, func(int, []byte), error](&reduceFn{})
	register.DoFn1x2[FileStats, int, FileStats](&statsByFileFn{})
	register.DoFn4x1[context.Context, int, func(*[]byte) bool, func(*FileStats) bool, error](&writeFn{})

	register.Emitter1[[]byte]()
	register.Emitter1[FileStats]()
	register.Emitter2[[]byte, []byte]()
	register.Emitter2[[]byte, *partial]()
	register.Emitter2[int, []byte]()
	register.Iter1[[]byte]()
	register.Iter1[FileStats]()
}
