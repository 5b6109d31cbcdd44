package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProfileEnv is the environment variable that asks mce to write CPU
// profiles: each process of a run (the parent and every cluster) writes
// <dir>/<name>-<pid>.pprof, dir being the variable's value.
const ProfileEnv = "MCE_CPUPROFILE"

// ProfileRuns is how many extra runs of each profiled system --profile
// makes: the runtime samples at 100 Hz, so one run of the default size
// (about a CPU-second) would put each phase's figure on a few dozen
// samples.
const ProfileRuns = 3

// Phase is a share of a system's CPU, read from its profiles.
type Phase struct {
	Name    string
	Seconds float64 // CPU seconds per run
}

// Profile is where one system's CPU went over ProfileRuns extra runs.
type Profile struct {
	System string
	Runs   int
	// Phases in the order of the system's phase list, "the rest" last;
	// Seconds are per run.
	Phases []Phase
	// Err says why there is no profile ("" when there is one).
	Err string
}

// Total is the profile's CPU seconds per run.
func (p *Profile) Total() float64 {
	var t float64
	for _, ph := range p.Phases {
		t += ph.Seconds
	}
	return t
}

// Seconds returns the seconds of the phase called name, and whether the
// profile has it.
func (p *Profile) Seconds(name string) (float64, bool) {
	for _, ph := range p.Phases {
		if ph.Name == name {
			return ph.Seconds, true
		}
	}
	return 0, false
}

// phaseRule names a phase and the functions that belong to it.
type phaseRule struct {
	name string
	re   *regexp.Regexp
}

// rule compiles a phaseRule. The rules are made on first use
// (phaseRules), not when mce starts: every mce process links this
// package, and two dozen regexps compiled at init cost each process's
// start about 6 ms of CPU (TestE2E_InitAllocations).
func rule(name, re string) phaseRule { return phaseRule{name, regexp.MustCompile(re)} }

// restPhase takes the samples no rule claims: the runtime's scheduler,
// the start of each process, the parent's bookkeeping.
const restPhase = "the rest: the runtime, start-up, the parent"

const mcePkg = `^github\.com/mce-engine/mce/`

// formatRe is writing features lines: engine/output and the Record's
// field formatting.
const formatRe = mcePkg + `engine/output\.|` + mcePkg + `engine/feature\.\(\*Record\)\.Append`

// featuresRe is the features' methods and closures (not engine/feature's
// plain functions: see phaseRules).
const featuresRe = mcePkg + `engine/feature\.(\(|[A-Za-z0-9_]+\.func)`

// fgoRe is a features file's own code (the package mce builds it into)
// and the feature API's methods it calls: Row's parses, Record's setters
// (engine/feature's plain functions count as their caller's, as for
// featuresRe).
const fgoRe = `/userfeatures\.|` + featuresRe

// codecRe is the block codecs' own code, and pebble's calls of them.
const codecRe = `^github\.com/minio/minlz\.|^github\.com/klauspost/compress/zstd\.|^github\.com/DataDog/zstd|^github\.com/cockroachdb/pebble/v2/internal/compression\.`

// inramRe is the one pass and the grouping: the rows routed to their
// users and the users' state.
const inramRe = mcePkg + `(engine/inram|internal/prefetch|internal/hugemem)\.`

