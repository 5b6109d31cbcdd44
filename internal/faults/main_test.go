package faults

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mce-engine/mce/internal/e2etest"
)

var (
	fullFlag  = flag.Bool("faults.full", false, "run the full fault suite (also MCE_FAULTS=full) and print its table")
	tableFlag = flag.String("faults.table", "", "write the table of faults tried to `FILE` (markdown)")
	seedFlag  = flag.Uint64("faults.seed", 1, "seed of the random kill moments")
)

// fsizeEnv makes the test binary a wrapper: it sets RLIMIT_FSIZE to the
// variable's value and execs its arguments (see withFileSizeLimit).
const fsizeEnv = "MCE_FAULTS_FSIZE"

// The binaries under test, built once by TestMain: mce itself, mce built
// with the tag faultinject (its input reads fail where MCE_FAULT_READ
// says, see csvread.FaultReadEnv) and the faulty features binary
// (internal/e2etest/testdata/faulty). binDir holds them.
var (
	mceBin      string
	mceFaultBin string
	faultyBin   string
	binDir      string
	// reduceMissing says why `mce reduce` cannot be tested ("" when it
	// can): its tests skip with this message.
	reduceMissing string
)

// full reports whether the full version of the suite runs.
func full() bool { return *fullFlag || os.Getenv("MCE_FAULTS") == "full" }

// points is how many random kill moments a command gets.
func points() int {
	if full() {
		return 20
	}
	return 3
}

func TestMain(m *testing.M) {
	if v := os.Getenv(fsizeEnv); v != "" {
		execWithFileSizeLimit(v)
		return // not reached
	}
	if v := os.Getenv(ioChildEnv); v != "" {
		ioChild(v)
		return // not reached
	}
	flag.Parse()
	if testing.Short() {
		fmt.Println("faults: skipped with -short (end-to-end tests of the built binary)")
		os.Exit(0)
	}
	t0 := time.Now()
	os.Exit(e2etest.Main("mce-faults-bin-", map[string]string{"mce": "../../cmd/mce", "faulty": "../e2etest/testdata/faulty/f.go"},
		func(dir string, bins map[string]string) int {
			binDir, mceBin, faultyBin = dir, bins["mce"], bins["faulty"]
			mceFaultBin = filepath.Join(dir, "mce-faultinject")
			if out, err := exec.Command("go", "build", "-tags", "faultinject", "-o", mceFaultBin, "../../cmd/mce").CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "go build -tags faultinject: %v\n%s", err, out)
				return 1
			}
			built := time.Since(t0)
			if out, err := exec.Command(mceBin, "reduce", "--help").CombinedOutput(); err != nil {
				line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
				reduceMissing = fmt.Sprintf("the mce reduce command is missing (`mce reduce --help`: %v: %s)", err, line)
			}
			t1 := time.Now()
			code := m.Run()
			mode := "short"
			if full() {
				mode = "full"
			}
			tbl := faultTable.markdown(fmt.Sprintf("Mode %s, seed %d, %s; binaries built in %.1f s, tests ran %.1f s.",
				mode, *seedFlag, time.Now().UTC().Format("2006-01-02"), built.Seconds(), time.Since(t1).Seconds()))
			// With -faults.table the caller shows the file (make faults does);
			// go test hides a passing package's output anyway.
			if full() && *tableFlag == "" {
				fmt.Print(tbl)
			}
			if *tableFlag != "" {
				if err := os.WriteFile(*tableFlag, []byte(tbl), 0o644); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return 1
				}
			}
			return code
		}))
}

