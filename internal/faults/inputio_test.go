package faults

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/internal/e2etest"
	"github.com/mce-engine/mce/internal/fileid"
	"github.com/mce-engine/mce/internal/gen"
)

// badSectorAt makes the command read the input file path as if the disk
// could not read it from byte off on (see csvread.FaultReadEnv; only
// mceFaultBin honours it).
func badSectorAt(path string, off int64) func(*exec.Cmd) {
	return func(c *exec.Cmd) {
		c.Env = append(os.Environ(), fmt.Sprintf("%s=%d %s", csvread.FaultReadEnv, off, path))
	}
}

// readErrorRE matches the error of a read that failed: the line being
// read, the byte, the file's size and, for a compressed file, the bytes
// decompressed by then.
var readErrorRE = regexp.MustCompile(`line (\d+): read error at byte (\d+) of (\d+)(?: on disk \((\d+) bytes decompressed\))?: input/output error$`)

// checkReadError checks the error msg of a read of path that failed at
// byte off: it names that byte, the file's size and the line being read
// (counted in the decompressed text, for a compressed file, up to the
// bytes it says were decompressed).
func checkReadError(t *testing.T, what, msg, path string, off int64) {
	t.Helper()
	m := readErrorRE.FindStringSubmatch(msg)
	if m == nil {
		t.Errorf("%s: %q is not a read error of the expected form", what, msg)
		return
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text, n := raw, off
	var zr io.ReadCloser
	switch {
	case strings.HasSuffix(path, ".gz"):
		zr, err = gzip.NewReader(bytes.NewReader(raw))
	case strings.HasSuffix(path, ".zst"):
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(raw))
		zr = d.IOReadCloser()
	}
	if err != nil {
		t.Fatal(err)
	}
	if zr != nil {
		if text, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
		zr.Close()
		n, _ = strconv.ParseInt(m[4], 10, 64)
		if m[4] == "" || n > int64(len(text)) {
			t.Errorf("%s: %q does not say how far the text was read", what, msg)
			return
		}
	}
	line := 1 + bytes.Count(text[:n], []byte{'\n'})
	if want := []string{strconv.Itoa(line), strconv.FormatInt(off, 10), strconv.Itoa(len(raw))}; !slices.Equal(m[1:4], want) {
		t.Errorf("%s: %q says line, byte, size %v; want %v", what, msg, m[1:4], want)
	}
}

// inputIOData is the dataset of the input read tests: four files, one
// gzip, one zstd, two plain, of about 2 MB each (the reader takes 1 MiB at
// a time, so a failing byte falls in the header's block or in a later one).
func inputIOData(t *testing.T, seed uint64) *dataset {
	return genData(t, gen.Options{Seed: seed, Files: 4, Size: gen.Size{Bytes: 8 << 20}, Compression: gen.CompressMixed})
}

// sectorPoints draws n failing bytes for the files of d, stratified over
// each file (the i-th point falls in the i-th n-th of its file), the files
// taken in turn.
func sectorPoints(t *testing.T, d *dataset, seed uint64, n int) (paths []string, offs []int64) {
	t.Helper()
	rng := killRand(seed)
	for i := range n {
		p := d.files[i%len(d.files)]
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := st.Size()*int64(i)/int64(n), st.Size()*int64(i+1)/int64(n)
		paths = append(paths, p)
		offs = append(offs, lo+rng.Int64N(max(hi-lo, 1)))
	}
	return paths, offs
}

