package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mce-engine/mce/internal/procfs"
)

// Report is everything one benchmark measured.
type Report struct {
	Date    time.Time
	Machine Machine
	Config  Config
	MCE     string // mce's version line
	Data    *Dataset
	// Results are the systems at Config.CPUs, in AllSystems order.
	Results []*Result
	// Sweep holds run and reduce at 1, 2, … all cores (with --sweep).
	Sweep []SweepPoint
	// Gate says what was compared with what.
	Gate []string
	// Profiles split the CPU of run, partition and reduce (and of run and
	// reduce with the Reduce-form f.go) into phases (--profile); Before
	// holds the profiles of the last report in its results folder that
	// had them.
	Profiles []*Profile
	Before   *savedProfiles
	// Flat is mce reduce on half the data against the whole (flat.go).
	Flat    *Flat
	Targets []Target
}

// SweepPoint is run and reduce at one CPU count.
type SweepPoint struct {
	CPUs        int
	Run, Reduce *Result
}

// Machine describes where the figures come from.
type Machine struct {
	Host      string
	CPUModel  string
	Cores     int
	RAMBytes  int64
	Kernel    string
	GoVersion string
	// LoadStart and LoadEnd are the 1-minute load averages: other work on
	// the machine makes every figure slower.
	LoadStart, LoadEnd string
	// WorkFreeBytes is the free room of the work folder's file system once
	// the data is there (0: not known): where it is short, partition
	// compresses its spilled runs and is slower (its row's note says so).
	WorkFreeBytes int64
}

// Result returns the result of system at Config.CPUs, or nil.
func (r *Report) Result(system string) *Result {
	for _, res := range r.Results {
		if res.System == system {
			return res
		}
	}
	return nil
}

// Run runs the benchmark: it prepares the data, measures every system,
// checks that their features agree, and writes the report to cfg.Stdout and
// cfg.Results. A disagreement returns an error wrapping the
// *MismatchError, and no figures are printed. Systems that failed are in
// the report, and make Run return an error after writing it.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Work, 0o755); err != nil {
		return nil, fmt.Errorf("work folder: %w", err)
	}
	if err := settle(ctx, cfg.Settle, runtime.NumCPU(), loadAverage, cfg.Logger); err != nil {
		return nil, err
	}
	rep := &Report{Date: time.Now(), Machine: readMachine(), Config: cfg}
	mce := probeMCE(ctx, cfg.MCE)
	rep.MCE = mce.version
	if mce.err != nil {
		cfg.Logger.Warn("bench: " + mce.err.Error())
	}
	data, err := prepareData(ctx, &cfg, mce)
	if err != nil {
		return nil, err
	}
	rep.Data = data
	if u, err := vfs.Default.GetDiskUsage(cfg.Work); err == nil {
		rep.Machine.WorkFreeBytes = int64(u.AvailBytes)
	}
	defer func() {
		if !cfg.KeepData {
			os.RemoveAll(filepath.Join(cfg.Work, "out"))
			os.RemoveAll(filepath.Join(cfg.Work, "store"))
			if data.Generated {
				os.RemoveAll(data.Dir)
				os.RemoveAll(filepath.Join(cfg.Work, "truth"))
			}
		}
	}()

	r := &runner{cfg: &cfg, mce: mce, data: data, rounds: new([]*pendingRuns)}
	byName := map[string]*Result{}
	for _, sys := range measureOrder {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if cfg.skipped(sys) {
			byName[sys] = &Result{System: sys, CPUs: cfg.CPUs, Status: StatusSkipped, Reason: "--skip"}
			continue
		}
		if p := byName[SysPartition]; needsStore(sys) && p.Status != StatusOK {
			// A store left from another bench may hold other data.
			byName[sys] = &Result{System: sys, CPUs: cfg.CPUs, Status: StatusUnavailable, Reason: noStore(p)}
			continue
		}
		byName[sys] = r.measure(ctx, sys, cfg.CPUs)
	}
	r.runRounds(ctx, byName[SysPartition])
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, sys := range measureOrder {
		if res := byName[sys]; res.Status != StatusOK && res.Status != StatusSkipped {
			cfg.Logger.Warn("bench: "+res.Status.String(), "system", sys, "reason", firstLine(res.Reason))
		}
	}
	for _, sys := range AllSystems() {
		rep.Results = append(rep.Results, byName[sys])
	}

	ref, gateErr := gate(rep)
	if gateErr != nil {
		return rep, gateErr
	}
	if cfg.Sweep {
		if err := sweep(ctx, r, rep, ref); err != nil {
			return rep, err
		}
	}
	if !cfg.skipped(SysReduce) {
		rep.Flat = r.measureFlat(ctx, rep.Result(SysReduce))
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
	if cfg.Profile {
		rep.Profiles = r.profileSystems(ctx, rep)
		if cfg.Results != "-" {
			rep.Before = readSavedProfiles(cfg.Results)
		}
	}
	rep.Machine.LoadEnd = loadAverage()
	rep.Targets = evaluate(rep)

	md := rep.Markdown()
	fmt.Fprint(cfg.Stdout, md)
	if cfg.Results != "-" {
		paths, err := rep.WriteFiles(cfg.Results)
		if err != nil {
			return rep, err
		}
		cfg.Logger.Info("bench: report written", "files", strings.Join(paths, " "))
	}
	cfg.Logger.Info("bench: its own peak RSS", "mib", round3(mibOf(procfs.PeakRSS())))
	var failed []string
	for _, res := range rep.Results {
		if res.Status == StatusFailed {
			failed = append(failed, res.System)
		}
	}
	for _, p := range rep.Sweep {
		for _, res := range []*Result{p.Run, p.Reduce} {
			if res != nil && res.Status == StatusFailed {
				failed = append(failed, fmt.Sprintf("%s at %d CPUs", res.System, p.CPUs))
			}
		}
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("%d measurements failed: %s (see the report)", len(failed), strings.Join(failed, ", "))
	}
	return rep, nil
}

