package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
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

// reduceClusters are the clusters of the reduce fault tests: two, which
// read the store at the same time, as the run tests use.
const reduceClusters = "1,1"

// needReduce skips a test of mce reduce while the command is missing.
func needReduce(t *testing.T) {
	t.Helper()
	if reduceMissing != "" {
		t.Skip(reduceMissing)
	}
}

// partitioned generates a dataset and partitions it into a store.
func partitioned(t *testing.T, o gen.Options) (*dataset, string) {
	t.Helper()
	d := genData(t, o)
	st := filepath.Join(t.TempDir(), "store")
	r := runCmd(t, mceBin, []string{"--log-level", "warn", "partition", d.dir, "--out", st, "--mem", "16MiB", "--heavy-min-rows", "1000"})
	if r.code != 0 {
		t.Fatalf("partition: exit %d\n%s", r.code, e2etest.Tail(r.stderr, 2000))
	}
	return d, st
}

// heaviest returns the user with the most rows over all files.
func (d *dataset) heaviest() string {
	total := map[string]int64{}
	for _, users := range d.truth {
		for u, x := range users {
			total[u] += x.rows
		}
	}
	best := ""
	for u, n := range total {
		if best == "" || n > total[best] || (n == total[best] && u < best) {
			best = u
		}
	}
	return best
}

func reduceArgs(st, out string, flags ...string) []string {
	return append([]string{"reduce", "--store", st, "--out", out, "--no-progress"}, flags...)
}

// checkReduceSummary checks that a finished reduce run has every task
// done (or skipped by a resume) and none failed.
func checkReduceSummary(t *testing.T, runDir string) {
	t.Helper()
	s := e2etest.ReadSummary(t, runDir)
	if s.Failed != 0 || s.Done+s.Skipped != s.Files {
		t.Errorf("summary: %d tasks, %d done, %d skipped, %d failed", s.Files, s.Done, s.Skipped, s.Failed)
	}
}

// TestKill_reduce SIGKILLs `mce reduce` at seeded random moments (reading
// shards, writing partial outputs, merging them), checks that every
// features file it left is exact, then finishes with --resume (itself
// killed once more on every other point) and checks every file.
func TestKill_reduce(t *testing.T) {
	needReduce(t)
	row := record(t, "SIGKILL of mce at a random moment, then --resume", "reduce")
	d, st := partitioned(t, gen.Options{Seed: 41, Files: 6, Size: gen.Size{Bytes: 16 << 20}, Messy: true})
	flags := []string{"--clusters", reduceClusters, "--poll", "50ms"}
	clean := runCmd(t, mceBin, reduceArgs(st, t.TempDir(), flags...))
	if clean.code != 0 {
		t.Fatalf("clean reduce: exit %d\n%s", clean.code, e2etest.Tail(clean.stderr, 2000))
	}
	if l, du := checkRunOutputs(t, clean.runDir, d); l+du > 0 {
		t.Fatal("clean reduce differs from the truth")
	}
	span := min(clean.took, runCmd(t, mceBin, reduceArgs(st, t.TempDir(), flags...)).took)
	killThenResume(t, row, d, span, killRand(4),
		func(out string) []string { return reduceArgs(st, out, flags...) },
		func(runDir string) []string {
			return append([]string{"reduce", "--resume", runDir, "--no-progress"}, flags...)
		},
		func(_ int, runDir string) { checkReduceSummary(t, runDir) })
}

// The read task that holds the heavy users is named "STORE#... heavy users"
// ("#heavy users" alone, or "#shards 0-255 and 3 heavy users").
var heavyTaskRE = regexp.MustCompile(`file (\S+#[^()\n]*heavy users) \(#(\d+)\) -> cluster 0`)

