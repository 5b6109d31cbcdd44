package faults

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/internal/e2etest"
	"github.com/mce-engine/mce/internal/gen"
)

// killRand is the source of the kill moments of one test: seeded by
// -faults.seed and the test's own stream, so that a failure can be
// replayed.
func killRand(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(*seedFlag, stream))
}

// The kill tests time two clean runs and take the faster as the span
// the kill moments are drawn from (the first run pays for cold caches).

// moment picks kill moment i of n in [0, span), stratified: the i-th
// falls in the i-th n-th of span, so that a few points still cover the
// start, the middle and the end of a command.
func moment(r *rand.Rand, span time.Duration, i, n int) time.Duration {
	return time.Duration((float64(i) + r.Float64()) / float64(n) * float64(span))
}

func runArgs(files []string, flags ...string) []string {
	return append(append([]string{"run"}, files...), flags...)
}

// TestKill_run SIGKILLs `mce run` at seeded random moments. What it leaves
// must be honest (every features file there is exact, no cluster process
// survives); --resume (itself killed once more on every other point) then
// finishes the run, and every file must match the truth.
func TestKill_run(t *testing.T) {
	row := record(t, "SIGKILL of mce at a random moment, then --resume", "run")
	d := genData(t, gen.Options{Seed: 21, Files: 6, Size: gen.Size{Bytes: 16 << 20}, Messy: true})
	flags := []string{"--no-progress", "--clusters", "1,1", "--poll", "50ms"}

	clean := runCmd(t, mceBin, runArgs(d.files, append([]string{"--out", t.TempDir()}, flags...)...))
	if clean.code != 0 {
		t.Fatalf("clean run: exit %d\n%s", clean.code, e2etest.Tail(clean.stderr, 2000))
	}
	if l, du := checkRunOutputs(t, clean.runDir, d); l+du > 0 {
		t.Fatalf("clean run differs from the truth")
	}
	span := min(clean.took, runCmd(t, mceBin, runArgs(d.files, append([]string{"--out", t.TempDir()}, flags...)...)).took)
	killThenResume(t, row, d, span, killRand(1),
		func(out string) []string { return runArgs(d.files, append([]string{"--out", out}, flags...)...) },
		func(runDir string) []string { return append([]string{"run", "--resume", runDir}, flags...) },
		func(i int, runDir string) {
			s := e2etest.ReadSummary(t, runDir)
			if s.Done+s.Skipped != len(d.files) || s.Failed != 0 {
				t.Errorf("point %d: summary %d done, %d skipped, %d failed of %d", i, s.Done, s.Skipped, s.Failed, len(d.files))
			}
		})
}

// killThenResume is the kill loop of run and reduce: at each of points()
// seeded moments of span it SIGKILLs the command start(out) makes, checks
// what is left (no features file without a plan, every features file there
// exact, summary.json honest), finishes with the command resume(runDir)
// makes (itself killed once more on every other point; a run killed before
// plan.json is started again), and checks every output against the truth
// and the summary with checkSummary. It fills row.
func killThenResume(t *testing.T, row *faultRow, d *dataset, span time.Duration, rng *rand.Rand,
	start func(out string) []string, resume func(runDir string) []string, checkSummary func(i int, runDir string)) {
	t.Helper()
	var killedN, beforePlan, resumedKilled, stuck int
	for i := range points() {
		out := t.TempDir()
		at := moment(rng, span, i, points())
		_, killed := runKilled(t, mceBin, start(out), at)
		runDir := filepath.Join(out, engine.DefaultJobName+"0")
		note := "finished before the kill"
		switch {
		case !killed:
		case !exists(filepath.Join(runDir, engine.PlanJSON)):
			// Killed before the run was planned: nothing to resume and
			// nothing may look done; the user runs it again.
			killedN++
			beforePlan++
			note = "killed before plan.json; rerun"
			if have := completeOutputs(t, runDir, d); len(have) > 0 {
				t.Errorf("point %d: features files %v without a plan", i, have)
			}
			r := runCmd(t, mceBin, start(out))
			if r.code != 0 {
				t.Errorf("point %d: rerun exit %d\n%s", i, r.code, e2etest.Tail(r.stderr, 2000))
				row.add(d.rows(), 0) // nothing can be read back
				stuck++
				continue
			}
			runDir = r.runDir
		default:
			killedN++
			have := completeOutputs(t, runDir, d)
			checkSummaryHonest(t, runDir)
			note = "killed with " + itoa(len(have)) + " of " + itoa(len(d.files)) + " files done"
			if i%2 == 1 {
				if _, k := runKilled(t, mceBin, resume(runDir), moment(rng, span, rng.IntN(points()), points())); k {
					resumedKilled++
					have2 := completeOutputs(t, runDir, d)
					checkSummaryHonest(t, runDir)
					note += "; resume killed too with " + itoa(len(have2)) + " done"
				}
			}
			r := runCmd(t, mceBin, resume(runDir))
			if r.code != 0 || r.runDir != runDir {
				t.Errorf("point %d: resume exit %d, folder %q\n%s", i, r.code, r.runDir, e2etest.Tail(r.stderr, 2000))
				row.add(d.rows(), 0) // nothing can be read back
				stuck++
				continue
			}
		}
		lost, dup := checkRunOutputs(t, runDir, d)
		checkNoTemps(t, runDir)
		checkSummary(i, runDir)
		row.add(lost, dup)
		t.Logf("point %d: kill at %v: %s; then exact (%d rows lost, %d duplicated)", i, at.Round(time.Millisecond), note, lost, dup)
	}
	row.notef("clean run %.2f s; %d of %d killed (%d before plan.json, %d resumes killed too); %d could not be finished; the others exact",
		span.Seconds(), killedN, points(), beforePlan, resumedKilled, stuck)
}