// measureOrder is the order the systems are measured in, in every round:
// the systems that read the store after the partition that makes it.
var measureOrder = []string{SysFloor, SysCSVFloor, SysRun, SysRunGroup, SysRunDisk, SysRun1CPU, SysRunReduce, SysPartition, SysReduce, SysReduceReduce, SysUnix, SysDuckDB}

// needsStore reports whether system reads the store of this bench's
// partition.
func needsStore(system string) bool { return system == SysReduce || system == SysReduceReduce }

// noStore is why a system that needs the store was not run, partition
// having failed or been skipped.
func noStore(partition *Result) string {
	return "needs the store of this bench's mce partition, which is " + partition.Status.String()
}

// measure runs one system at cpus.
func (r *runner) measure(ctx context.Context, system string, cpus int) *Result {
	switch system {
	case SysFloor:
		return r.runFloor(ctx, cpus)
	case SysCSVFloor:
		return r.runCSVFloor(ctx, cpus)
	case SysRun, SysRunGroup, SysRunDisk, SysRun1CPU, SysRunReduce, SysReduce, SysReduceReduce:
		return r.runMCE(ctx, system, cpus)
	case SysPartition:
		return r.runPartition(ctx, cpus)
	case SysUnix:
		return r.runUnix(ctx, cpus)
	case SysDuckDB:
		return r.runDuckDB(ctx, cpus)
	}
	panic("BUG: unknown system " + system)
}

// gate compares the features of every system with the reference (mce run,
// or the first measured system with every feature) and with truth.csv,
// input file by input file: it holds one file's features of the
// reference, of the truth and of one system at a time. It returns the
// reference.
func gate(rep *Report) (*PerFile, error) {
	var ref *PerFile
	var refRes *Result
	for _, sys := range []string{SysRun, SysReduce, SysDuckDB} {
		if res := rep.Result(sys); res.OK() && res.Features != nil {
			ref, refRes = res.Features, res
			break
		}
	}
	// A check is one comparison: want is the truth or the reference.
	type check struct {
		want, got *PerFile
		e         *MismatchError
		err       error
	}
	var checks []*check
	add := func(want, got *PerFile) {
		checks = append(checks, &check{want: want, got: got,
			e: &MismatchError{Ref: want.System, System: got.System, Compared: want.Fields & got.Fields}})
	}
	if rep.Data.Truth != "" {
		truth, err := TruthFiles(rep.Data.Truth, filepath.Join(rep.Config.Work, "out", "first", "truth"))
		if err != nil {
			return nil, fmt.Errorf("truth: %w", err)
		}
		if ref != nil {
			add(truth, ref)
		} else {
			ref = truth
		}
	}
	for _, res := range rep.Results {
		if !res.OK() || res.Features == nil || res == refRes {
			continue
		}
		if ref == nil {
			ref, refRes = res.Features, res
			continue
		}
		add(ref, res.Features)
	}
	var srcs []*PerFile
	for _, c := range checks {
		srcs = append(srcs, c.want, c.got)
	}
	for _, stem := range stemsOf(srcs...) {
		wants := map[*PerFile]*Features{}
		for _, c := range checks {
			if wants[c.want] == nil {
				fs, err := c.want.Read(stem)
				if err != nil {
					return ref, fmt.Errorf("correctness gate: %s's features: %w", c.want.System, err)
				}
				wants[c.want] = fs
			}
		}
		for _, c := range checks {
			if c.err != nil {
				continue
			}
			got := wants[c.got]
			if got == nil {
				var err error
				if got, err = c.got.Read(stem); err != nil {
					c.err = fmt.Errorf("%s's features: %w", c.got.System, err)
					continue
				}
			}
			c.e.add(wants[c.want], got, DefaultRelTol)
		}
	}
	var errs []error
	for _, c := range checks {
		switch {
		case c.err != nil:
			errs = append(errs, c.err)
		case c.e.Count > 0:
			errs = append(errs, c.e)
		default: // no row differs, so the rows compared are want's
			rep.Gate = append(rep.Gate, fmt.Sprintf("%s agrees with %s on %d rows (%s)",
				c.got.System, c.want.System, c.e.Rows, fieldList(c.e.Compared)))
		}
	}
	if len(errs) > 0 {
		return ref, fmt.Errorf("correctness gate: %w", errors.Join(errs...))
	}
	if ref == nil {
		rep.Gate = append(rep.Gate, "no system produced features and there is no truth.csv: nothing was compared")
	}
	return ref, nil
}

