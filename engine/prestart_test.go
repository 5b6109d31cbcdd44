package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
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
	"github.com/mce-engine/mce/engine/filejob"
	"github.com/mce-engine/mce/internal/e2etest"
	"github.com/mce-engine/mce/internal/gen"
)

// TestRun_prestarted: cluster processes started before Run (engine.Prestart)
// are the clusters' first processes when Run's layout is the one they were
// started for, and are killed when it is not or when no Run takes them;
// the files are exact either way and no process is left behind.
func TestRun_prestarted(t *testing.T) {
	skipShort(t)
	data, _ := genData(t, gen.Options{Seed: 21, Files: 3, Size: gen.Size{Bytes: 2 << 20}})
	t.Cleanup(func() { e2etest.CheckNoOrphans(t, mceBin) })
	tasks, err := filejob.Plan([]string{data})
	if err != nil {
		t.Fatal(err)
	}
	opts := func(clusters ...int) engine.Options {
		return engine.Options{
			Tasks: tasks, Out: t.TempDir(), JobName: "pre", Clusters: clusters,
			WorkerExe: mceBin, WorkerArgs: []string{"--log-level", "warn", "worker"},
			RAMLimitBytes: 8 << 30, Logger: slog.New(slog.DiscardHandler),
		}
	}
	for _, c := range []struct {
		name        string
		pre, run    []int
		wantAdopted bool
	}{
		{"same layout", []int{1, 1}, []int{1, 1}, true},
		{"another layout", []int{1, 1}, []int{2}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			pre, err := engine.Prestart(opts(c.pre...))
			if err != nil {
				t.Fatal(err)
			}
			defer pre.Close()
			pids := pre.PIDs()
			if len(pids) != len(c.pre) {
				t.Fatalf("%d processes prestarted, want %d", len(pids), len(c.pre))
			}
			o := opts(c.run...)
			o.Prestarted = pre
			s, err := engine.Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if s.Done != 3 || s.Failed != 0 {
				t.Fatalf("summary: %d done, %d failed", s.Done, s.Failed)
			}
			checkTruth(t, data, s.RunDir)
			log, err := os.ReadFile(filepath.Join(s.RunDir, engine.StatusLog))
			if err != nil {
				t.Fatal(err)
			}
			var started []int
			for _, line := range strings.Split(string(log), "\n") {
				var id, pid int
				if i := strings.Index(line, "cluster "); i >= 0 {
					if n, _ := fmt.Sscanf(line[i:], "cluster %d started: pid %d", &id, &pid); n == 2 {
						started = append(started, pid)
					}
				}
			}
			if len(started) != len(c.run) {
				t.Fatalf("status.log starts %d clusters, want %d:\n%s", len(started), len(c.run), log)
			}
			slices.Sort(started)
			slices.Sort(pids)
			if adopted := slices.Equal(started, pids); adopted != c.wantAdopted {
				t.Errorf("clusters' pids %v, prestarted %v: adopted %v, want %v", started, pids, adopted, c.wantAdopted)
			}
			waitGone(t, pids)
		})
	}
	t.Run("no run", func(t *testing.T) {
		pre, err := engine.Prestart(opts(1, 1))
		if err != nil {
			t.Fatal(err)
		}
		pre.Close()
		pre.Close() // twice is fine
		waitGone(t, pre.PIDs())
	})
}

// waitGone fails the test unless every process of pids is gone (exited
// and reaped) within 5 s.
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still there", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestE2E_prefork: the built binary's `mce run` starts its first cluster's
// process while it initialises (package prefork) and Run adopts it, gives
// it its cluster's CPUs and memory limit, and the files are exact; with
// several clusters only the first is started so; MCE_NO_PREFORK turns it
// off; a run that fails before it starts leaves no process behind.
func TestE2E_prefork(t *testing.T) {
	skipShort(t)
	data, _ := genData(t, gen.Options{Seed: 22, Files: 3, Size: gen.Size{Bytes: 2 << 20}})
	t.Cleanup(func() { e2etest.CheckNoOrphans(t, mceBin) })
	adoptedRE := regexp.MustCompile(`msg="cluster process started with mce, before its command line was read" cluster=0 pid=(\d+)`)
	limitsRE := regexp.MustCompile(`msg="started before its cluster was known: limits applied" cluster=0 pid=(\d+) gomaxprocs=(\d+) gomemlimit=(\S+)`)
	startedRE := regexp.MustCompile(`cluster (\d+) started: pid (\d+)`)
	for _, tc := range []struct {
		name     string
		env      []string
		clusters string
		early    bool
		cpus     string
	}{
		{"one cluster", nil, "1", true, "1"},
		{"two clusters", nil, "1,1", true, "1"},
		{"off", []string{"MCE_NO_PREFORK=1"}, "2", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			cmd := exec.Command(mceBin, "--log-level", "debug", "run", data, "--out", out, "--clusters", tc.clusters,
				"--ram-limit", "3GiB", "--no-progress")
			cmd.Env = append(os.Environ(), tc.env...)
			var se bytes.Buffer
			cmd.Stderr = &se
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v\n%s", err, e2etest.Tail(se.String(), 2000))
			}
			runDir := filepath.Join(out, engine.DefaultJobName+"0")
			checkTruth(t, data, runDir)
			status, err := os.ReadFile(filepath.Join(runDir, engine.StatusLog))
			if err != nil {
				t.Fatal(err)
			}
			pids := map[string]string{} // cluster -> pid
			for _, m := range startedRE.FindAllStringSubmatch(string(status), -1) {
				pids[m[1]] = m[2]
			}
			if want := strings.Count(tc.clusters, ",") + 1; len(pids) != want {
				t.Fatalf("%d clusters started, want %d:\n%s", len(pids), want, status)
			}
			m := adoptedRE.FindStringSubmatch(se.String())
			if (m != nil) != tc.early {
				t.Fatalf("a cluster started early: %v, want %v; stderr:\n%s", m != nil, tc.early, e2etest.Tail(se.String(), 3000))
			}
			if !tc.early {
				return
			}
			if m[1] != pids["0"] {
				t.Errorf("the process started early is %s, cluster 0's is %s", m[1], pids["0"])
			}
			l := limitsRE.FindStringSubmatch(se.String())
			if l == nil {
				t.Fatalf("no limits applied in the early process; stderr:\n%s", e2etest.Tail(se.String(), 3000))
			}
			// 3 GiB over the clusters' CPUs, the first's share.
			share := float64(3<<30) / float64(strings.Count(tc.clusters, ",")+1)
			if got, err := strconv.ParseFloat(l[3], 64); l[1] != m[1] || l[2] != tc.cpus || err != nil || got != share {
				t.Errorf("limits applied in process %s: GOMAXPROCS %s, GOMEMLIMIT %s; want process %s, %s, %.0f", l[1], l[2], l[3], m[1], tc.cpus, share)
			}
		})
	}
	t.Run("failed before the run", func(t *testing.T) {
		cmd := exec.Command(mceBin, "run", filepath.Join(t.TempDir(), "nothing-here"), "--out", t.TempDir(), "--no-progress")
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("a run of a missing folder succeeded:\n%s", out)
		}
		e2etest.CheckNoOrphans(t, mceBin)
	})
}