// TestKill_partition SIGKILLs `mce partition` at seeded random moments
// (reading, spilling, merging, ingesting): the store must still open and
// hold each file exactly or not at all; a rerun (itself killed once more
// on every other point) then completes it exactly.
func TestKill_partition(t *testing.T) {
	row := record(t, "SIGKILL of mce at a random moment, then a rerun", "partition")
	d := genData(t, gen.Options{Seed: 22, Files: 6, Size: gen.Size{Bytes: 16 << 20}, Messy: true})
	args := func(st string) []string {
		return []string{"--log-level", "warn", "partition", d.dir, "--out", st, "--mem", "8MiB", "--cpus", "2", "--shards", "16"}
	}
	cleanStore := filepath.Join(t.TempDir(), "store")
	clean := runCmd(t, mceBin, args(cleanStore))
	if clean.code != 0 {
		t.Fatalf("clean partition: exit %d\n%s", clean.code, e2etest.Tail(clean.stderr, 2000))
	}
	if _, l, du := checkStore(t, cleanStore, d, d.names()); l+du > 0 {
		t.Fatal("clean partition differs from the truth")
	}
	span := min(clean.took, runCmd(t, mceBin, args(filepath.Join(t.TempDir(), "store"))).took)
	rng := killRand(2)
	var killedN, none, all, rerunKilled, stuck int
	for i := range points() {
		st := filepath.Join(t.TempDir(), "store")
		at := moment(rng, span, i, points())
		_, killed := runKilled(t, mceBin, args(st), at)
		note := "finished before the kill"
		if killed {
			killedN++
			got, _, _ := checkStore(t, st, d, nil)
			switch len(got) {
			case 0:
				none++
			case len(d.files):
				all++
			}
			note = "killed with " + itoa(len(got)) + " of " + itoa(len(d.files)) + " files in the store"
			if i%2 == 1 {
				if _, k := runKilled(t, mceBin, args(st), moment(rng, span, rng.IntN(points()), points())); k {
					rerunKilled++
					got2, _, _ := checkStore(t, st, d, nil)
					note += "; rerun killed too with " + itoa(len(got2))
				}
			}
			r := runCmd(t, mceBin, args(st))
			if r.code != 0 {
				t.Errorf("point %d: rerun exit %d\n%s", i, r.code, e2etest.Tail(r.stderr, 2000))
				row.add(d.rows(), 0) // nothing can be read back
				stuck++
				continue
			}
		}
		_, lost, dup := checkStore(t, st, d, d.names())
		if ents, _ := os.ReadDir(filepath.Join(st, "tmp")); len(ents) > 0 {
			t.Errorf("point %d: tmp/ holds %d entries after a clean rerun", i, len(ents))
		}
		row.add(lost, dup)
		t.Logf("point %d: kill at %v: %s; then exact (%d rows lost, %d duplicated)", i, at.Round(time.Millisecond), note, lost, dup)
	}
	row.notef("clean run %.2f s; %d of %d killed (store then held no file %d times, all files %d times, some %d times), %d reruns killed too; %d reruns failed; the others exact",
		span.Seconds(), killedN, points(), none, all, killedN-none-all, rerunKilled, stuck)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestKill_partitionWhileCreating rebuilds, deterministically, the states
// a SIGKILL leaves while `mce partition` creates a new store (the random
// kills above hit them about 40 ms into a run): db/ holding only pebble's
// LOCK file (killed after the directory lock, before pebble.Open), and a
// pebble database without the store's config record (killed after
// pebble.Open, before the config was written). Nothing was ingested, so
// the next run must simply make the store.
func TestKill_partitionWhileCreating(t *testing.T) {
	row := record(t, "SIGKILL while partition creates a new store (states rebuilt)", "partition")
	d := genData(t, gen.Options{Seed: 29, Files: 2, Size: gen.Size{Bytes: 1 << 20}})
	for _, c := range []struct {
		name string
		make func(t *testing.T, dbDir string)
	}{
		{"lock file only", func(t *testing.T, dbDir string) {
			if err := os.WriteFile(filepath.Join(dbDir, "LOCK"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"database without config", func(t *testing.T, dbDir string) {
			pdb, err := pebble.Open(dbDir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: quietPebble{}})
			if err != nil {
				t.Fatal(err)
			}
			pdb.Close()
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := filepath.Join(t.TempDir(), "store")
			if err := os.MkdirAll(filepath.Join(st, "db"), 0o755); err != nil {
				t.Fatal(err)
			}
			c.make(t, filepath.Join(st, "db"))
			r := runCmd(t, mceBin, []string{"--log-level", "warn", "partition", d.dir, "--out", st, "--mem", "8MiB"})
			if r.code != 0 {
				t.Errorf("rerun after a kill while creating the store: exit %d: %s", r.code, e2etest.LastLine(r.stderr))
				row.add(d.rows(), 0)
				return
			}
			_, lost, dup := checkStore(t, st, d, d.names())
			row.add(lost, dup)
		})
	}
	row.notef("db/ with only LOCK, and a database without config: the next run makes the store, exact")
}

// quietPebble discards pebble's log lines.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)           {}
func (quietPebble) Errorf(string, ...any)          {}
func (quietPebble) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