// TestReduce_clusterFaults kills the cluster reducing the heavy users
// (SIGKILL, and over the RAM limit): the crash or kill is logged with the
// task, the cluster comes back, the task is retried alone and the results
// are exact.
func TestReduce_clusterFaults(t *testing.T) {
	needReduce(t)
	d, st := partitioned(t, gen.Options{Seed: 42, Files: 4, Size: gen.Size{Bytes: 4 << 20}})
	heavy := d.heaviest()

	t.Run("sigkill", func(t *testing.T) {
		row := record(t, "SIGKILL of the cluster process reducing the heavy users", "reduce")
		out := t.TempDir()
		runDir := filepath.Join(out, engine.DefaultJobName+"0")
		b := startBg(t, faultyBin, reduceArgs(st, out, "--clusters", "1", "--poll", "50ms",
			"--param", "slow_user="+heavy, "--param", "slow_ms=400"))
		var task string
		if !waitFor(30*time.Second, func() bool {
			data, _ := os.ReadFile(filepath.Join(runDir, engine.StatusLog))
			if m := heavyTaskRE.FindStringSubmatch(string(data)); m != nil {
				task = m[1]
				return true
			}
			return false
		}) {
			t.Fatalf("the heavy users' task never started:\n%s", e2etest.Tail(b.se.String(), 2000))
		}
		pid := clusterPID(t, runDir, b.cmd.Process.Pid, 0)
		time.Sleep(time.Duration(killRand(5).Int64N(int64(time.Second))))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		r := b.wait(t)
		if r.code != 0 {
			t.Errorf("exit %d\n%s", r.code, e2etest.Tail(r.stderr, 2000))
		}
		failures := e2etest.ReadLog(t, runDir, engine.FailureLog)
		if !strings.Contains(failures, fmt.Sprintf("cluster 0 file %s: cluster crashed (killed by signal 9 (killed))", task)) {
			t.Errorf("failure.log lacks the crash on %s:\n%s", task, failures)
		}
		status := e2etest.ReadLog(t, runDir, engine.StatusLog)
		for _, want := range []string{
			fmt.Sprintf("cluster 0 crashed (pid %d, ", pid),
			"cluster 0 restarted (self-regeneration): pid ",
			fmt.Sprintf("file %s (#", task),
			") -> cluster 0 (retry 1, alone)",
		} {
			if !strings.Contains(status, want) {
				t.Errorf("status.log lacks %q:\n%s", want, status)
			}
		}
		lost, dup := checkRunOutputs(t, runDir, d)
		checkReduceSummary(t, runDir)
		row.add(lost, dup)
		row.notef("crash logged with its task, cluster restarted, task retried alone; results exact")
	})

	t.Run("ram limit", func(t *testing.T) {
		row := record(t, "RAM limit reached by the cluster reducing the heavy users", "reduce")
		r := runCmd(t, faultyBin, reduceArgs(st, t.TempDir(), "--clusters", reduceClusters, "--poll", "50ms", "--ram-limit", "160MiB",
			"--param", "hog_user="+heavy, "--param", "hog_mib=256", "--param", "hog_ms=3000",
			"--param", "hog_once="+filepath.Join(t.TempDir(), "hogged")))
		if r.code != 0 {
			t.Errorf("exit %d\n%s", r.code, e2etest.Tail(r.stderr, 2000))
		}
		failures := e2etest.ReadLog(t, r.runDir, engine.FailureLog)
		killRE := regexp.MustCompile(`^\S+ cluster (\d) file (\S+#[^:\n]*heavy users): killed over the RAM limit: cluster (\d) used [\d.]+ MiB, all clusters [\d.]+ MiB > limit 160.0 MiB\n`)
		m := killRE.FindStringSubmatch(failures)
		if m == nil || m[1] != m[3] {
			t.Fatalf("failure.log does not start with the kill of the heavy users' cluster:\n%s", failures)
		}
		status := e2etest.ReadLog(t, r.runDir, engine.StatusLog)
		if !strings.Contains(status, fmt.Sprintf("file %s (#", m[2])) || !strings.Contains(status, "(retry 1, alone)") {
			t.Errorf("status.log does not retry %s alone:\n%s", m[2], status)
		}
		lost, dup := checkRunOutputs(t, r.runDir, d)
		checkReduceSummary(t, r.runDir)
		row.add(lost, dup)
		row.notef("cluster %s killed, failure.log names it and the task; retried alone; results exact", m[1])
	})

	t.Run("panic and error", func(t *testing.T) {
		row := record(t, "panic and error in the feature function on chosen users", "reduce")
		pf, ef := filepath.Base(d.files[1]), filepath.Base(d.files[2])
		pu, eu := d.userOnlyIn(t, pf, 1), d.userOnlyIn(t, ef, 2)
		r := runCmd(t, faultyBin, reduceArgs(st, t.TempDir(), "--clusters", reduceClusters, "--param", "panic_user="+pu, "--param", "error_user="+eu))
		if r.code != 1 || !strings.HasPrefix(e2etest.LastLine(r.stdout), "2 of 4 files failed") {
			t.Errorf("exit %d, last line %q; want 1, \"2 of 4 files failed\"", r.code, e2etest.LastLine(r.stdout))
		}
		failures := e2etest.ReadLog(t, r.runDir, engine.FailureLog)
		// The file is named as the store knows it, or by its path.
		for _, want := range []string{
			fmt.Sprintf(`(?m) file (\S*/)?%s user %s: panic: faulty: panic on user %s$`, regexp.QuoteMeta(pf), regexp.QuoteMeta(strconv.Quote(pu)), regexp.QuoteMeta(pu)),
			`(?m)^\t\S*/userfeatures\.reduce\(`,
			fmt.Sprintf(`(?m) file (\S*/)?%s user %s: faulty: error on user %s$`, regexp.QuoteMeta(ef), regexp.QuoteMeta(strconv.Quote(eu)), regexp.QuoteMeta(eu)),
		} {
			if !regexp.MustCompile(want).MatchString(failures) {
				t.Errorf("failure.log does not match %q:\n%s", want, failures)
			}
		}
		for _, f := range [][2]string{{pf, pu}, {ef, eu}} {
			re := regexp.MustCompile(`msg="file failed" file=(\S*/)?` + regexp.QuoteMeta(f[0]) + ` .*user=` + regexp.QuoteMeta(f[1]))
			if !re.MatchString(r.stderr) {
				t.Errorf("stderr does not name file %s and user %s", f[0], f[1])
			}
			if exists(filepath.Join(r.runDir, fileid.FeaturesName(f[0]))) {
				t.Errorf("the failed file %s has a features file", f[0])
			}
		}
		var others []string
		for _, f := range d.names() {
			if f != pf && f != ef {
				others = append(others, f)
			}
		}
		lost, dup := checkRunOutputs(t, r.runDir, d, others...)
		checkSummaryHonest(t, r.runDir)
		checkReportReadsAll(t, r.runDir)
		row.add(lost, dup)
		row.notef("failure.log names user and file (panic with its stack); those files fail alone, the others exact")
	})
}

