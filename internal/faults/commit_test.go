package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/filejob"
	"github.com/mce-engine/mce/internal/e2etest"
	"github.com/mce-engine/mce/internal/gen"
)

// TestKill_clusterWhileCommitting kills a cluster (SIGKILL, mce built with
// the tag faultinject) after it computed one file's features and before
// it committed them, while it already runs the next file (a cluster takes
// its next file while the last one's output is synced; see
// engine.TaskEnv.Computed): neither file may be lost or left half
// written. The committing file is named in failure.log and retried alone,
// the other goes the way of a file whose cluster crashed, and every
// features file comes out exact, with no temporary file left.
func TestKill_clusterWhileCommitting(t *testing.T) {
	row := record(t, "cluster killed (SIGKILL) between a file's computed features and their commit, with the next file running (test build)", "run")
	d := genData(t, gen.Options{Seed: 57, Files: 4, Size: gen.Size{Bytes: 16 << 20}})
	for i, victim := range []string{d.files[0], d.files[len(d.files)-2]} {
		what := filepath.Base(victim)
		marker := filepath.Join(t.TempDir(), fmt.Sprintf("killed-%d", i))
		out := t.TempDir()
		r := runCmd(t, mceFaultBin, runArgs(d.files, "--out", out, "--no-progress", "--clusters", "1"), func(c *exec.Cmd) {
			c.Env = append(os.Environ(), filejob.FaultCommitEnv+"="+marker+" "+victim)
		})
		if _, err := os.Stat(marker); err != nil {
			t.Fatalf("%s: the fault did not fire (%v)\n%s", what, err, e2etest.Tail(r.stderr, 2000))
		}
		if r.code != 0 || e2etest.LastLine(r.stdout) != fmt.Sprintf("all %d files ok", len(d.files)) {
			t.Errorf("%s: exit %d, last line %q\n%s", what, r.code, e2etest.LastLine(r.stdout), e2etest.Tail(r.stderr, 2000))
		}
		if r.runDir == "" {
			t.Fatalf("%s: no run folder", what)
		}
		status := e2etest.ReadLog(t, r.runDir, engine.StatusLog)
		failures := e2etest.ReadLog(t, r.runDir, engine.FailureLog)
		for _, want := range []string{
			"while it committed file " + victim,
			"file " + victim + " (#",
			"will be retried alone on cluster 0",
		} {
			if !strings.Contains(status, want) {
				t.Errorf("%s: status.log lacks %q:\n%s", what, want, e2etest.Tail(status, 3000))
			}
		}
		if !strings.Contains(failures, victim) || !strings.Contains(failures, "while it committed the output") {
			t.Errorf("%s: failure.log does not name the file and the commit:\n%s", what, failures)
		}
		checkNoTemps(t, r.runDir)
		checkSummaryHonest(t, r.runDir)
		checkReportReadsAll(t, r.runDir)
		lost, dup := checkRunOutputs(t, r.runDir, d)
		row.add(lost, dup)
	}
	row.notef("the largest and the next-to-smallest of 4 files, 1 cluster: the committing file named in failure.log and retried alone, the running one retried too; all features files exact, no temporary file")
}
