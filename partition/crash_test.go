package partition

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mce-engine/mce/internal/gen"
	"github.com/mce-engine/mce/store"
)

// mceBin is the mce binary built by TestMain for the tests that run
// partition as a child process.
var mceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mce-partition-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mceBin = filepath.Join(dir, "mce")
	out, err := exec.Command("go", "build", "-o", mceBin, "../cmd/mce").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build mce: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// partitionChild runs `mce partition` with the crash point (or none) and
// reports whether it was killed by SIGKILL.
func partitionChild(t *testing.T, raw, st, crashAt string, extra ...string) (killed bool, stderr string) {
	t.Helper()
	cmd := startChild(t, raw, st, crashAt, extra...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	return wasKilled(t, err, errb.String()), errb.String()
}

func startChild(t *testing.T, raw, st, crashAt string, extra ...string) *exec.Cmd {
	args := append([]string{"--log-level", "warn", "partition", raw, "--out", st, "--mem", "8MiB",
		"--shards", "16", "--heavy-min-rows", "100", "--cpus", "2", "--max-bad-rows", "0.05"}, extra...)
	cmd := exec.Command(mceBin, args...)
	cmd.Env = append(os.Environ(), crashEnvName+"="+crashAt)
	return cmd
}

// crashEnvName mirrors the CLI's variable (cmd/mce: crashEnv).
const crashEnvName = "MCE_TEST_CRASH_AT"

func wasKilled(t *testing.T, err error, stderr string) bool {
	t.Helper()
	if err == nil {
		return false
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	t.Fatalf("partition failed: %v\n%s", err, stderr)
	return false
}

// checkPartial checks that the store opens and holds exactly the truth of
// the files it records, and returns their names.
func checkPartial(t *testing.T, st string, truth []gen.Truth) []string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(st, "MANIFEST.json")); err != nil {
		// Killed before the store was made: only a bare directory may exist.
		if _, err := store.Open(st, &store.Options{ReadOnly: true, Logger: quiet()}); !errors.Is(err, store.ErrNotExist) && !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("store without manifest opens with %v", err)
		}
		return nil
	}
	db, err := store.Open(st, &store.Options{ReadOnly: true, Logger: quiet()})
	if err != nil {
		t.Fatalf("store does not open after the kill: %v", err)
	}
	have := map[string]bool{}
	var names []string
	for _, f := range db.Files() {
		have[f.Name] = true
		names = append(names, f.Name)
	}
	db.Close()
	var want []gen.Truth
	for _, tr := range truth {
		if have[tr.File] {
			want = append(want, tr)
		}
	}
	checkStore(t, st, want)
	sort.Strings(names)
	return names
}