// phaseRules lists, per profiled system, the phases its CPU is split into.
// A sample goes to the innermost frame of its stack that a rule names (the
// first of the list when several do): a read(2) under the CSV reader is
// the read. The features rules name methods and closures only, so that a
// plain function of engine/feature (ParseAmount, LocalSeconds) counts as
// its caller's: the features' when they parse, the reader's when it checks
// a value.
var phaseRules = sync.OnceValue(func() map[string][]phaseRule {
	gcRule := rule("the garbage collector", `^runtime\.(gcBgMarkWorker|gcAssistAlloc|gcDrain|bgsweep|bgscavenge|markroot|scanobject|wbBufFlush)`)
	readRule := rule("read the files (read(2) from the page cache)", mcePkg+`internal/csvread\.(\(\*diskReader\)|readFull|\(\*File\)\.split)`)
	parseRule := rule("parse the CSV and check its values", mcePkg+`internal/csvread\.`)
	// A reduce's phases, with features as the phase of the feature code:
	// its reads of the store and its own writes, the features, then the
	// store's decoding and the rows handed over.
	reduceRules := func(features phaseRule) []phaseRule {
		return []phaseRule{
			gcRule,
			rule("read table blocks (pread(2) from the page cache)", `^github\.com/cockroachdb/pebble/v2/objstorage/objstorageprovider\.\(\*(vfsReadHandle|fileReadable)\)\.ReadAt`),
			rule("decompress table blocks (MinLZ, zstd)", codecRe),
			rule("the block cache's buffers (C calloc and free)", `^github\.com/cockroachdb/pebble/v2/internal/(manual|cache)\.|^_Cfunc_`),
			rule("pebble's iterator", `^github\.com/cockroachdb/pebble/`),
			rule("part files: write them, merge them", mcePkg+`internal/keyruns\.`),
			rule("write the features files (format, write)", formatRe),
			features,
			rule("decode the store's blocks", mcePkg+`store\.`),
			rule("hand users' rows to the features", mcePkg+`reduce\.`),
		}
	}
	return map[string][]phaseRule{
		SysRun: {
			gcRule, readRule, parseRule,
			rule("write the features files (format, sort, write)", formatRe),
			rule("the features (Add, Finish; their parses)", featuresRe),
			rule("one pass: route rows, find the user, the tables", inramRe),
		},
		SysRunReduce: {
			gcRule, readRule, parseRule,
			rule("write the features files (format, sort, write)", formatRe),
			rule("the f.go's Reduce (its code, the feature API it calls)", fgoRe),
			rule("group: route rows, index the users, hand their rows over", inramRe),
		},
		SysPartition: {
			gcRule, readRule, parseRule,
			rule("sort the buffers", mcePkg+`partition\.sortEntries|^slices\.`),
			rule("spill sorted runs", mcePkg+`partition\.(\(\*sorter\)\.spill|writeRun|\(\*runWriter\)|\(\*frameEncoder\))|^github\.com/klauspost/compress/s2\.`),
			rule("read the runs back and merge them", mcePkg+`partition\.(\(\*runReader\)|decodeValue|\(\*groupMerge\))`),
			rule("compress the tables' blocks (MinLZ, zstd)", codecRe+`|^github\.com/cockroachdb/pebble/v2/sstable/block\.`),
			rule("pebble's table writer and ingest", `^github\.com/cockroachdb/pebble/`),
			rule("encode the store's blocks", mcePkg+`store\.`),
			rule("the merge tasks' own work and the ingest", mcePkg+`partition\.(\(\*mergeJob\)|\(\*taskWriter\)|\(\*job\)\.ingest)`),
			rule("route rows into the sort buffers", mcePkg+`partition\.`),
		},
		SysReduce:       reduceRules(rule("the features (Add, Finish; their parses)", featuresRe)),
		SysReduceReduce: reduceRules(rule("the f.go's Reduce (its code, the feature API it calls)", fgoRe)),
	}
})

// profiledSystems are the systems --profile profiles, in the order it
// runs them (partition into a store of its own, so that the reduces read
// the measured runs' store).
var profiledSystems = []string{SysRun, SysRunReduce, SysPartition, SysReduce, SysReduceReduce}

// profileTitle names a profiled system in the report.
func profileTitle(system string) string {
	switch system {
	case SysRunReduce:
		return "mce run, the Reduce-form f.go"
	case SysReduceReduce:
		return "mce reduce, the Reduce-form f.go"
	}
	return "mce " + system
}