// TestIOErrors_runInput makes the disk fail to read one input file of a
// run from a seeded byte on (mce built with the tag faultinject; the reads
// of that file stop there with EIO, however often tried, as they do over a
// bad sector): that file alone must fail, with one line in failure.log and
// on stderr that names it, the line and the byte; it has no features file
// and the summary says failed; the other files are exact; --resume once
// the disk reads again completes the run exactly.
func TestIOErrors_runInput(t *testing.T) {
	row := record(t, "I/O error (EIO) reading an input file from a seeded byte on (a bad sector; test build)", "run")
	d := inputIOData(t, 54)
	paths, offs := sectorPoints(t, d, 54, points())
	for i, path := range paths {
		off := offs[i]
		what := fmt.Sprintf("%s from byte %d", filepath.Base(path), off)
		out := t.TempDir()
		r := runCmd(t, mceFaultBin, runArgs(d.files, "--out", out, "--no-progress", "--clusters", "1,1"), badSectorAt(path, off))
		want := fmt.Sprintf("1 of %d files failed", len(d.files))
		if r.code != 1 || e2etest.LastLine(r.stdout) != want {
			t.Errorf("%s: exit %d, last line %q; want 1, %q", what, r.code, e2etest.LastLine(r.stdout), want)
		}
		if r.runDir == "" {
			t.Fatalf("%s: no run folder\n%s", what, e2etest.Tail(r.stderr, 2000))
		}
		// One line about the file in failure.log, on stdout and on stderr.
		var lines [3][]string
		for i, c := range []struct{ text, prefix string }{
			{e2etest.ReadLog(t, r.runDir, engine.FailureLog), ""},
			{r.stdout, "failed: "},
			{r.stderr, ""},
		} {
			for _, ln := range strings.Split(c.text, "\n") {
				if strings.HasPrefix(ln, c.prefix) && strings.Contains(ln, path) && (i != 2 || strings.Contains(ln, `msg="file failed" file=`+path+" ")) {
					lines[i] = append(lines[i], ln)
				}
			}
			if len(lines[i]) != 1 {
				t.Errorf("%s: %d lines name the file in %s, want 1:\n%s", what, len(lines[i]), []string{"failure.log", "stdout", "stderr"}[i], strings.Join(lines[i], "\n"))
			}
		}
		if len(lines[0]) > 0 {
			checkReadError(t, what, lines[0][0], path, off)
		}
		if len(lines[1]) > 0 {
			checkReadError(t, what, strings.Replace(lines[1][0], "failed: "+path+":", "line ", 1), path, off)
		}
		if len(lines[2]) > 0 {
			m := regexp.MustCompile(` error=(".*")$`).FindStringSubmatch(lines[2][0])
			msg := ""
			if m != nil {
				msg, _ = strconv.Unquote(m[1])
			}
			checkReadError(t, what, msg, path, off)
		}
		have := completeOutputs(t, r.runDir, d)
		if slices.Contains(have, filepath.Base(path)) || len(have) != len(d.files)-1 {
			t.Errorf("%s: features files of %v; want all but that file", what, have)
		}
		checkNoTemps(t, r.runDir)
		checkSummaryHonest(t, r.runDir)
		for _, ts := range e2etest.ReadSummary(t, r.runDir).Tasks {
			if ts.Input == path && ts.Status != engine.TaskFailed {
				t.Errorf("%s: summary.json says %s", what, ts.Status)
			}
		}
		again := runCmd(t, mceBin, []string{"run", "--resume", r.runDir, "--no-progress"})
		if again.code != 0 {
			t.Errorf("%s: --resume: exit %d\n%s", what, again.code, e2etest.Tail(again.stderr, 2000))
		}
		lost, dup := checkRunOutputs(t, r.runDir, d)
		row.add(lost, dup)
		if len(lines[1]) > 0 {
			t.Logf("%s: %s", what, lines[1][0])
		}
	}
	row.notef("%d tries over plain, gzip and zstd files: that file alone fails, named with the line being read and the byte in failure.log, on stdout and stderr (one line each); no features file, summary says failed; the others exact; --resume exact", len(paths))
}

