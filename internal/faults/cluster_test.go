package faults

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/internal/e2etest"
	"github.com/mce-engine/mce/internal/fileid"
	"github.com/mce-engine/mce/internal/gen"
)

// bg is a command running in the background.
type bg struct {
	bin  string
	cmd  *exec.Cmd
	so   bytes.Buffer
	se   bytes.Buffer
	t0   time.Time
	done chan error
}

func startBg(t *testing.T, bin string, args []string, setup ...func(*exec.Cmd)) *bg {
	t.Helper()
	b := &bg{bin: bin, cmd: command(bin, args, setup...), done: make(chan error, 1)}
	b.cmd.Stdout, b.cmd.Stderr = &b.so, &b.se
	b.t0 = time.Now()
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			b.cmd.Process.Kill()
		}
	})
	return b
}

// wait waits for the command (at most two minutes) and checks that none
// of its processes is left.
func (b *bg) wait(t *testing.T) result {
	t.Helper()
	var err error
	select {
	case err = <-b.done:
	case <-time.After(2 * time.Minute):
		b.cmd.Process.Kill()
		<-b.done
		t.Fatalf("%s did not finish in two minutes\nstderr:\n%s", b.bin, e2etest.Tail(b.se.String(), 3000))
	}
	r := finish(t, b.cmd, err, &b.so, &b.se, b.t0)
	checkNoOrphans(t, b.bin)
	return r
}

// waitLog waits until the log of the run in out contains s.
func (b *bg) waitLog(t *testing.T, runDir, name, s string) {
	t.Helper()
	ok := waitFor(30*time.Second, func() bool {
		data, _ := os.ReadFile(filepath.Join(runDir, name))
		return strings.Contains(string(data), s)
	})
	if !ok {
		data, _ := os.ReadFile(filepath.Join(runDir, name))
		t.Fatalf("%s never said %q:\n%s\nstderr:\n%s", name, s, data, e2etest.Tail(b.se.String(), 2000))
	}
}

var clusterPIDRE = regexp.MustCompile(`cluster (\d+) (?:started|restarted[^:]*): pid (\d+)`)

// clusterPID returns the pid of cluster id's latest process as status.log
// names it, after checking that /proc lists it as a child of parent.
func clusterPID(t *testing.T, runDir string, parent, id int) int {
	t.Helper()
	pid := 0
	for _, m := range clusterPIDRE.FindAllStringSubmatch(e2etest.ReadLog(t, runDir, engine.StatusLog), -1) {
		if m[1] == strconv.Itoa(id) {
			pid, _ = strconv.Atoi(m[2])
		}
	}
	kids := e2etest.Children(parent)
	if pid == 0 || !slices.Contains(kids, pid) {
		t.Fatalf("cluster %d: pid %d from status.log is not among mce's children %v", id, pid, kids)
	}
	return pid
}