// execWithFileSizeLimit is the wrapper mode of the test binary: it caps
// the size of every file the command writes (RLIMIT_FSIZE; Go ignores
// SIGXFSZ, so writes past the cap fail with EFBIG) and becomes the command.
func execWithFileSizeLimit(v string) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || len(os.Args) < 2 {
		fmt.Fprintf(os.Stderr, "%s=%q: want a byte count and a command\n", fsizeEnv, v)
		os.Exit(2)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		fmt.Fprintf(os.Stderr, "setrlimit: %v\n", err)
		os.Exit(2)
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, fsizeEnv+"=") {
			env = append(env, e)
		}
	}
	err = syscall.Exec(os.Args[1], os.Args[1:], env)
	fmt.Fprintf(os.Stderr, "exec %s: %v\n", os.Args[1], err)
	os.Exit(2)
}

// faultRow is one line of the table: a fault tried on a command.
type faultRow struct {
	fault, command string
	test           string // the name of the test that records it
	tries          int
	lost, dup      int64
	orphans        int // processes left running after a command
	result         string
	note           string
}

type table struct {
	mu   sync.Mutex
	rows []*faultRow
}

// faultTable collects what the tests tried, for the table TestMain
// prints. It is the only package-level mutable state, and test-only.
var faultTable = &table{}

// record adds a row to the table for the test t; the test fills in tries,
// lost and dup, and the row's result is set from t's outcome when t ends.
func record(t *testing.T, fault, command string) *faultRow {
	t.Helper()
	r := &faultRow{fault: fault, command: command, test: t.Name()}
	faultTable.mu.Lock()
	faultTable.rows = append(faultTable.rows, r)
	faultTable.mu.Unlock()
	t.Cleanup(func() {
		faultTable.mu.Lock()
		defer faultTable.mu.Unlock()
		switch {
		case t.Failed():
			r.result = "FAIL"
		case t.Skipped():
			r.result = "skipped"
		case r.tries == 0:
			r.result = "not tried"
		default:
			r.result = "ok"
		}
	})
	return r
}

// add counts one try with its lost and duplicated rows.
func (r *faultRow) add(lost, dup int64) {
	faultTable.mu.Lock()
	defer faultTable.mu.Unlock()
	r.tries++
	r.lost += lost
	r.dup += dup
}

// addOrphans counts n processes that the test named test (or one of its
// subtests) left running: on the row of that test, else of its parent,
// else of its first subtest.
func (tb *table) addOrphans(test string, n int) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var best *faultRow
	for _, r := range tb.rows {
		if (r.test == test || strings.HasPrefix(test, r.test+"/")) && (best == nil || len(r.test) > len(best.test)) {
			best = r
		}
	}
	for _, r := range tb.rows {
		if best == nil && strings.HasPrefix(r.test, test+"/") {
			best = r
		}
	}
	if best != nil {
		best.orphans += n
	}
}

// checkNoOrphans fails the test if a process of one of bins still runs
// three seconds after its command ended (zombies are fine), kills it and
// counts it in the table (the "orphan processes" column).
func checkNoOrphans(t *testing.T, bins ...string) {
	t.Helper()
	var live []int
	waitFor(3*time.Second, func() bool {
		live = live[:0]
		for _, b := range bins {
			if b != "" {
				live = append(live, e2etest.LiveProcs(b)...)
			}
		}
		return len(live) == 0
	})
	if len(live) == 0 {
		return
	}
	for _, pid := range live {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	faultTable.addOrphans(t.Name(), len(live))
	t.Errorf("processes still running after the command: %v", live)
}

// notef sets the row's note (what happened, in a few words).
func (r *faultRow) notef(format string, args ...any) {
	faultTable.mu.Lock()
	defer faultTable.mu.Unlock()
	r.note = fmt.Sprintf(format, args...)
}

func (tb *table) markdown(caption string) string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", caption)
	b.WriteString("| fault | command | times tried | rows lost | rows duplicated | orphan processes | result | what happened |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---|---|\n")
	for _, r := range tb.rows {
		res := r.result
		if res == "" {
			res = "running"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %s | %s |\n", r.fault, r.command, r.tries, r.lost, r.dup, r.orphans, res,
			strings.ReplaceAll(r.note, "|", `\|`))
	}
	return b.String()
}
