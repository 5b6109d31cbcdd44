package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestE2E_OutputSyncOrder traces the system calls of a run and of a
// reduce (strace -f -y) and checks the order that makes a power cut safe:
// the features file's data is synced under its temporary name, renamed,
// its folder synced, and only then does the run record the file as done.
// A crash at any point leaves either the whole file under its name, with
// the rename durable, or a temporary file that --resume removes.
func TestE2E_OutputSyncOrder(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("strace is not installed (.ci/run installs it)")
		}
		t.Skip("strace is not installed")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if _, se, code := mce(t, dir, nil, "gen", "--out", data, "--files", "2", "--size", "1MB"); code != 0 {
		t.Fatalf("gen: %s", se)
	}
	st := filepath.Join(dir, "store")
	if _, se, code := mce(t, dir, nil, "partition", data, "--out", st); code != 0 {
		t.Fatalf("partition: %s", se)
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"run", []string{"run", data, "--out", filepath.Join(dir, "run"), "--no-progress"}},
		{"reduce", []string{"reduce", "--store", st, "--out", filepath.Join(dir, "reduce"), "--no-progress"}},
	} {
		trace := filepath.Join(dir, c.name+".trace")
		cmd := exec.Command(strace, append([]string{"-f", "-y", "-s", "160", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2,write", "-o", trace, mceBin}, c.args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c.name, err, out)
		}
		b, err := os.ReadFile(trace)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		runDir := filepath.Join(dir, c.name, "job0")
		outs, _ := filepath.Glob(filepath.Join(runDir, "*.features.csv"))
		if len(outs) != 2 {
			t.Fatalf("%s: %d outputs", c.name, len(outs))
		}
		for _, out := range outs {
			find := func(from int, re *regexp.Regexp) int {
				for i := from; i < len(lines); i++ {
					if re.MatchString(lines[i]) {
						return i
					}
				}
				return -1
			}
			q := regexp.QuoteMeta
			base := filepath.Base(out)
			syncTmp := find(0, regexp.MustCompile(`fsync\(\d+<`+q(out)+`\.tmp>`)) // the call; it may print as <unfinished ...>
			rename := find(syncTmp+1, regexp.MustCompile(`rename(at2?)?\(.*`+q(base)+`\.tmp".*"[^"]*`+q(base)+`"`))
			syncDir := find(rename+1, regexp.MustCompile(`fsync\(\d+<`+q(runDir)+`>`))
			done := find(syncDir+1, regexp.MustCompile(`write\(\d+<`+q(filepath.Join(runDir, "status.log"))+`>, ".* done on cluster`))
			t.Logf("%s %s: fsync tmp at %d, rename %d, fsync dir %d, recorded done %d", c.name, base, syncTmp, rename, syncDir, done)
			if syncTmp < 0 || rename < 0 || syncDir < 0 || done < 0 {
				t.Errorf("%s %s: not fsync(file) -> rename -> fsync(dir) -> done in the trace (%d, %d, %d, %d)", c.name, base, syncTmp, rename, syncDir, done)
			}
		}
	}
}
