package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v3/mem"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/bytesize"
)

// Queue orders.
const (
	// QueueDeque is the original engine's double-ended queue: files sorted
	// largest first; cluster 0 takes from the large end, every other
	// cluster from the small end, so the largest files do not all sit in
	// RAM at once.
	QueueDeque = "deque"
	// QueueFIFO hands out files in size order (largest first) to whichever
	// cluster is free, so results arrive in a predictable order.
	QueueFIFO = "fifo"
)

// What the RAM monitor measures.
const (
	MeasureRSS    = "rss"
	MeasurePSS    = "pss"
	MeasureCgroup = "cgroup"
)

// Defaults.
const (
	DefaultJobName       = "job"
	DefaultPoll          = time.Second
	DefaultRAMShare      = 0.8 // of physical RAM, as the original engine advises
	DefaultProgressEvery = 5 * time.Second
	DefaultStartTimeout  = 30 * time.Second
)

// Options configure Run. The zero value (with Tasks) works.
type Options struct {
	// Tasks are the work, planned by a mode (filejob.Plan for `mce run`,
	// reduce.Plan for `mce reduce`): they run by phase, then largest
	// first, on the clusters, whose workers must have a Handler for each
	// task's Kind.
	Tasks []Task
	// Job are the mode's settings for the whole run, sent to every
	// cluster (TaskEnv.Job) and kept in plan.json, so that --resume runs
	// the rest with the same settings.
	Job json.RawMessage

	// Out is the folder in which the run directory JobName<n> is made
	// (default ".").
	Out string
	// JobName names the run (default "job").
	JobName string
	// Resume names the run directory of an interrupted run to finish:
	// its plan is read from it; Paths, Inputs, Tasks, Out and JobName are
	// then ignored.
	Resume string

	// Clusters gives the CPUs of each cluster. Default: DefaultClusters.
	Clusters []int
	// Queue is QueueDeque (default) or QueueFIFO.
	Queue string
	// RAMLimitBytes is the total RSS of all clusters above which the
	// cluster using the most is killed (default 80% of physical RAM).
	RAMLimitBytes int64
	// RAMMeasure is what the RAM monitor compares with the limit:
	// MeasureRSS (default: each cluster's resident set, shared pages
	// counted in every process), MeasurePSS (shared pages counted once) or
	// MeasureCgroup (this process's cgroup's working set: what the kernel's
	// out-of-memory killer acts on; the victim is still the busiest
	// cluster by RSS).
	RAMMeasure string
	// Poll is how often RSS is measured (default 1s).
	Poll time.Duration
	// RecycleAfter restarts a cluster after this many files (0: never).
	RecycleAfter int
	// RecycleRSSBytes restarts a cluster whose RSS between files exceeds
	// it (0: never), against leaks in feature code.
	RecycleRSSBytes int64

	// WorkerExe is the binary whose worker command runs a cluster
	// (default: this executable); WorkerArgs its arguments (default
	// ["worker"]).
	WorkerExe  string
	WorkerArgs []string
	// WorkerEnv is added to each worker's environment.
	WorkerEnv []string

	// Params are the job's --param values.
	Params feature.Params
	// FeatureName names the feature set in the plan and summary.
	FeatureName string
	// FeaturesFile is the features file (f.go) the workers were built
	// from, "" for a built-in set: a copy is kept in the run folder and
	// its hash in plan.json, for --resume.
	FeaturesFile string
	// Command is the command line, kept in plan.json.
	Command []string
	// Given are the cluster settings the command line gave, kept in
	// plan.json for --resume (the fields above hold them too).
	Given Resources

	// Logger gets the engine's log and the workers'; nil: slog.Default().
	Logger *slog.Logger
	// Progress, if set, gets a live view (on a terminal) or a plain
	// progress line every ProgressEvery.
	Progress      io.Writer
	ProgressEvery time.Duration
	// StartTimeout bounds a cluster's start (default 30s).
	StartTimeout time.Duration
	// Prestarted are cluster processes started by Prestart while the
	// caller planned: Run adopts those that fit its clusters and kills
	// the others.
	Prestarted *Prestarted
}

// maxDefaultCluster is the most CPUs a default cluster has. On 16 CPUs
// (4 GB in 16 files, the one pass), one cluster of 16 took 3.05-3.28 s
// and two of 8 2.66 s in one session; in another (medians of 3,
// interleaved) one of 16 2.98 s, 8,7 2.90 s and four of 4 2.79 s. A
// cluster's CPUs are not all busy while it opens a file and ends it, and
// two clusters fill each other's gaps; sixteen of one CPU (4.15-4.60 s)
// are too many.
const maxDefaultCluster = 8

