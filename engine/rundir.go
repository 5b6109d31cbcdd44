package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/output"
)

// Files of a run directory.
const (
	StatusLog   = "status.log"    // every start, assignment, finish, kill and restart
	FailureLog  = "failure.log"   // one line per failure: time, cluster, file, user, message
	RAMLog      = "ram_usage.log" // CSV: time,cluster,pid,file,rss_mib,total_mib per poll
	TimingsCSV  = "timings.csv"   // one row per finished file
	SummaryJSON = "summary.json"  // the run's outcome, rewritten atomically
	PlanJSON    = "plan.json"     // the tasks and settings, for --resume
	// FeaturesCopy is the copy of the features file (f.go) a run was
	// built from, kept so that --resume builds the same features.
	FeaturesCopy = "features.go"
)

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// TimingsHeader is the header of timings.csv.
const TimingsHeader = "file,cluster,bytes,rows,bad_rows,users,map_seconds,reduce_seconds," +
	"peak_rss_mib,worker_max_seconds,worker_mean_seconds,skew,status,mode,mode_reason,bad_values"

// CreateRunDir makes the run directory out/<job><n>, n being one more
// than the largest number already used by out/<job><number> (0 for the
// first), so that no run ever overwrites another.
func CreateRunDir(out, job string) (string, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", fmt.Errorf("create output folder: %w", err)
	}
	ents, err := os.ReadDir(out)
	if err != nil {
		return "", fmt.Errorf("list output folder: %w", err)
	}
	n := 0
	for _, e := range ents {
		if k, ok := runNumber(e.Name(), job); ok && k >= n {
			n = k + 1
		}
	}
	for ; ; n++ {
		dir := filepath.Join(out, job+strconv.Itoa(n))
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("create run directory: %w", err)
		}
	}
}

// runNumber returns n when name is job followed by the decimal n (no
// sign, no leading zero).
func runNumber(name, job string) (int, bool) {
	suf, ok := strings.CutPrefix(name, job)
	if !ok || suf == "" || (len(suf) > 1 && suf[0] == '0') {
		return 0, false
	}
	for _, c := range suf {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(suf)
	return n, err == nil
}

// LockFile is held (flock) by the process running a run folder, so that a
// --resume of a run still running is refused. It holds that process's pid.
const LockFile = "run.lock"

// lockRunDir takes the run folder's lock, or says who holds it.
func lockRunDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(filepath.Join(dir, LockFile))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is still being run (pid %s holds it): wait for it, or stop it first", dir, strings.TrimSpace(string(pid)))
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}

// CheckNotRunning returns an error when a process runs the run folder dir
// now (it holds its lock): a mode that prepares a resume before engine.Run
// takes the lock itself calls it first.
func CheckNotRunning(dir string) error {
	f, err := lockRunDir(dir)
	if err != nil {
		return err
	}
	return f.Close()
}

// Plan is what a run directory records at its start so that --resume can
// finish it: the tasks and the settings that decide their results.
type Plan struct {
	Version int            `json:"version"`
	Job     string         `json:"job"`
	Feature string         `json:"feature"`
	Created time.Time      `json:"created"`
	Params  feature.Params `json:"params,omitempty"`
	// Settings are the mode's settings for the run (Options.Job).
	Settings json.RawMessage `json:"settings,omitempty"`
	// Command is the command line that started the run.
	Command []string `json:"command,omitempty"`
	// Features is the features file the run computes (nil: the set built
	// into the binary); its copy is FeaturesCopy in the run folder.
	Features *FeaturesSource `json:"features_source,omitempty"`
	// Resources are the cluster settings the command line gave
	// (Options.Given), which --resume keeps unless it gives them anew;
	// left out when none was given.
	Resources Resources `json:"resources,omitzero"`
	Tasks     []Task    `json:"tasks"`
}

// Resources are a run's cluster settings as its command line gave them,
// each zero when it was not given (its default then).
type Resources struct {
	Clusters        []int         `json:"clusters,omitempty"`
	Queue           string        `json:"queue,omitempty"`
	RAMLimitBytes   int64         `json:"ram_limit_bytes,omitempty"`
	RAMMeasure      string        `json:"ram_measure,omitempty"`
	Poll            time.Duration `json:"poll_ns,omitempty"`
	RecycleAfter    int           `json:"recycle_after,omitempty"`
	RecycleRSSBytes int64         `json:"recycle_rss_bytes,omitempty"`
}

