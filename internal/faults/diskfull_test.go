package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/internal/e2etest"
	"github.com/mce-engine/mce/internal/fileid"
	"github.com/mce-engine/mce/internal/gen"
)

// mountTmpfs mounts a tmpfs of the given size (e.g. "8m") on a new folder
// and unmounts it when the test ends. It returns the reason instead when
// mounting is not permitted (not root, or no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size string) (dir, why string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		return "", fmt.Sprintf("mount -t tmpfs is not permitted here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir, ""
}

// remount changes the size of the tmpfs at dir.
func remount(t *testing.T, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,size="+size, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s size=%s: %v: %s", dir, size, err, out)
	}
}

func statfs(t *testing.T, dir string) (free, used int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks-st.Bfree) * st.Bsize
}

// fill writes a filler file into dir that leaves about free bytes free.
func fill(t *testing.T, dir string, free int64) string {
	t.Helper()
	have, _ := statfs(t, dir)
	path := filepath.Join(dir, "filler")
	if err := os.WriteFile(path, make([]byte, max(have-free, 0)), 0o644); err != nil {
		t.Fatalf("fill %s: %v", dir, err)
	}
	return path
}

// withFileSizeLimit runs the command through the test binary in wrapper
// mode, which sets RLIMIT_FSIZE to n bytes before it execs the command.
func withFileSizeLimit(t *testing.T, n int64) func(*exec.Cmd) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return func(c *exec.Cmd) {
		c.Args = append([]string{self}, c.Args...)
		c.Path = self
		c.Env = append(os.Environ(), fmt.Sprintf("%s=%d", fsizeEnv, n))
	}
}

// checkFailedHonestly checks a run that failed for lack of space: a clear
// error on stderr, exit status not 0, every features file there exact,
// no temporary file, a summary that calls nothing done that is not; every
// input without a features file is named on stderr with the error.
// It returns the inputs done.
func checkFailedHonestly(t *testing.T, r result, runDir string, d *dataset, errText string) []string {
	t.Helper()
	if r.code == 0 {
		t.Errorf("exit 0 although writes failed with %q", errText)
	}
	if !strings.Contains(r.stderr, errText) {
		t.Errorf("stderr does not say %q:\n%s", errText, e2etest.Tail(r.stderr, 2000))
	}
	if runDir == "" || !exists(runDir) {
		return nil
	}
	have := completeOutputs(t, runDir, d)
	checkNoTemps(t, runDir)
	checkSummaryHonest(t, runDir)
	for _, f := range d.files {
		if slices.Contains(have, filepath.Base(f)) {
			continue
		}
		if !strings.Contains(r.stderr, `msg="file failed" file=`+f) && !strings.Contains(r.stderr, "mce: ") {
			t.Errorf("%s has no features file and stderr does not say why", f)
		}
	}
	return have
}

// diskData is a dataset whose features files are large (many users):
// about half a MB each.
func diskData(t *testing.T, seed uint64) *dataset {
	return genData(t, gen.Options{Seed: seed, Files: 4, Size: gen.Size{Rows: 100_000}, Users: 30_000})
}

// TestDiskFull_run runs mce with its run folder on a tmpfs of 8 MiB that
// a filler leaves only a little free: the features files that do not fit
// fail with "no space left on device", nothing is recorded as done that
// is not, and --resume after the tmpfs is made larger completes exactly.
func TestDiskFull_run(t *testing.T) {
	row := record(t, "disk full while writing features files (tmpfs of 8 MiB)", "run")
	d := diskData(t, 26)
	frees := []int64{600 << 10}
	if full() {
		frees = []int64{8 << 10, 64 << 10, 300 << 10, 600 << 10, 1100 << 10}
	}
	diskFullOnTmpfs(t, row, d, frees, "run", func(out string, flags ...string) []string {
		return runArgs(d.files, append([]string{"--out", out, "--no-progress"}, flags...)...)
	})
}