// TestKill_cluster SIGKILLs the cluster process working on a file (found
// in /proc as a child of mce): the engine must log the crash, start the
// cluster again, retry the file alone and end with exact results. When
// the retry is killed too, that file alone fails.
func TestKill_cluster(t *testing.T) {
	row := record(t, "SIGKILL of the cluster process working on a file", "run")
	row2 := record(t, "SIGKILL of the cluster process, and again on the retry", "run")
	d := genData(t, gen.Options{Seed: 23, Files: 4, Size: gen.Size{Bytes: 4 << 20}})
	big := d.files[0]
	slow := d.userOnlyIn(t, filepath.Base(big), 1)
	const slowMS = 1500
	rng := killRand(3)
	tries := 1
	if full() {
		tries = 4
	}
	for i := 0; i < tries+1; i++ {
		twice := i == tries // the last try kills the retry as well
		out := t.TempDir()
		runDir := filepath.Join(out, engine.DefaultJobName+"0")
		b := startBg(t, faultyBin, runArgs(d.files, "--out", out, "--no-progress", "--clusters", "1,1", "--poll", "50ms",
			"--param", "slow_user="+slow, "--param", "slow_ms="+strconv.Itoa(slowMS)))
		b.waitLog(t, runDir, engine.StatusLog, fmt.Sprintf("file %s (#0) -> cluster 0", big))
		pid := clusterPID(t, runDir, b.cmd.Process.Pid, 0)
		// While the file is read or its slow user reduced.
		time.Sleep(time.Duration(rng.Int64N(slowMS * 2 / 3 * int64(time.Millisecond))))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if twice {
			b.waitLog(t, runDir, engine.StatusLog, fmt.Sprintf("file %s (#0) -> cluster 0 (retry 1, alone)", big))
			pid2 := clusterPID(t, runDir, b.cmd.Process.Pid, 0)
			if pid2 == pid {
				t.Fatalf("the cluster was not started again: pid %d", pid)
			}
			time.Sleep(200 * time.Millisecond)
			if err := syscall.Kill(pid2, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
		r := b.wait(t)
		status := e2etest.ReadLog(t, runDir, engine.StatusLog)
		failures := e2etest.ReadLog(t, runDir, engine.FailureLog)
		for _, want := range []string{
			fmt.Sprintf("cluster 0 crashed (pid %d, ", pid),
			fmt.Sprintf("file %s (#0) will be retried alone on cluster 0", big),
			"cluster 0 restarted (self-regeneration): pid ",
			fmt.Sprintf("file %s (#0) -> cluster 0 (retry 1, alone)", big),
		} {
			if !strings.Contains(status, want) {
				t.Errorf("try %d: status.log lacks %q:\n%s", i, want, status)
			}
		}
		crashRE := regexp.MustCompile(`(?m)^\S+ cluster 0 file ` + regexp.QuoteMeta(big) + `: cluster crashed \(killed by signal 9 \(killed\)\)`)
		if !crashRE.MatchString(failures) {
			t.Errorf("try %d: failure.log lacks the crash of cluster 0 on %s:\n%s", i, big, failures)
		}
		var lost, dup int64
		if !twice {
			if r.code != 0 {
				t.Errorf("try %d: exit %d\n%s", i, r.code, e2etest.Tail(r.stderr, 2000))
			}
			lost, dup = checkRunOutputs(t, runDir, d)
			row.add(lost, dup)
		} else {
			if r.code != 1 || e2etest.LastLine(r.stdout) != "1 of 4 files failed" {
				t.Errorf("killed twice: exit %d, last line %q; want 1, \"1 of 4 files failed\"", r.code, e2etest.LastLine(r.stdout))
			}
			if !strings.Contains(failures, "file "+big+": file failed: cluster crashed again while running alone") {
				t.Errorf("failure.log does not fail the file killed twice:\n%s", failures)
			}
			if exists(filepath.Join(runDir, fileid.FeaturesName(big))) {
				t.Errorf("the file killed twice has a features file")
			}
			var others []string
			for _, f := range d.files[1:] {
				others = append(others, filepath.Base(f))
			}
			lost, dup = checkRunOutputs(t, runDir, d, others...)
			row2.add(lost, dup)
		}
		checkNoTemps(t, runDir)
		checkSummaryHonest(t, runDir)
		checkReportReadsAll(t, runDir)
		t.Logf("try %d (twice %v): cluster pid %d killed; exit %d; %d rows lost, %d duplicated", i, twice, pid, r.code, lost, dup)
	}
	row.notef("crash logged in failure.log and status.log, cluster restarted, file retried alone; results exact")
	row2.notef("that file alone fails (\"cluster crashed again while running alone\"); the others exact")
}

// TestRAMLimit makes the feature function hold 256 MiB on a user of the
// largest file with --ram-limit 160MiB: the monitor must kill that
// cluster (the heaviest), log cluster and file in failure.log, and retry
// the file alone. When the retry stays under the limit the results are
// exact; when it passes it again, that file alone fails.
func TestRAMLimit(t *testing.T) {
	d := genData(t, gen.Options{Seed: 24, Files: 4, Size: gen.Size{Bytes: 4 << 20}})
	big := d.files[0]
	hog := d.userOnlyIn(t, filepath.Base(big), 1)
	for _, once := range []bool{true, false} {
		name := "retry fits"
		fault := "RAM limit reached by one cluster; the retry fits"
		if !once {
			name = "retry over again"
			fault = "RAM limit reached by one cluster, and again on the retry"
		}
		t.Run(name, func(t *testing.T) {
			row := record(t, fault, "run")
			out := t.TempDir()
			args := runArgs(d.files, "--out", out, "--no-progress", "--clusters", "1,1", "--poll", "50ms",
				"--ram-limit", "160MiB", "--param", "hog_user="+hog, "--param", "hog_mib=256", "--param", "hog_ms=3000")
			if once {
				args = append(args, "--param", "hog_once="+filepath.Join(t.TempDir(), "hogged"))
			}
			r := runCmd(t, faultyBin, args)
			runDir := r.runDir
			failures := e2etest.ReadLog(t, runDir, engine.FailureLog)
			killRE := regexp.MustCompile(`^\S+ cluster 0 file ` + regexp.QuoteMeta(big) +
				`: killed over the RAM limit: cluster 0 used [\d.]+ MiB, all clusters [\d.]+ MiB > limit 160.0 MiB\n`)
			if !killRE.MatchString(failures) {
				t.Fatalf("failure.log does not start with the kill of cluster 0 on %s:\n%s", big, failures)
			}
			status := e2etest.ReadLog(t, runDir, engine.StatusLog)
			for _, want := range []string{
				"cluster 0 killed (pid ",
				"cluster 0 restarted (self-regeneration)",
				fmt.Sprintf("file %s (#0) -> cluster 0 (retry 1, alone)", big),
			} {
				if !strings.Contains(status, want) {
					t.Errorf("status.log lacks %q:\n%s", want, status)
				}
			}
			var lost, dup int64
			if once {
				if r.code != 0 {
					t.Errorf("exit %d\n%s", r.code, e2etest.Tail(r.stderr, 2000))
				}
				lost, dup = checkRunOutputs(t, runDir, d)
				row.notef("cluster 0 killed and logged with its file, restarted, file retried alone; results exact")
			} else {
				if r.code != 1 || e2etest.LastLine(r.stdout) != "1 of 4 files failed" {
					t.Errorf("exit %d, last line %q; want 1, \"1 of 4 files failed\"", r.code, e2etest.LastLine(r.stdout))
				}
				if !strings.Contains(failures, "file "+big+": file failed: killed over the RAM limit again while running alone") {
					t.Errorf("failure.log does not fail the file:\n%s", failures)
				}
				if exists(filepath.Join(runDir, fileid.FeaturesName(big))) {
					t.Error("the failed file has a features file")
				}
				var others []string
				for _, f := range d.files[1:] {
					others = append(others, filepath.Base(f))
				}
				lost, dup = checkRunOutputs(t, runDir, d, others...)
				row.notef("killed twice: that file alone fails, named in failure.log; the others exact")
			}
			checkNoTemps(t, runDir)
			checkSummaryHonest(t, runDir)
			checkReportReadsAll(t, runDir)
			row.add(lost, dup)
		})
	}
}

// TestFeatureFaults runs the faulty features binary with a panic on one
// user and an error on another, each found in one file only: failure.log
// and stderr must name user and file (with the panic's stack in
// failure.log), those two files fail without a features file, and the
// other files are exact.
func TestFeatureFaults(t *testing.T) {
	row := record(t, "panic and error in the feature function on chosen users", "run")
	d := genData(t, gen.Options{Seed: 25, Files: 4, Size: gen.Size{Bytes: 2 << 20}})
	picks := [][2]int{{1, 2}}
	if full() {
		picks = append(picks, [2]int{0, 3}, [2]int{3, 1})
	}
	for _, p := range picks {
		pf, ef := d.files[p[0]], d.files[p[1]]
		pu := d.userOnlyIn(t, filepath.Base(pf), 1)
		eu := d.userOnlyIn(t, filepath.Base(ef), 2)
		r := runCmd(t, faultyBin, runArgs(d.files, "--out", t.TempDir(), "--no-progress", "--clusters", "1,1",
			"--param", "panic_user="+pu, "--param", "error_user="+eu))
		if r.code != 1 || e2etest.LastLine(r.stdout) != "2 of 4 files failed" {
			t.Errorf("exit %d, last line %q; want 1, \"2 of 4 files failed\"", r.code, e2etest.LastLine(r.stdout))
		}
		failures := e2etest.ReadLog(t, r.runDir, engine.FailureLog)
		for _, want := range []string{
			fmt.Sprintf("file %s user %q: panic: faulty: panic on user %s\n", pf, pu, pu),
			"/userfeatures.reduce(",
			fmt.Sprintf("file %s user %q: faulty: error on user %s\n", ef, eu, eu),
		} {
			if !strings.Contains(failures, want) {
				t.Errorf("failure.log lacks %q:\n%s", want, failures)
			}
		}
		for _, f := range [][2]string{{pf, pu}, {ef, eu}} {
			want := fmt.Sprintf(`msg="file failed" file=%s cluster=`, f[0])
			if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, fmt.Sprintf("user=%s", f[1])) {
				t.Errorf("stderr does not name file %s and user %s:\n%s", f[0], f[1], e2etest.Tail(r.stderr, 2000))
			}
			if exists(filepath.Join(r.runDir, fileid.FeaturesName(f[0]))) {
				t.Errorf("the failed file %s has a features file", f[0])
			}
		}
		var others []string
		for _, f := range d.files {
			if f != pf && f != ef {
				others = append(others, filepath.Base(f))
			}
		}
		lost, dup := checkRunOutputs(t, r.runDir, d, others...)
		checkSummaryHonest(t, r.runDir)
		checkReportReadsAll(t, r.runDir)
		row.add(lost, dup)
	}
	row.notef("failure.log names user and file (panic with its stack); those files fail alone, the others exact")
}

// TestRAMLimit_idleClusterHolds has cluster 1 pass the RAM limit while
// cluster 0 sits idle holding the memory of its last files (fifo: cluster 0
// takes the largest file and then the small ones while cluster 1 is slowed
// down on one user): the idle cluster is asked for its memory before the
// busy one is killed, and stopped before the file runs again alone.
func TestRAMLimit_idleClusterHolds(t *testing.T) {
	row := record(t, "retry alone with an idle cluster holding memory", "run")
	d := genData(t, gen.Options{Seed: 30, Files: 4, Size: gen.Size{Bytes: 48 << 20}})
	hogFile := d.files[1] // cluster 1's first file under fifo
	base := filepath.Base(hogFile)
	var slow, hog string
	for u, x := range d.truth[base] {
		alone := true
		for f, users := range d.truth {
			if _, ok := users[u]; ok && f != base {
				alone = false
			}
		}
		if !alone {
			continue
		}
		if slow == "" || x.rows > d.truth[base][slow].rows {
			slow = u // reduced first on one CPU: cluster 1 is busy while cluster 0 finishes
		}
		if hog == "" || x.rows < d.truth[base][hog].rows {
			hog = u // reduced last
		}
	}
	r := runCmd(t, faultyBin, runArgs(d.files, "--out", t.TempDir(), "--no-progress", "--clusters", "1,1", "--queue", "fifo",
		"--poll", "20ms", "--ram-limit", "200MiB", "--param", "slow_user="+slow, "--param", "slow_ms=1500",
		"--param", "hog_user="+hog, "--param", "hog_once="+filepath.Join(t.TempDir(), "hogged")))
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, e2etest.Tail(r.stderr, 2000))
	}
	status := e2etest.ReadLog(t, r.runDir, engine.StatusLog)
	at := func(s string) int {
		i := strings.Index(status, s)
		if i < 0 {
			t.Errorf("status.log lacks %q:\n%s", s, status)
		}
		return i
	}
	asked, killed := at("cluster 0 (idle, "), at("cluster 1 killed (pid ")
	stopped, alone := at("cluster 0 stopped (pid "), at(fmt.Sprintf("file %s (#1) -> cluster 1 (retry 1, alone)", hogFile))
	if !t.Failed() && !(asked < killed && killed < stopped && stopped < alone) {
		t.Errorf("want: idle cluster asked, busy one killed, idle one stopped, retry alone; got %d %d %d %d", asked, killed, stopped, alone)
	}
	lost, dup := checkRunOutputs(t, r.runDir, d)
	checkNoTemps(t, r.runDir)
	checkReportReadsAll(t, r.runDir)
	row.add(lost, dup)
	row.notef("idle cluster asked for its memory first, busy one killed, idle one stopped for the retry alone; exact")
}