// TestReduce_diskFull runs reduce with its run folder on a full tmpfs, and
// under RLIMIT_FSIZE: a clear error, nothing recorded as done that is not,
// and --resume with space completes exactly.
func TestReduce_diskFull(t *testing.T) {
	needReduce(t)
	d, st := partitioned(t, gen.Options{Seed: 43, Files: 4, Size: gen.Size{Rows: 100_000}, Users: 30_000})

	t.Run("tmpfs", func(t *testing.T) {
		row := record(t, "disk full while writing partial and features files (tmpfs of 8 MiB)", "reduce")
		frees := []int64{600 << 10}
		if full() {
			frees = []int64{8 << 10, 300 << 10, 600 << 10, 1500 << 10}
		}
		diskFullOnTmpfs(t, row, d, frees, "reduce", func(out string, flags ...string) []string {
			return reduceArgs(st, out, flags...)
		})
	})

	t.Run("fsize", func(t *testing.T) {
		row := record(t, "file size limit (RLIMIT_FSIZE) while writing partial and features files", "reduce")
		clean := runCmd(t, mceBin, reduceArgs(st, t.TempDir(), "--clusters", "1"))
		if clean.code != 0 {
			t.Fatalf("clean reduce: exit %d", clean.code)
		}
		limit := limitForTwo(t, clean.runDir, d.files)
		r := runCmd(t, mceBin, reduceArgs(st, t.TempDir(), "--clusters", "1"), withFileSizeLimit(t, limit))
		have := checkFailedHonestly(t, r, r.runDir, d, "file too large")
		again := runCmd(t, mceBin, []string{"reduce", "--resume", r.runDir, "--no-progress"})
		if again.code != 0 {
			t.Fatalf("resume without the limit: exit %d\n%s", again.code, e2etest.Tail(again.stderr, 2000))
		}
		lost, dup := checkRunOutputs(t, r.runDir, d)
		row.add(lost, dup)
		row.notef("limit %d KiB: %d of %d files done, exit %d, \"file too large\" on stderr; --resume exact", limit>>10, len(have), len(d.files), r.code)
	})
}