// diskFullOnTmpfs runs mce cmd ("run" or "reduce", args giving a fresh
// job that writes into out) once per free: with its run folder on an 8 MiB
// tmpfs that has free bytes left, it must fail honestly ("no space left on
// device", nothing recorded as done that is not); then the tmpfs grows and
// --resume (or a fresh job, when the first never wrote its plan) must
// complete exactly.
func diskFullOnTmpfs(t *testing.T, row *faultRow, d *dataset, frees []int64, cmd string, args func(out string, flags ...string) []string) {
	var notes []string
	for _, free := range frees {
		mnt, why := mountTmpfs(t, "8m")
		if why != "" {
			row.notef("not tried: %s; see the RLIMIT_FSIZE rows", why)
			t.Skip(why)
		}
		filler := fill(t, mnt, free)
		out := filepath.Join(mnt, "out")
		r := runCmd(t, mceBin, args(out, "--clusters", "1"))
		runDir := r.runDir
		if runDir == "" {
			runDir = filepath.Join(out, engine.DefaultJobName+"0")
		}
		have := checkFailedHonestly(t, r, runDir, d, "no space left on device")
		os.Remove(filler)
		remount(t, mnt, "64m")
		var again result
		if exists(filepath.Join(runDir, engine.PlanJSON)) {
			again = runCmd(t, mceBin, []string{cmd, "--resume", runDir, "--no-progress"})
		} else {
			again = runCmd(t, mceBin, args(out))
			runDir = again.runDir
		}
		if again.code != 0 {
			t.Fatalf("with space again: exit %d\n%s", again.code, e2etest.Tail(again.stderr, 2000))
		}
		lost, dup := checkRunOutputs(t, runDir, d)
		checkNoTemps(t, runDir)
		row.add(lost, dup)
		notes = append(notes, fmt.Sprintf("%d KiB free: %d of %d done, exit %d", free>>10, len(have), len(d.files), r.code))
		t.Logf("%d KiB free: exit %d, %d files done; last stderr line %q", free>>10, r.code, len(have), e2etest.LastLine(r.stderr))
	}
	row.notef("%s; clear error, then --resume with space exact", strings.Join(notes, "; "))
}

// TestDiskFull_partition runs partition into a store on tmpfs of several
// sizes, so that space runs out while spilling, merging or ingesting:
// a clear error, exit status 1, a store that still opens and records only
// files it holds exactly; a rerun with space completes it. It also fills
// the disk while new files are added to a store that holds two already:
// those two must stay intact.
func TestDiskFull_partition(t *testing.T) {
	row := record(t, "disk full while writing the store (small tmpfs)", "partition")
	d := diskData(t, 27)
	sizes := []string{"8m", "12m"}
	if full() {
		sizes = []string{"6m", "8m", "10m", "11m", "12m", "13m", "14m", "14608k", "15m", "15872k", "16m"}
	}
	args := func(in, st string) []string {
		return []string{"--log-level", "warn", "partition", in, "--out", st, "--mem", "16MiB", "--cpus", "2"}
	}
	var notes []string
	for _, size := range sizes {
		mnt, why := mountTmpfs(t, size)
		if why != "" {
			row.notef("not tried: %s; see the RLIMIT_FSIZE rows", why)
			t.Skip(why)
		}
		st := filepath.Join(mnt, "store")
		r := runCmd(t, mceBin, args(d.dir, st))
		stage := "fit"
		if r.code == 0 {
			checkStore(t, st, d, d.names())
		} else {
			stage = failedStage(r.stderr)
			if !strings.Contains(r.stderr, "no space left on device") {
				t.Errorf("%s: stderr does not say \"no space left on device\":\n%s", size, e2etest.Tail(r.stderr, 2000))
			}
			got, _, _ := checkStore(t, st, d, nil)
			stage += fmt.Sprintf(" (%d files kept)", len(got))
			remount(t, mnt, "64m")
			if again := runCmd(t, mceBin, args(d.dir, st)); again.code != 0 {
				t.Fatalf("%s: rerun with space: exit %d\n%s", size, again.code, e2etest.Tail(again.stderr, 2000))
			}
		}
		_, lost, dup := checkStore(t, st, d, d.names())
		row.add(lost, dup)
		notes = append(notes, size+": "+stage)
		t.Logf("tmpfs %s: %s", size, stage)
	}

	// Incremental: two files in, then the disk fills while two more are
	// added.
	mnt, _ := mountTmpfs(t, "64m")
	part := filepath.Join(filepath.Dir(d.dir), "part")
	if err := os.Mkdir(part, 0o755); err != nil {
		t.Fatal(err)
	}
	names := d.names()
	sort.Strings(names)
	link := func(n string) {
		if err := os.Link(filepath.Join(d.dir, n), filepath.Join(part, n)); err != nil {
			t.Fatal(err)
		}
	}
	link(names[0])
	link(names[1])
	st := filepath.Join(mnt, "store")
	if r := runCmd(t, mceBin, args(part, st)); r.code != 0 {
		t.Fatalf("first two files: exit %d\n%s", r.code, r.stderr)
	}
	_, used := statfs(t, mnt)
	remount(t, mnt, fmt.Sprintf("%dk", (used+(2<<20))>>10))
	link(names[2])
	link(names[3])
	r := runCmd(t, mceBin, args(part, st))
	if r.code == 0 {
		t.Errorf("adding two files with 2 MiB free: exit 0")
	}
	got, _, _ := checkStore(t, st, d, nil)
	if !slices.Contains(got, names[0]) || !slices.Contains(got, names[1]) {
		t.Errorf("after the disk filled the store records %v; the first two files must stay", got)
	}
	remount(t, mnt, "64m")
	if again := runCmd(t, mceBin, args(part, st)); again.code != 0 {
		t.Fatalf("incremental rerun with space: exit %d\n%s", again.code, e2etest.Tail(again.stderr, 2000))
	}
	_, lost, dup := checkStore(t, st, d, d.names())
	row.add(lost, dup)
	notes = append(notes, fmt.Sprintf("adding 2 files to 2 with 2 MiB free: %s, %d files kept", failedStage(r.stderr), len(got)))
	row.notef("%s; every rerun with space exact", strings.Join(notes, "; "))
}