// TestIOErrors_partitionInput is TestIOErrors_runInput for partition: the
// file that cannot be read is named with its byte on stderr, not recorded
// in the store; the others are ingested exactly, and a rerun once the disk
// reads again adds it exactly.
func TestIOErrors_partitionInput(t *testing.T) {
	row := record(t, "I/O error (EIO) reading an input file from a seeded byte on (a bad sector; test build)", "partition")
	d := inputIOData(t, 55)
	paths, offs := sectorPoints(t, d, 55, max(1, points()/2))
	for i, path := range paths {
		off := offs[i]
		what := fmt.Sprintf("%s from byte %d", filepath.Base(path), off)
		st := filepath.Join(t.TempDir(), "store")
		args := []string{"--log-level", "warn", "partition", d.dir, "--out", st, "--mem", "16MiB"}
		r := runCmd(t, mceFaultBin, args, badSectorAt(path, off))
		if r.code != 1 {
			t.Errorf("%s: exit %d, want 1", what, r.code)
		}
		var lines []string
		for _, ln := range strings.Split(r.stderr, "\n") {
			if strings.HasPrefix(strings.TrimSpace(ln), filepath.Base(path)+": ") {
				lines = append(lines, ln)
			}
		}
		// partition names the file by the path it was given, then as
		// csvread does: "PATH:LINE: read error at byte ...".
		if len(lines) != 1 {
			t.Errorf("%s: stderr lines %q; want one", what, lines)
		} else if _, msg, ok := strings.Cut(lines[0], path+":"); !ok {
			t.Errorf("%s: stderr line %q does not name %s", what, lines[0], path)
		} else {
			checkReadError(t, what, "line "+msg, path, off)
		}
		var others []string
		for _, n := range d.names() {
			if n != filepath.Base(path) {
				others = append(others, n)
			}
		}
		rec, lost, dup := checkStore(t, st, d, others)
		if slices.Contains(rec, filepath.Base(path)) {
			t.Errorf("%s: the store records the file it could not read", what)
		}
		if again := runCmd(t, mceBin, args); again.code != 0 {
			t.Errorf("%s: rerun: exit %d\n%s", what, again.code, e2etest.Tail(again.stderr, 2000))
		}
		_, l, du := checkStore(t, st, d, d.names())
		row.add(lost+l, dup+du)
	}
	row.notef("%d tries: that file is not ingested, named with the line and the byte in one line on stderr; the others exact in the store; reruns exact", len(paths))
}

// straceInject runs the command under strace, which makes every fsync and
// fdatasync of path fail with EIO (strace's syscall fault injection: the
// kernel never sees the call). The test is skipped without strace, except
// in CI.
func straceInject(t *testing.T, path string) func(*exec.Cmd) {
	t.Helper()
	strace, err := exec.LookPath("strace")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("strace is not installed (.ci/run installs it)")
		}
		t.Skip("strace is not installed")
	}
	return func(c *exec.Cmd) {
		c.Args = append([]string{strace, "-f", "-qq", "-o", "/dev/null", "--seccomp-bpf", "-e", "signal=none",
			"-P", path, "-e", "trace=fsync,fdatasync", "-e", "inject=fsync,fdatasync:error=EIO"}, c.Args...)
		c.Path = strace
	}
}