// TestReduce_badStore gives reduce a store that is missing, has a cut
// manifest, or has a damaged data block: a clear error, never a panic; a
// damaged block must fail the tasks that read it with a corruption error
// (not crash their cluster), and `mce store verify` must report it.
func TestReduce_badStore(t *testing.T) {
	needReduce(t)
	row := record(t, "bad store: missing, manifest cut short, a damaged data block", "reduce")
	d, st := partitioned(t, gen.Options{Seed: 44, Files: 3, Size: gen.Size{Bytes: 4 << 20}})
	copyStore := func() string {
		dst := filepath.Join(t.TempDir(), "store")
		if out, err := execCommand("cp", "-a", st, dst); err != nil {
			t.Fatalf("cp: %v: %s", err, out)
		}
		return dst
	}
	noPanic := func(what string, r result) {
		t.Helper()
		if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") {
			t.Errorf("%s: a panic on stderr:\n%s", what, e2etest.Tail(r.stderr, 2000))
		}
	}

	r := runCmd(t, mceBin, reduceArgs(filepath.Join(t.TempDir(), "none"), t.TempDir()))
	noPanic("missing", r)
	if r.code == 0 || !strings.Contains(e2etest.LastLine(r.stderr), "no store at ") {
		t.Errorf("missing store: exit %d, last stderr line %q", r.code, e2etest.LastLine(r.stderr))
	}

	cut := copyStore()
	man := filepath.Join(cut, "MANIFEST.json")
	b, err := os.ReadFile(man)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(man, b[:len(b)/2], 0o644)
	r = runCmd(t, mceBin, reduceArgs(cut, t.TempDir()))
	noPanic("cut manifest", r)
	if r.code == 0 || !strings.Contains(e2etest.LastLine(r.stderr), "store is corrupt") {
		t.Errorf("cut manifest: exit %d, last stderr line %q", r.code, e2etest.LastLine(r.stderr))
	}

	damaged := copyStore()
	ssts, _ := filepath.Glob(filepath.Join(damaged, "db", "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no sstable in the store")
	}
	sort.Slice(ssts, func(i, j int) bool { return fileSize(ssts[i]) > fileSize(ssts[j]) })
	f, err := os.OpenFile(ssts[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(make([]byte, 64), fileSize(ssts[0])/3)
	f.Close()
	v := runCmd(t, mceBin, []string{"store", "verify", damaged})
	noPanic("verify", v)
	if v.code == 0 || v.code == 70 || !strings.Contains(v.stderr, "checksum mismatch") {
		t.Errorf("store verify of a damaged block: exit %d (70 is pebble's fatal exit); want a reported problem naming the checksum mismatch; last line %q",
			v.code, e2etest.Tail(e2etest.LastLine(v.stderr), 300))
	}
	r = runCmd(t, mceBin, reduceArgs(damaged, t.TempDir(), "--clusters", "1"))
	noPanic("damaged block", r)
	failures := e2etest.ReadLog(t, r.runDir, engine.FailureLog)
	if r.code != 1 || !strings.Contains(failures, "checksum mismatch") {
		t.Errorf("damaged block: exit %d; failure.log does not name the checksum mismatch:\n%s", r.code, e2etest.Tail(failures, 2000))
	}
	if strings.Contains(failures, "cluster crashed") {
		t.Errorf("a damaged block crashed the cluster (pebble's default DataCorruption handler calls Fatalf) instead of failing its task with an error:\n%s",
			e2etest.Tail(firstLines(failures, 3), 1500))
	}
	// The other files' outputs that do not need the damaged block are
	// still exact when present.
	completeOutputs(t, r.runDir, d)
	row.add(0, 0)
	row.notef("missing store, cut manifest: one clear line, exit != 0; damaged block: its tasks fail with the checksum error (no crash), store verify reports it")
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

func execCommand(name string, args ...string) (string, error) {
	out, err := command(name, args).CombinedOutput()
	return string(out), err
}