// failedStage names the step of partition that an error message blames.
func failedStage(stderr string) string {
	line := e2etest.LastLine(stderr)
	for _, s := range []string{"sort", "write run", "merge", "ingest", "manifest", "flush", "compact"} {
		if strings.Contains(line, s) {
			return "failed in " + s
		}
	}
	return "failed: " + e2etest.Tail(line, 80)
}

// limitForTwo returns a file size limit between the second and third
// largest features files of the clean run in runDir: the two largest do
// not fit, the others do.
func limitForTwo(t *testing.T, runDir string, files []string) int64 {
	t.Helper()
	var sizes []int64
	for _, f := range files {
		st, err := os.Stat(filepath.Join(runDir, fileid.FeaturesName(f)))
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, st.Size())
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] > sizes[j] })
	return (sizes[1] + sizes[2]) / 2
}

// TestFileSizeLimit is the disk-full case without a mount: RLIMIT_FSIZE
// on mce (inherited by its clusters) makes every write past the limit
// fail with EFBIG. The features files over the limit fail with "file too
// large", the others are exact, and --resume without the limit finishes
// the run; partition fails with a clear error, keeps its store honest, and
// a rerun completes it.
func TestFileSizeLimit(t *testing.T) {
	d := diskData(t, 28)
	t.Run("run", func(t *testing.T) {
		row := record(t, "file size limit (RLIMIT_FSIZE) while writing features files", "run")
		clean := runCmd(t, mceBin, runArgs(d.files, "--out", t.TempDir(), "--no-progress", "--clusters", "1"))
		if clean.code != 0 {
			t.Fatalf("clean run: exit %d", clean.code)
		}
		limit := limitForTwo(t, clean.runDir, d.files)
		out := t.TempDir()
		r := runCmd(t, mceBin, runArgs(d.files, "--out", out, "--no-progress", "--clusters", "1"), withFileSizeLimit(t, limit))
		have := checkFailedHonestly(t, r, r.runDir, d, "file too large")
		if len(have) != 2 || r.code != 1 || e2etest.LastLine(r.stdout) != "2 of 4 files failed" {
			t.Errorf("limit %d: %d files done, exit %d, last line %q; want 2, 1, \"2 of 4 files failed\"", limit, len(have), r.code, e2etest.LastLine(r.stdout))
		}
		failures := e2etest.ReadLog(t, r.runDir, engine.FailureLog)
		for _, f := range d.files {
			if !slices.Contains(have, filepath.Base(f)) && !strings.Contains(failures, "file "+f+": write ") {
				t.Errorf("failure.log does not name %s:\n%s", f, failures)
			}
		}
		again := runCmd(t, mceBin, []string{"run", "--resume", r.runDir, "--no-progress"})
		if again.code != 0 {
			t.Fatalf("resume without the limit: exit %d\n%s", again.code, e2etest.Tail(again.stderr, 2000))
		}
		lost, dup := checkRunOutputs(t, r.runDir, d)
		row.add(lost, dup)
		row.notef("limit %d KiB: the 2 larger features files fail with \"file too large\", named in failure.log; --resume exact", limit>>10)
	})
	t.Run("partition", func(t *testing.T) {
		row := record(t, "file size limit (RLIMIT_FSIZE) while writing the store", "partition")
		limits := []int64{1 << 20}
		if full() {
			limits = []int64{64 << 10, 1 << 20, 4 << 20}
		}
		var notes []string
		for _, limit := range limits {
			st := filepath.Join(t.TempDir(), "store")
			args := []string{"--log-level", "warn", "partition", d.dir, "--out", st, "--mem", "16MiB", "--cpus", "2"}
			r := runCmd(t, mceBin, args, withFileSizeLimit(t, limit))
			stage := "fit"
			if r.code == 0 {
				checkStore(t, st, d, d.names())
			} else {
				stage = failedStage(r.stderr)
				if !strings.Contains(r.stderr, "file too large") {
					t.Errorf("limit %d: stderr does not say \"file too large\":\n%s", limit, e2etest.Tail(r.stderr, 2000))
				}
				checkStore(t, st, d, nil)
				if again := runCmd(t, mceBin, args); again.code != 0 {
					t.Fatalf("rerun without the limit: exit %d\n%s", again.code, e2etest.Tail(again.stderr, 2000))
				}
			}
			_, lost, dup := checkStore(t, st, d, d.names())
			row.add(lost, dup)
			notes = append(notes, fmt.Sprintf("%d KiB: %s", limit>>10, stage))
		}
		row.notef("%s; reruns exact", strings.Join(notes, "; "))
	})
}