// TestIOErrors_outputSync makes the fsync of outputs fail with EIO (strace
// injects it into the real binary): of one features file of a run or a
// reduce (each file in turn in the full suite), and of the run folder. A
// file whose fsync failed must fail with one line naming its temporary
// file, leave neither it nor a features file, and not be called done; a
// folder that cannot be synced stops the run before it records anything;
// --resume completes exactly.
func TestIOErrors_outputSync(t *testing.T) {
	d := genData(t, gen.Options{Seed: 56, Files: 4, Size: gen.Size{Bytes: 4 << 20}})
	targets := d.files[1:2]
	if full() {
		targets = d.files
	}
	t.Run("features file", func(t *testing.T) {
		row := record(t, "I/O error (EIO) on the fsync of a features file (strace's fault injection)", "run")
		for _, in := range targets {
			out := t.TempDir()
			runDir := filepath.Join(out, "sync0")
			tmp := filepath.Join(runDir, fileid.FeaturesName(filepath.Base(in))) + ".tmp"
			r := runCmd(t, mceBin, runArgs(d.files, "--out", out, "--job", "sync", "--no-progress", "--clusters", "1,1"), straceInject(t, tmp))
			if r.code != 1 || r.runDir != runDir {
				t.Fatalf("%s: exit %d, run folder %q; want 1, %s\n%s", filepath.Base(in), r.code, r.runDir, runDir, e2etest.Tail(r.stderr, 2000))
			}
			have := checkFailedHonestly(t, r, runDir, d, "output not saved: sync "+tmp+": input/output error")
			if len(have) != len(d.files)-1 || slices.Contains(have, filepath.Base(in)) {
				t.Errorf("%s: features files of %v; want all others", filepath.Base(in), have)
			}
			if n := strings.Count(e2etest.ReadLog(t, runDir, engine.FailureLog), "sync "+tmp+": input/output error"); n != 1 {
				t.Errorf("%s: failure.log names the failed fsync %d times, want 1", filepath.Base(in), n)
			}
			row.add(resumeExact(t, "run", runDir, d))
		}
		row.notef("%d tries: that file alone fails (\"output not saved: sync ….tmp: input/output error\" in failure.log and on stderr), no temporary or features file left, not called done; the others exact; --resume exact", len(targets))
	})
	t.Run("run folder", func(t *testing.T) {
		row := record(t, "I/O error (EIO) on every fsync of the run folder (strace's fault injection)", "run")
		out := t.TempDir()
		runDir := filepath.Join(out, "sync0")
		r := runCmd(t, mceBin, runArgs(d.files, "--out", out, "--job", "sync", "--no-progress"), straceInject(t, runDir))
		have := checkFailedHonestly(t, r, runDir, d, "sync "+runDir+": input/output error")
		if len(have) != 0 {
			t.Errorf("features files of %v, want none", have)
		}
		row.add(resumeExact(t, "run", runDir, d))
		row.notef("stopped before any file, exit %d: %q; nothing recorded done; --resume exact", r.code, strings.ReplaceAll(e2etest.LastLine(r.stderr), runDir, "RUNDIR"))
	})
	t.Run("reduce", func(t *testing.T) {
		needReduce(t)
		row := record(t, "I/O error (EIO) on the fsync of a features file (strace's fault injection)", "reduce")
		st := filepath.Join(t.TempDir(), "store")
		if r := runCmd(t, mceBin, []string{"--log-level", "warn", "partition", d.dir, "--out", st, "--mem", "16MiB"}); r.code != 0 {
			t.Fatalf("partition: exit %d\n%s", r.code, e2etest.Tail(r.stderr, 2000))
		}
		for _, in := range targets {
			out := t.TempDir()
			runDir := filepath.Join(out, "sync0")
			tmp := filepath.Join(runDir, fileid.FeaturesName(filepath.Base(in))) + ".tmp"
			r := runCmd(t, mceBin, []string{"reduce", "--store", st, "--out", out, "--job", "sync", "--no-progress"}, straceInject(t, tmp))
			if r.code == 0 {
				t.Errorf("%s: exit 0 although its fsync failed", filepath.Base(in))
			}
			have := checkFailedHonestly(t, r, runDir, d, "output not saved: sync "+tmp+": input/output error")
			if slices.Contains(have, filepath.Base(in)) {
				t.Errorf("%s: has a features file although its fsync failed", filepath.Base(in))
			}
			row.add(resumeExact(t, "reduce", runDir, d))
		}
		row.notef("%d tries: that file fails with \"output not saved: sync ….tmp: input/output error\", no temporary or features file left, not called done; --resume exact", len(targets))
	})
}

// resumeExact resumes the run of cmd in runDir without a fault and
// compares every features file with the truth.
func resumeExact(t *testing.T, cmd, runDir string, d *dataset) (lost, dup int64) {
	t.Helper()
	again := runCmd(t, mceBin, []string{cmd, "--resume", runDir, "--no-progress"})
	if again.code != 0 {
		t.Errorf("%s --resume: exit %d\n%s", cmd, again.code, e2etest.Tail(again.stderr, 2000))
	}
	lost, dup = checkRunOutputs(t, runDir, d)
	checkNoTemps(t, runDir)
	return lost, dup
}