func TestPartition_Crash(t *testing.T) {
	raw := generate(t, gen.Options{Seed: 11, Files: 4, Size: gen.Size{Rows: 40_000}, Messy: true})
	truth := readTruth(t, raw)
	files := map[string]bool{}
	for _, tr := range truth {
		files[tr.File] = true
	}

	for _, point := range []string{"read:3", "spill:2", "merge:2", "ingest:1", "ingested:1"} {
		t.Run(strings.ReplaceAll(point, ":", "_"), func(t *testing.T) {
			st := filepath.Join(t.TempDir(), "store")
			killed, stderr := partitionChild(t, raw, st, point)
			if !killed {
				t.Fatalf("the run finished without reaching %s:\n%s", point, stderr)
			}
			got := checkPartial(t, st, truth)
			switch point {
			case "ingested:1":
				if len(got) != len(files) {
					t.Errorf("killed after the ingest: store holds %v, want all %d files", got, len(files))
				}
			default:
				if len(got) != 0 {
					t.Errorf("killed before the ingest: store holds %v", got)
				}
			}
			if killed, stderr = partitionChild(t, raw, st, ""); killed {
				t.Fatalf("rerun killed:\n%s", stderr)
			}
			checkStore(t, st, truth)
			if _, err := os.Stat(filepath.Join(st, "tmp")); err == nil {
				if ents, _ := os.ReadDir(filepath.Join(st, "tmp")); len(ents) > 0 {
					t.Errorf("tmp/ holds %d entries after a clean run", len(ents))
				}
			}
		})
	}

	t.Run("incremental", func(t *testing.T) {
		// Two months in, two more added, killed while merging them.
		part := filepath.Join(t.TempDir(), "raw")
		os.MkdirAll(part, 0o755)
		names := sortedKeys(files)
		link := func(n string) {
			if err := os.Link(filepath.Join(raw, n), filepath.Join(part, n)); err != nil {
				t.Fatal(err)
			}
		}
		link(names[0])
		link(names[1])
		st := filepath.Join(t.TempDir(), "store")
		if killed, stderr := partitionChild(t, part, st, ""); killed {
			t.Fatal(stderr)
		}
		link(names[2])
		link(names[3])
		if killed, stderr := partitionChild(t, part, st, "merge:1"); !killed {
			t.Fatalf("not killed:\n%s", stderr)
		}
		if got := checkPartial(t, st, truth); strings.Join(got, ",") != strings.Join(names[:2], ",") {
			t.Errorf("after the kill the store holds %v, want %v", got, names[:2])
		}
		if killed, stderr := partitionChild(t, part, st, ""); killed {
			t.Fatal(stderr)
		}
		checkStore(t, st, truth)
	})

	t.Run("replace", func(t *testing.T) {
		part := filepath.Join(t.TempDir(), "raw")
		os.MkdirAll(part, 0o755)
		names := sortedKeys(files)
		var plain string
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(raw, n))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(part, n), b, 0o644)
			if !strings.HasSuffix(n, ".gz") && !strings.HasSuffix(n, ".zst") && plain == "" {
				plain = n
			}
		}
		st := filepath.Join(t.TempDir(), "store")
		if killed, stderr := partitionChild(t, part, st, ""); killed {
			t.Fatal(stderr)
		}
		// Change one file; --replace is killed right after it marked the
		// old content deleting: the file is then absent, never half there.
		b, _ := os.ReadFile(filepath.Join(part, plain))
		lines := strings.SplitAfter(string(b), "\n")
		os.WriteFile(filepath.Join(part, plain), []byte(strings.Join(append(lines[:1], lines[len(lines)/3:]...), "")), 0o644)
		if killed, stderr := partitionChild(t, part, st, "delete:1", "--replace"); !killed {
			t.Fatalf("not killed:\n%s", stderr)
		}
		got := checkPartial(t, st, truth)
		for _, n := range got {
			if n == plain {
				t.Errorf("the file being replaced is visible after the kill")
			}
		}
		if killed, stderr := partitionChild(t, part, st, "", "--replace"); killed {
			t.Fatal(stderr)
		}
		var want []gen.Truth
		for _, tr := range truth {
			if tr.File != plain {
				want = append(want, tr)
			}
		}
		checkStore(t, st, append(want, truthOf(t, filepath.Join(part, plain))...))
	})

	t.Run("random", func(t *testing.T) {
		// Time a clean run, then kill runs at random moments within it.
		t0 := time.Now()
		if killed, stderr := partitionChild(t, raw, filepath.Join(t.TempDir(), "timing"), ""); killed {
			t.Fatal(stderr)
		}
		full := time.Since(t0)
		st := filepath.Join(t.TempDir(), "store")
		r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
		for i := 0; i < 6; i++ {
			cmd := startChild(t, raw, st, "")
			var errb bytes.Buffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			delay := time.Duration(r.Int64N(int64(full)))
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			what := "finished"
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run %d failed: %v\n%s", i, err, errb.String())
				}
			case <-time.After(delay):
				cmd.Process.Signal(syscall.SIGKILL)
				<-done
				what = fmt.Sprintf("killed after %s", delay.Round(time.Millisecond))
			}
			held := checkPartial(t, st, truth)
			t.Logf("run %d %s (a clean run takes %s): store holds %v", i, what, full.Round(time.Millisecond), held)
			if len(held) == len(files) {
				break
			}
		}
		if killed, stderr := partitionChild(t, raw, st, ""); killed {
			t.Fatal(stderr)
		}
		checkStore(t, st, truth)
	})
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