// DefaultClusters returns the default cluster layout for n CPUs: one
// cluster of them all up to 4, else of all but one (left to the parent
// and the system), cut into clusters of at most maxDefaultCluster, the
// largest first.
func DefaultClusters(n int) []int {
	return evenClusters(DefaultCPUs(n), maxDefaultCluster)
}

// DefaultCPUs returns how many of n CPUs mce's clusters get by default:
// all up to 4, else all but one.
func DefaultCPUs(n int) int {
	if n <= 4 {
		return max(n, 1)
	}
	return n - 1
}

// evenClusters cuts n CPUs into as few clusters of at most size CPUs as
// can be, as even as can be, the largest first.
func evenClusters(n, size int) []int {
	k := (n + size - 1) / size
	out := make([]int, k)
	for i := range out {
		out[i] = n / k
		if i < n%k {
			out[i]++
		}
	}
	return out
}

// PhysicalRAM returns the machine's RAM in bytes.
func PhysicalRAM() (int64, error) {
	vm, err := mem.VirtualMemory()
	if err != nil {
		return 0, fmt.Errorf("read physical RAM: %w", err)
	}
	return int64(vm.Total), nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Out == "" {
		o.Out = "."
	}
	if o.JobName == "" {
		o.JobName = DefaultJobName
	}
	if strings.ContainsAny(o.JobName, "/\\\x00") || strings.Contains(o.JobName, "..") {
		return o, fmt.Errorf("job name %q: no slashes and no \"..\" (the run folder must stay inside the output folder)", o.JobName)
	}
	if len(o.Clusters) == 0 {
		o.Clusters = DefaultClusters(runtime.NumCPU())
	}
	for i, n := range o.Clusters {
		if n < 1 {
			return o, fmt.Errorf("cluster %d has %d CPUs: want at least 1", i, n)
		}
	}
	switch o.Queue {
	case "":
		o.Queue = QueueDeque
	case QueueDeque, QueueFIFO:
	default:
		return o, fmt.Errorf("queue %q: want deque or fifo", o.Queue)
	}
	if o.RAMLimitBytes < 0 {
		return o, fmt.Errorf("RAM limit %d: want a positive size", o.RAMLimitBytes)
	}
	if o.RAMLimitBytes == 0 {
		total, err := PhysicalRAM()
		if err != nil {
			return o, err
		}
		o.RAMLimitBytes = int64(float64(total) * DefaultRAMShare)
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	switch o.RAMMeasure {
	case "":
		o.RAMMeasure = MeasureRSS
	case MeasureRSS, MeasurePSS, MeasureCgroup:
	default:
		return o, fmt.Errorf("RAM measure %q: want rss, pss or cgroup", o.RAMMeasure)
	}
	if o.RecycleAfter < 0 || o.RecycleRSSBytes < 0 {
		return o, errors.New("recycle bounds must not be negative")
	}
	if o.WorkerExe == "" {
		exe, err := os.Executable()
		if err != nil {
			return o, fmt.Errorf("find own binary: %w", err)
		}
		o.WorkerExe = exe
	}
	if o.WorkerArgs == nil {
		o.WorkerArgs = []string{"worker"}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = DefaultProgressEvery
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	return o, nil
}

// ParseClusters reads a cluster layout: CPUs per cluster, comma separated
// ("3,2,1").
func ParseClusters(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("clusters %q: want CPUs per cluster like 3,2,1", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// ParseRAMLimit reads a RAM limit: a share of physical RAM ("80%") or a
// size in bytes ("12GiB", see package bytesize).
func ParseRAMLimit(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if pct, ok := strings.CutSuffix(t, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil || v <= 0 || v > 100 {
			return 0, fmt.Errorf("RAM limit %q: want a share like 80%% or a size like 12GiB", s)
		}
		total, err := PhysicalRAM()
		if err != nil {
			return 0, err
		}
		return int64(float64(total) * v / 100), nil
	}
	n, err := bytesize.Parse(t)
	if err != nil {
		return 0, fmt.Errorf("RAM limit %q: want a share like 80%% or a size like 12GiB", s)
	}
	if n <= 0 {
		return 0, fmt.Errorf("RAM limit %q: want more than 0", s)
	}
	return n, nil
}