// frameName is a stack frame's function without pprof's " (inline)" and
// the type parameters' shapes, which hold other packages' names.
func frameName(f string) string {
	f = strings.TrimSuffix(strings.TrimSpace(f), " (inline)")
	var b strings.Builder
	depth := 0
	for _, c := range f {
		switch {
		case c == '[':
			depth++
		case c == ']' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// classify returns the phase of a sample whose stack is frames, leaf
// first.
func classify(rules []phaseRule, frames []string) string {
	for _, f := range frames {
		name := frameName(f)
		for _, r := range rules {
			if r.re.MatchString(name) {
				return r.name
			}
		}
	}
	return restPhase
}

// pprofValue matches the first line of a stack in `go tool pprof
// -traces`: the sample's value, then the leaf frame.
var pprofValue = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^\s+([0-9.]+)(ns|us|µs|ms|s)\s+(\S.*)$`)
})

// unitSeconds is the seconds in one of pprofValue's units.
func unitSeconds(unit string) float64 {
	switch unit {
	case "ns":
		return 1e-9
	case "us", "µs":
		return 1e-6
	case "ms":
		return 1e-3
	}
	return 1
}

// readTraces reads `go tool pprof -traces` output and returns the
// seconds of each phase of rules (restPhase included), summed over
// every stack.
func readTraces(r io.Reader, rules []phaseRule) (map[string]float64, error) {
	by := map[string]float64{}
	var frames []string
	var value float64
	stacks := 0
	flush := func() {
		if len(frames) > 0 {
			by[classify(rules, frames)] += value
			stacks++
		}
		frames = frames[:0]
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			flush()
			continue
		}
		if m := pprofValue().FindStringSubmatch(line); m != nil {
			flush()
			v, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				return nil, fmt.Errorf("pprof -traces: value %q: %w", m[1]+m[2], err)
			}
			value = v * unitSeconds(m[2])
			frames = append(frames, m[3])
			continue
		}
		// The stack's further frames are indented (a sample's labels, which
		// mce's profiles do not have, would come before its value line).
		if len(frames) > 0 && strings.HasPrefix(line, "     ") {
			frames = append(frames, strings.TrimSpace(line))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("pprof -traces: %w", err)
	}
	flush()
	if stacks == 0 {
		return nil, errors.New("pprof -traces: no samples")
	}
	return by, nil
}

// phasesOf orders a readTraces result as the rules list them, the rest
// last, dividing by runs; phases with no samples are kept, at 0.
func phasesOf(rules []phaseRule, by map[string]float64, runs int) []Phase {
	var out []Phase
	for _, r := range rules {
		out = append(out, Phase{r.name, by[r.name] / float64(runs)})
	}
	return append(out, Phase{restPhase, by[restPhase] / float64(runs)})
}

// profileSystems runs each of profiledSystems that was measured
// ProfileRuns more times with ProfileEnv set, outside the measured runs
// (profiling slows them), and splits its CPU into phases.
func (r *runner) profileSystems(ctx context.Context, rep *Report) []*Profile {
	var out []*Profile
	for _, sys := range profiledSystems {
		if !rep.Result(sys).OK() {
			continue
		}
		p := &Profile{System: sys, Runs: ProfileRuns}
		if err := r.profile(ctx, p); err != nil {
			p.Err = err.Error()
			r.cfg.Logger.Warn("bench: no profile", "system", sys, "err", err)
		}
		out = append(out, p)
	}
	return out
}

// profile fills p from ProfileRuns profiled runs of p.System.
func (r *runner) profile(ctx context.Context, p *Profile) error {
	dir := filepath.Join(r.cfg.Work, "profile", p.System)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for i := range p.Runs {
		out := filepath.Join(dir, fmt.Sprintf("out%d", i+1))
		var args []string
		switch p.System {
		case SysPartition:
			args = r.partitionArgs(out, r.cfg.CPUs, r.inputArgs())
		case SysRun, SysRunReduce, SysReduce, SysReduceReduce:
			args = r.mceArgs(p.System, out, r.cfg.CPUs)
		default:
			return fmt.Errorf("no profile for %s", p.System)
		}
		r.cfg.Logger.Info("bench: profiling", "system", p.System, "run", i+1, "of", p.Runs, "env", ProfileEnv+"="+dir)
		if _, err := Measure(ctx, Command{Args: args, Env: []string{ProfileEnv + "=" + dir}}); err != nil {
			return err
		}
		if err := os.RemoveAll(out); err != nil {
			return err
		}
	}
	profiles, _ := filepath.Glob(filepath.Join(dir, "*.pprof"))
	if len(profiles) == 0 {
		return fmt.Errorf("mce wrote no CPU profile (it does not read %s yet)", ProfileEnv)
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"tool", "pprof", "-traces"}, profiles...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	traces, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go tool pprof -traces: %w: %s", err, truncate(strings.TrimSpace(stderr.String()), 400))
	}
	rules := phaseRules()[p.System]
	by, err := readTraces(bytes.NewReader(traces), rules)
	if err != nil {
		return err
	}
	p.Phases = phasesOf(rules, by, p.Runs)
	return nil
}

// savedProfiles is what a results folder keeps of its last report's
// profiles (profileFile), for the next report's "before" column.
type savedProfiles struct {
	Date     time.Time
	MCE      string
	Profiles []*Profile
}

// profileFile is the file in a results folder that holds the profiles of
// its latest report.
const profileFile = "latest-profile.json"

// readSavedProfiles reads dir's profileFile; nil when there is none or
// it cannot be read (a report without a "before" column).
func readSavedProfiles(dir string) *savedProfiles {
	b, err := os.ReadFile(filepath.Join(dir, profileFile))
	if err != nil {
		return nil
	}
	var s savedProfiles
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	return &s
}

// profileOf returns the profile of system among ps, or nil.
func profileOf(ps []*Profile, system string) *Profile {
	for _, p := range ps {
		if p.System == system && p.Err == "" {
			return p
		}
	}
	return nil
}
