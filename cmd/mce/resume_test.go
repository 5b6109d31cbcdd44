package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestE2E_ResumeRemembersFeatures interrupts a `run --features f.go
// --param ...` and resumes it with `run --resume DIR` alone: the run
// folder kept the command line, the parameters and a copy of f.go, so the
// resumed run computes the same features as an uninterrupted one, and its
// cluster flags, so the resumed run keeps its layout, queue and RAM limit.
// A changed f.go is refused with a message that says what to do.
func TestE2E_ResumeRemembersFeatures(t *testing.T) {
	dir, env := outsideCheckout(t)
	src, err := os.ReadFile(repo(t, "internal/e2etest/testdata/faulty/f.go"))
	if err != nil {
		t.Fatal(err)
	}
	fgo := filepath.Join(dir, "faulty.go")
	if err := os.WriteFile(fgo, src, 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if _, se, code := mce(t, dir, env, "gen", "--out", data, "--seed", "4", "--files", "3", "--size", "3MB"); code != 0 {
		t.Fatalf("gen: %s", se)
	}
	// Every file holds this user (the bank), so each file takes slow_ms.
	truth, err := os.ReadFile(filepath.Join(data, "_truth.csv"))
	if err != nil {
		t.Fatal(err)
	}
	slow := heaviestUser(t, truth)
	args := []string{"run", data, "--features", fgo, "--param", "slow_user=" + slow, "--param", "slow_ms=700",
		"--clusters", "1", "--queue", "fifo", "--ram-limit", "3GiB", "--no-progress", "--out", filepath.Join(dir, "out")}

	// The same run, whole, for the expected outputs.
	_, se, code := mce(t, dir, env, append(args[:len(args)-1:len(args)-1], filepath.Join(dir, "whole"))...)
	if code != 0 {
		t.Fatalf("whole run: exit %d\n%s", code, se)
	}
	whole := filepath.Join(dir, "whole", "job0")

	cmd := exec.Command(mceBin, args...)
	cmd.Dir = dir
	cmd.Env = append(withoutEnv(os.Environ(), "MCE_SOURCE"), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "out", "job0")
	deadline := time.Now().Add(time.Minute)
	for {
		b, _ := os.ReadFile(filepath.Join(runDir, "status.log"))
		if strings.Contains(string(b), ") done on cluster") {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no file done within a minute:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err == nil {
		t.Fatal("the interrupted run exited 0")
	}
	plan, err := os.ReadFile(filepath.Join(runDir, "plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"slow_user": "` + slow + `"`, `"features_source"`, `"sha256"`, `"--param"`, `"ram_limit_bytes": 3221225472`} {
		if !bytes.Contains(plan, []byte(want)) {
			t.Errorf("plan.json lacks %s", want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(runDir, "features.go")); err != nil || !bytes.Equal(b, src) {
		t.Errorf("the run folder's features.go is not the run's f.go (%v)", err)
	}

	// f.go changed since: refused, with the way out in the message.
	if err := os.WriteFile(fgo, append(append([]byte(nil), src...), "\n// changed\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, se, code = mce(t, dir, env, "run", "--resume", runDir)
	if code != 2 || !strings.Contains(se, "changed since the run started") || !strings.Contains(se, filepath.Join(runDir, "features.go")) {
		t.Errorf("resume after f.go changed: exit %d\n%s", code, se)
	}
	// Back as it was: resumed with no flags at all.
	if err := os.WriteFile(fgo, src, 0o644); err != nil {
		t.Fatal(err)
	}
	so, se, code := mce(t, dir, env, "run", "--resume", runDir)
	if code != 0 || !strings.Contains(so, "all 3 files ok") {
		t.Fatalf("resume: exit %d\n%s\n%s", code, so, se)
	}
	status, _ := os.ReadFile(filepath.Join(runDir, "status.log"))
	starts := regexp.MustCompile(`start job .*`).FindAllString(string(status), -1)
	if len(starts) != 2 || !strings.Contains(starts[1], "clusters [1], queue fifo, RAM limit 3072 MiB") {
		t.Errorf("the resumed run's start does not keep --clusters 1 --queue fifo --ram-limit 3GiB: %q", starts)
	}
	outs, _ := filepath.Glob(filepath.Join(whole, "*.features.csv"))
	if len(outs) != 3 {
		t.Fatalf("%d outputs in the whole run", len(outs))
	}
	for _, w := range outs {
		want, _ := os.ReadFile(w)
		got, err := os.ReadFile(filepath.Join(runDir, filepath.Base(w)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: resumed output differs from the whole run's (%v)", filepath.Base(w), err)
		}
	}
}

// heaviestUser returns the user with the most rows in a truth file
// (file,user,rows,amount_total).
func heaviestUser(t *testing.T, truth []byte) string {
	t.Helper()
	rows := map[string]int{}
	best := ""
	for _, ln := range strings.Split(string(truth), "\n")[1:] {
		f := strings.Split(ln, ",")
		if len(f) < 3 {
			continue
		}
		var n int
		for _, c := range f[2] {
			n = n*10 + int(c-'0')
		}
		rows[f[1]] += n
		if best == "" || rows[f[1]] > rows[best] {
			best = f[1]
		}
	}
	return best
}