// sweep measures run and reduce at Config.SweepCPUs (default 1, 2, … all
// cores); the point at Config.CPUs is the main measurement.
func sweep(ctx context.Context, r *runner, rep *Report, ref *PerFile) error {
	var errs []error
	cpus := r.cfg.SweepCPUs
	if len(cpus) == 0 {
		for c := 1; c <= runtime.NumCPU(); c++ {
			cpus = append(cpus, c)
		}
	}
	for _, c := range cpus {
		p := SweepPoint{CPUs: c}
		if c == r.cfg.CPUs {
			p.Run, p.Reduce = rep.Result(SysRun), rep.Result(SysReduce)
		} else {
			for _, sys := range []string{SysRun, SysReduce} {
				main := rep.Result(sys)
				var res *Result
				if main.OK() {
					res = r.measure(ctx, sys, c)
					if res.OK() && ref != nil && res.Features != nil {
						if err := CompareFiles(ref, res.Features, DefaultRelTol); err != nil {
							errs = append(errs, fmt.Errorf("at %d CPUs: %w", c, err))
						}
					}
				} else {
					res = &Result{System: sys, CPUs: c, Status: main.Status, Reason: main.Reason}
				}
				if sys == SysRun {
					p.Run = res
				} else {
					p.Reduce = res
				}
			}
		}
		rep.Sweep = append(rep.Sweep, p)
	}
	if len(errs) > 0 {
		return fmt.Errorf("correctness gate: %w", errors.Join(errs...))
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// readMachine describes this machine from /proc.
func readMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: loadAverage()}
	m.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	scanKV := func(path string, fn func(k, v string) bool) {
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && !fn(strings.TrimSpace(k), strings.TrimSpace(v)) {
				return
			}
		}
	}
	scanKV("/proc/cpuinfo", func(k, v string) bool {
		if k == "model name" {
			m.CPUModel = v
			return false
		}
		return true
	})
	scanKV("/proc/meminfo", func(k, v string) bool {
		if k == "MemTotal" {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
			m.RAMBytes = kb * 1024
			return false
		}
		return true
	})
	return m
}

// busyLoad is the 1-minute load average per core from which other work
// on the machine slows the figures: the report calls them indicative, and
// settle waits for the load to fall under it.
const busyLoad = 0.5

// loadBusy reports whether load (a 1-minute load average as /proc gives
// it) is busyLoad per core or more; an unknown load is not.
func loadBusy(load string, cores int) bool {
	v, err := parseFloat(load)
	return err == nil && v >= busyLoad*float64(cores)
}

// settlePoll is how often settle reads the load average.
var settlePoll = 5 * time.Second

// settle waits, at most max, until load (the 1-minute load average) is
// under half of cores, so that the report's figures are not slowed by
// what ran just before (the report says "indicative" from that load on).
// It returns at once when max is 0 or the load is not known, and with
// ctx's error when ctx ends first.
func settle(ctx context.Context, max time.Duration, cores int, load func() string, logger *slog.Logger) error {
	quiet := func() (string, bool) {
		l := load()
		return l, !loadBusy(l, cores)
	}
	l, ok := quiet()
	if max <= 0 || ok {
		return nil
	}
	logger.Info("bench: waiting for the load average to settle", "load", l, "under", busyLoad*float64(cores), "at_most", max)
	deadline := time.Now().Add(max)
	tick := time.NewTicker(settlePoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if l, ok = quiet(); ok {
			logger.Info("bench: load average settled", "load", l)
			return nil
		}
		if time.Now().After(deadline) {
			logger.Warn("bench: the load average did not settle; measuring anyway", "load", l)
			return nil
		}
	}
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
