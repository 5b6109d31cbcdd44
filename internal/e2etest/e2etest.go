// Package e2etest holds what the end-to-end tests of several packages
// share: building the binaries under test once, reading a run folder, and
// checking that no process of a binary outlives its run. It is imported by
// tests only.
package e2etest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/internal/fbuild"
)

// Main is the body of a TestMain: it builds every package of pkgs (name ->
// import path or directory, as `go build` takes it, or a features file
// ending in .go, built into a features binary as `--features` builds it)
// into a new temporary folder, readable by all (a test may run a binary as another user), calls
// run with the folder and the binaries' paths by name (run calls m.Run),
// removes the folder and returns run's exit code, for os.Exit.
func Main(prefix string, pkgs map[string]string, run func(dir string, bins map[string]string) int) int {
	dir, err := os.MkdirTemp("", prefix)
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bins := make(map[string]string, len(pkgs))
	for name, pkg := range pkgs {
		bin := filepath.Join(dir, name)
		if strings.HasSuffix(pkg, ".go") {
			err = buildFeatures(pkg, bin, filepath.Join(dir, "cache"))
		} else if out, berr := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); berr != nil {
			err = fmt.Errorf("go build %s: %w\n%s", pkg, berr, out)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		bins[name] = bin
	}
	return run(dir, bins)
}

// buildFeatures builds the features file path into the binary bin with
// package fbuild, from this checkout's source.
func buildFeatures(path, bin, cache string) error {
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("find the module: %w", err)
	}
	os.Setenv("MCE_SOURCE", filepath.Dir(strings.TrimSpace(string(root))))
	exe, err := fbuild.Build(context.Background(), path, fbuild.Options{CacheDir: cache})
	if err != nil {
		return fmt.Errorf("build %s: %w", path, err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		return err
	}
	return os.WriteFile(bin, b, 0o755)
}

// Result is what a finished command printed and how it ended.
type Result struct {
	Stdout, Stderr string
	Code           int    // exit status
	RunDir         string // from the "run folder: DIR" line, if any
}

var runFolderRE = regexp.MustCompile(`(?m)^run folder: (.*)$`)

// Run runs bin with args to completion (at most two minutes), logs its
// output when it fails or the test is verbose, and checks that it leaves
// no process of bin behind.
func Run(t testing.TB, bin string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := Result{Stdout: so.String(), Stderr: se.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("run %s: %v", bin, err)
	}
	if m := runFolderRE.FindStringSubmatch(r.Stdout); m != nil {
		r.RunDir = m[1]
	}
	if r.Code != 0 || testing.Verbose() {
		t.Logf("%s %s: exit %d\nstdout:\n%s\nstderr (tail):\n%s", filepath.Base(bin), strings.Join(args, " "), r.Code, r.Stdout, Tail(r.Stderr, 3000))
	}
	CheckNoOrphans(t, bin)
	return r
}

// Tail returns the last n bytes of s, marked when cut.
func Tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// LastLine returns the last line of s.
func LastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// ReadLog returns a file of a run folder.
func ReadLog(t testing.TB, runDir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// LogLines returns the lines of a file of a run folder.
func LogLines(t testing.TB, runDir, name string) []string {
	t.Helper()
	return strings.Split(strings.TrimRight(ReadLog(t, runDir, name), "\n"), "\n")
}

// ReadSummary reads a run folder's summary.json.
func ReadSummary(t testing.TB, runDir string) *engine.Summary {
	t.Helper()
	s := &engine.Summary{}
	if err := json.Unmarshal([]byte(ReadLog(t, runDir, engine.SummaryJSON)), s); err != nil {
		t.Fatalf("%s: %v", engine.SummaryJSON, err)
	}
	return s
}

// Proc is one process, as /proc shows it.
type Proc struct {
	PID, PPID int
	State     string // "R", "S", "Z" (zombie) ...
	Exe       string // the executable's path
}

// Procs reads every process from /proc.
func Procs() []Proc {
	ents, _ := os.ReadDir("/proc")
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

// readProc reads one process from /proc; false when it is gone.
func readProc(pid int) (Proc, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Proc{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces and parentheses
	if i < 0 {
		return Proc{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return Proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return Proc{PID: pid, PPID: ppid, State: f[0], Exe: strings.TrimSuffix(exe, " (deleted)")}, true
}

// ProcState returns the state letter of pid ("Z" for a zombie), or "" when
// there is no such process.
func ProcState(pid int) string {
	p, _ := readProc(pid)
	return p.State
}

// LiveProcs lists the running processes (zombies aside) whose executable
// is bin.
func LiveProcs(bin string) []int {
	var pids []int
	for _, p := range Procs() {
		if p.Exe == bin && p.State != "Z" {
			pids = append(pids, p.PID)
		}
	}
	return pids
}

// Children lists the live child processes of pid.
func Children(pid int) []int {
	var out []int
	for _, p := range Procs() {
		if p.PPID == pid && p.State != "Z" {
			out = append(out, p.PID)
		}
	}
	return out
}

// CheckNoOrphans fails the test if a process of bin still runs three
// seconds after its run ended (zombies are fine), and kills it.
func CheckNoOrphans(t testing.TB, bin string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		live := LiveProcs(bin)
		if len(live) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range live {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Errorf("processes of %s still running after the run: %v", filepath.Base(bin), live)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