// FeaturesSource names a run's features file and its content's hash.
type FeaturesSource struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// HashFile returns the hex SHA-256 of a file's content.
func HashFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// keepFeatures copies the features file at path into the run folder and
// returns its record for the plan.
func keepFeatures(dir, path string) (*FeaturesSource, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keep the features file: %w", err)
	}
	if err := output.WriteFileAtomic(filepath.Join(dir, FeaturesCopy), b); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return &FeaturesSource{Path: abs, SHA256: hex.EncodeToString(sum[:])}, nil
}

// planVersion 2: the mode's settings as Settings (version 1 had the
// reader's options in their place and map-valued task Args).
const planVersion = 2

func writePlan(dir string, p *Plan) error {
	p.Version = planVersion
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return output.WriteFileAtomic(filepath.Join(dir, PlanJSON), append(b, '\n'))
}

// ReadPlan reads the plan of a run directory.
func ReadPlan(dir string) (*Plan, error) {
	b, err := os.ReadFile(filepath.Join(dir, PlanJSON))
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	p := &Plan{}
	if err := json.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("resume %s: read %s: %w", dir, PlanJSON, err)
	}
	if p.Version != planVersion {
		return nil, fmt.Errorf("resume %s: plan version %d, this mce reads %d", dir, p.Version, planVersion)
	}
	return p, nil
}

// runLogs are the run directory's log files, opened for appending.
type runLogs struct {
	dir                          string
	mu                           sync.Mutex
	status, failure, ram, timing *os.File
}

func openRunLogs(dir string) (*runLogs, error) {
	l := &runLogs{dir: dir}
	open := func(name, header string) (*os.File, error) {
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", name, err)
		}
		if header != "" {
			if st, err := f.Stat(); err == nil && st.Size() == 0 {
				if _, err := f.WriteString(header + "\n"); err != nil {
					f.Close()
					return nil, fmt.Errorf("write %s: %w", name, err)
				}
			}
		}
		return f, nil
	}
	var err error
	if l.status, err = open(StatusLog, ""); err != nil {
		return nil, err
	}
	if l.failure, err = open(FailureLog, ""); err != nil {
		l.close()
		return nil, err
	}
	if l.ram, err = open(RAMLog, "time,cluster,pid,file,rss_mib,total_mib"); err != nil {
		l.close()
		return nil, err
	}
	if l.timing, err = open(TimingsCSV, TimingsHeader); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

func (l *runLogs) close() {
	for _, f := range []*os.File{l.status, l.failure, l.ram, l.timing} {
		if f != nil {
			f.Sync()
			f.Close()
		}
	}
}

func stamp() string { return time.Now().Format(timeLayout) }

// statusf appends one line to status.log.
func (l *runLogs) statusf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.status, "%s %s\n", stamp(), fmt.Sprintf(format, args...))
}

// failuref appends one failure to failure.log: cluster (-1: none), file,
// user (may be empty) and message, then a panic's stack indented.
func (l *runLogs) failuref(cluster int, file, user, stack, format string, args ...any) {
	var b strings.Builder
	b.WriteString(stamp())
	if cluster >= 0 {
		fmt.Fprintf(&b, " cluster %d", cluster)
	}
	if file != "" {
		fmt.Fprintf(&b, " file %s", file)
	}
	if user != "" {
		fmt.Fprintf(&b, " user %q", user)
	}
	b.WriteString(": ")
	b.WriteString(oneLine(fmt.Sprintf(format, args...)))
	b.WriteByte('\n')
	for _, ln := range strings.Split(strings.TrimRight(stack, "\n"), "\n") {
		if ln != "" {
			b.WriteString("\t" + ln + "\n")
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failure.WriteString(b.String())
}

func oneLine(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(strings.TrimSpace(s), "\r", ""), "\n", " | ")
}

func (l *runLogs) ramRow(cluster, pid int, file string, rss, total int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.ram, "%s,%d,%d,%s,%.1f,%.1f\n", stamp(), cluster, pid, csvField(file), mib(rss), mib(total))
}

func (l *runLogs) timingRow(t *taskRun) {
	r := t.res
	if r == nil {
		r = &Result{}
	}
	status := "done"
	if t.status == TaskFailed {
		status = "failed"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.timing, "%s,%d,%d,%d,%d,%d,%.3f,%.3f,%.1f,%.3f,%.3f,%.3f,%s,%s,%s,%d\n",
		csvField(t.Label()), t.cluster, r.Bytes, r.Rows, r.BadRows, r.Users, r.MapSeconds, r.ReduceSeconds,
		mib(t.peakRSS), r.WorkerMaxSeconds, r.WorkerMeanSeconds, r.Skew(), status, r.Mode, csvField(r.ModeReason), r.BadValues)
}

func csvField(s string) string { return string(output.AppendCSVField(nil, []byte(s))) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }
