package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
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
