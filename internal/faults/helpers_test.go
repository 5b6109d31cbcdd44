package faults

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/engine/report"
	"github.com/mce-engine/mce/internal/e2etest"
	"github.com/mce-engine/mce/internal/fileid"
	"github.com/mce-engine/mce/internal/gen"
	"github.com/mce-engine/mce/store"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// tally is what one file holds for one user: rows and amount in cents.
type tally struct{ rows, cents int64 }

// dataset is a folder of input files with their truth.
type dataset struct {
	dir   string
	files []string                    // absolute paths, largest first
	truth map[string]map[string]tally // file base name -> user -> tally
}

// names returns the base names of the dataset's files.
func (d *dataset) names() []string {
	var out []string
	for _, f := range d.files {
		out = append(out, filepath.Base(f))
	}
	return out
}

// rows returns the number of rows the truth holds for the named files
// (all when none is named).
func (d *dataset) rows(only ...string) int64 {
	var n int64
	for f, users := range d.truth {
		if len(only) > 0 && !slices.Contains(only, f) {
			continue
		}
		for _, x := range users {
			n += x.rows
		}
	}
	return n
}

// userOnlyIn returns a user found in file base and in no other file of
// the dataset, one with at least minRows rows there.
func (d *dataset) userOnlyIn(t *testing.T, base string, minRows int64) string {
	t.Helper()
	var found []string
	for u, x := range d.truth[base] {
		if x.rows < minRows {
			continue
		}
		alone := true
		for f, users := range d.truth {
			if _, ok := users[u]; ok && f != base {
				alone = false
				break
			}
		}
		if alone {
			found = append(found, u)
		}
	}
	if len(found) == 0 {
		t.Fatalf("no user with %d rows is found in %s only", minRows, base)
	}
	sort.Strings(found)
	return found[0]
}

// genData generates invoice files into a new folder (the truth files are
// moved out of it, so that the folder holds inputs only).
func genData(t *testing.T, o gen.Options) *dataset {
	t.Helper()
	root := t.TempDir()
	o.Dir = filepath.Join(root, "data")
	o.NoSync = true
	o.Logger = quiet()
	s, err := gen.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := gen.ReadTruth(o.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{gen.TruthFile, gen.TruthFilesFile} {
		if err := os.Rename(filepath.Join(o.Dir, n), filepath.Join(root, n)); err != nil {
			t.Fatal(err)
		}
	}
	d := &dataset{dir: o.Dir, truth: map[string]map[string]tally{}}
	for _, f := range s.Files {
		d.files = append(d.files, filepath.Join(o.Dir, f.Name))
		d.truth[f.Name] = map[string]tally{}
	}
	sortBySize(t, d.files)
	for _, x := range tr {
		d.truth[x.File][x.User] = tally{x.Rows, x.AmountCents}
	}
	return d
}

// sortBySize sorts paths largest first (ties by name), as mce plans them.
func sortBySize(t *testing.T, paths []string) {
	t.Helper()
	size := map[string]int64{}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		size[p] = st.Size()
	}
	sort.SliceStable(paths, func(i, j int) bool {
		if size[paths[i]] != size[paths[j]] {
			return size[paths[i]] > size[paths[j]]
		}
		return paths[i] < paths[j]
	})
}

// result is how a command ended.
type result struct {
	stdout, stderr string
	code           int // exit status; -1 when killed by a signal
	signaled       bool
	runDir         string // from the "run folder: DIR" line
	took           time.Duration
}

var runFolderRE = regexp.MustCompile(`(?m)^run folder: (.*)$`)

func finish(t *testing.T, cmd *exec.Cmd, err error, so, se *bytes.Buffer, t0 time.Time) result {
	t.Helper()
	r := result{stdout: so.String(), stderr: se.String(), took: time.Since(t0)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.signaled = true
		}
	default:
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	if m := runFolderRE.FindStringSubmatch(r.stdout); m != nil {
		r.runDir = m[1]
	}
	return r
}

// command makes the command line of a binary; setup may change it
// (environment, credentials) before it starts.
func command(bin string, args []string, setup ...func(*exec.Cmd)) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	for _, f := range setup {
		f(cmd)
	}
	return cmd
}

// runCmd runs a binary to completion (at most two minutes).
func runCmd(t *testing.T, bin string, args []string, setup ...func(*exec.Cmd)) result {
	t.Helper()
	cmd := command(bin, args, setup...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	r := finish(t, cmd, err, &so, &se, t0)
	if r.signaled {
		t.Fatalf("%s %s: killed (timeout?)\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), e2etest.Tail(r.stderr, 3000))
	}
	if testing.Verbose() {
		t.Logf("%s %s: exit %d in %.2f s\nstdout:\n%s", filepath.Base(bin), strings.Join(args, " "), r.code, r.took.Seconds(), r.stdout)
	}
	checkNoOrphans(t, bin, mceBin, mceFaultBin, faultyBin)
	return r
}

// runKilled starts a binary, SIGKILLs it after delay unless it exits
// first, and waits for it. killed reports whether the signal came first.
func runKilled(t *testing.T, bin string, args []string, delay time.Duration, setup ...func(*exec.Cmd)) (r result, killed bool) {
	t.Helper()
	cmd := command(bin, args, setup...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(delay):
		cmd.Process.Signal(syscall.SIGKILL)
		err = <-done
	}
	r = finish(t, cmd, err, &so, &se, t0)
	if !r.signaled && r.code != 0 {
		t.Errorf("%s %s: exit %d before the kill\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), r.code, e2etest.Tail(r.stderr, 3000))
	}
	// Its clusters die with it (PR_SET_PDEATHSIG); give a large heap a
	// moment to go.
	checkNoOrphans(t, bin, mceBin, mceFaultBin, faultyBin)
	return r, r.signaled
}

// readFeatures reads a features file's user, invoice_count and
// amount_total. A user listed twice (or out of order) counts all its
// rows but the first listing's in dup.
func readFeatures(path string) (got map[string]tally, dup int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	hdr, err := r.Read()
	if err != nil {
		return nil, 0, fmt.Errorf("%s: header: %w", path, err)
	}
	// The key column is named after the input's user column.
	if len(hdr) < 3 || hdr[0] == "" || hdr[1] != "invoice_count" || hdr[2] != "amount_total" {
		return nil, 0, fmt.Errorf("%s: header %q", path, hdr)
	}
	got = map[string]tally{}
	prev := ""
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return got, dup, fmt.Errorf("%s: %w", path, err)
		}
		n, err1 := strconv.ParseInt(rec[1], 10, 64)
		a, err2 := strconv.ParseFloat(rec[2], 64)
		if err1 != nil || err2 != nil {
			return got, dup, fmt.Errorf("%s: bad line %q", path, rec)
		}
		if len(got) > 0 && rec[0] <= prev {
			if _, seen := got[rec[0]]; seen {
				dup += n
				continue
			}
			return got, dup, fmt.Errorf("%s: users not sorted: %q after %q", path, rec[0], prev)
		}
		prev = rec[0]
		got[rec[0]] = tally{n, int64(math.Round(a * 100))}
	}
	return got, dup, nil
}

// compare counts the rows lost and duplicated in got against want and
// reports up to three differences through errorf.
func compare(what string, got, want map[string]tally, errorf func(string, ...any)) (lost, dup int64) {
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 3 {
			errorf(what+": "+format, args...)
		}
	}
	for u, w := range want {
		g, ok := got[u]
		switch {
		case !ok:
			lost += w.rows
			report("user %q missing (%d rows)", u, w.rows)
		case g != w:
			if g.rows < w.rows {
				lost += w.rows - g.rows
			} else {
				dup += g.rows - w.rows
			}
			report("user %q: %d rows, %d cents; want %d rows, %d cents", u, g.rows, g.cents, w.rows, w.cents)
		}
	}
	for u, g := range got {
		if _, ok := want[u]; !ok {
			dup += g.rows
			report("user %q (%d rows) is not in the truth", u, g.rows)
		}
	}
	if bad > 3 {
		errorf("%s: %d users differ from the truth", what, bad)
	}
	return lost, dup
}

// checkRunOutputs compares the features files in runDir of the named
// inputs (base names; all of the dataset's when none) with the truth; a
// missing features file loses all its rows.
func checkRunOutputs(t *testing.T, runDir string, d *dataset, only ...string) (lost, dup int64) {
	t.Helper()
	names := only
	if len(names) == 0 {
		names = d.names()
	}
	for _, name := range names {
		l, du := checkFeaturesFile(t, filepath.Join(runDir, fileid.FeaturesName(name)), d.truth[name])
		lost += l
		dup += du
	}
	return lost, dup
}

func checkFeaturesFile(t *testing.T, path string, want map[string]tally) (lost, dup int64) {
	t.Helper()
	got, d, err := readFeatures(path)
	if err != nil {
		t.Error(err)
		for _, w := range want {
			lost += w.rows
		}
		return lost, 0
	}
	if d > 0 {
		t.Errorf("%s: %d rows of users listed twice", path, d)
	}
	l, du := compare(filepath.Base(path), got, want, t.Errorf)
	return l, du + d
}

// completeOutputs checks that every features file in runDir (complete by
// its name) is exact, and returns the inputs' base names it has.
func completeOutputs(t *testing.T, runDir string, d *dataset) []string {
	t.Helper()
	byOutput := map[string]string{}
	for _, n := range d.names() {
		byOutput[fileid.FeaturesName(n)] = n
	}
	ents, _ := os.ReadDir(runDir)
	var have []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), fileid.FeaturesSuffix) {
			continue
		}
		in, ok := byOutput[e.Name()]
		if !ok {
			t.Errorf("%s: a features file of no input", e.Name())
			continue
		}
		if l, du := checkFeaturesFile(t, filepath.Join(runDir, e.Name()), d.truth[in]); l+du > 0 {
			t.Errorf("%s looks complete but is not: %d rows lost, %d duplicated", e.Name(), l, du)
		}
		have = append(have, in)
	}
	sort.Strings(have)
	return have
}

// checkNoTemps fails when runDir holds a temporary output.
func checkNoTemps(t *testing.T, runDir string) {
	t.Helper()
	tmps, _ := filepath.Glob(filepath.Join(runDir, "*"+output.TempSuffix))
	if len(tmps) > 0 {
		t.Errorf("temporary files left in %s: %v", runDir, tmps)
	}
}

// checkSummaryHonest checks that summary.json (when there is one) calls
// no task done or skipped whose output is missing, unless that output was
// an intermediate (an earlier phase's) and every task of the later phases
// is done with its output there: then it was consumed and removed, as
// `mce reduce` removes its part files at the end.
func checkSummaryHonest(t *testing.T, runDir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(runDir, engine.SummaryJSON)); err != nil {
		return
	}
	s := e2etest.ReadSummary(t, runDir)
	exists := func(ts engine.TaskSummary) bool {
		_, err := os.Stat(filepath.Join(runDir, ts.Output))
		return err == nil
	}
	complete := func(ts engine.TaskSummary) bool {
		return (ts.Status == engine.TaskDone || ts.Status == engine.TaskSkipped) && exists(ts)
	}
	consumed := func(ts engine.TaskSummary) bool {
		later := false
		for _, u := range s.Tasks {
			if u.Phase > ts.Phase {
				if !complete(u) {
					return false
				}
				later = true
			}
		}
		return later
	}
	for _, ts := range s.Tasks {
		if ts.Status != engine.TaskDone && ts.Status != engine.TaskSkipped {
			continue
		}
		if !exists(ts) && !consumed(ts) {
			t.Errorf("summary.json says %s is %s, but %s is missing", ts.Input, ts.Status, ts.Output)
		}
	}
}

// checkReportReadsAll checks the run's report.html, written at the run's
// end: its footer must not say that a line of the run folder's files was
// not understood. Every line the engine writes, after kills, crashes and
// retries too, is one the report reads.
func checkReportReadsAll(t *testing.T, runDir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runDir, report.FileName))
	if err != nil {
		t.Errorf("no report: %v", err)
		return
	}
	footer := string(b)
	if i := strings.LastIndex(footer, "Drawn from "); i >= 0 {
		footer, _, _ = strings.Cut(footer[i:], "</p>")
	}
	if strings.Contains(footer, "not understood") {
		t.Errorf("report.html: %s\nstatus.log:\n%s", regexp.MustCompile(`<[^>]*>`).ReplaceAllString(footer, ""), e2etest.ReadLog(t, runDir, "status.log"))
	}
}

// waitFor polls cond every 10 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	for end := time.Now().Add(timeout); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// fu is a (file, user) pair.
type fu struct{ file, user string }

// readStore reads every row of a store on fs: per recorded file and user
// the rows and cents. A row out of file order within a user is an error.
func readStore(t *testing.T, fs vfs.FS, dir string) (got map[fu]tally, files []string) {
	t.Helper()
	got, files, problems, err := scanStore(fs, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Errorf("verify %s: %s", dir, strings.Join(problems, "\n"))
	}
	return got, files
}

// scanStore opens a store on fs read-only, reads every row of it (per
// recorded file and user the rows and cents) and verifies it (decoding
// every block); problems are what Verify reports. It returns the first
// error of the open, the reads or Verify.
func scanStore(fs vfs.FS, dir string) (got map[fu]tally, files, problems []string, err error) {
	db, err := store.Open(dir, &store.Options{ReadOnly: true, Logger: quiet(), FS: fs})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("store %s does not open: %w", dir, err)
	}
	defer db.Close()
	names := map[store.FileID]string{}
	for _, f := range db.Files() {
		names[f.ID] = f.Name
		files = append(files, f.Name)
	}
	sort.Strings(files)
	amount := slices.Index(db.Config().Schema, feature.ColAmount)
	got = map[fu]tally{}
	err = e2etest.EachUser(context.Background(), db, func() map[fu]tally { return map[fu]tally{} },
		func(local map[fu]tally, u *store.UserIter) error {
			rows := u.Rows()
			for rows.Next() {
				c, err := gen.ParseCents(string(rows.Field(amount)))
				if err != nil {
					return err
				}
				name, ok := names[rows.File()]
				if !ok {
					name = fmt.Sprintf("unrecorded file #%d", rows.File())
				}
				k := fu{name, string(u.User())}
				x := local[k]
				x.rows++
				x.cents += c
				local[k] = x
			}
			return rows.Err()
		},
		func(local map[fu]tally) error {
			for k, v := range local {
				x := got[k]
				x.rows += v.rows
				x.cents += v.cents
				got[k] = x
			}
			return nil
		})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read store %s: %w", dir, err)
	}
	rep, err := db.Verify(context.Background(), store.VerifyOptions{Decode: true})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("verify %s: %w", dir, err)
	}
	return got, files, rep.Problems, nil
}

// checkStore compares a store with the truth of the files it records
// (which must be among want when want is set) and returns the rows lost
// and duplicated against the files in want. A store that was never made
// (no manifest) records nothing.
func checkStore(t *testing.T, dir string, d *dataset, want []string) (recorded []string, lost, dup int64) {
	t.Helper()
	return checkStoreFS(t, vfs.Default, dir, d, want)
}

// checkStoreFS is checkStore for a store on fs.
func checkStoreFS(t *testing.T, fs vfs.FS, dir string, d *dataset, want []string) (recorded []string, lost, dup int64) {
	t.Helper()
	if _, err := fs.Stat(filepath.Join(dir, "MANIFEST.json")); err != nil {
		if db, err := store.Open(dir, &store.Options{ReadOnly: true, Logger: quiet(), FS: fs}); err == nil {
			db.Close()
			t.Errorf("store %s opens without a manifest", dir)
		}
		if len(want) > 0 {
			lost = d.rows(want...)
			t.Errorf("store %s was never made", dir)
		}
		return nil, lost, 0
	}
	got, files := readStore(t, fs, dir)
	perFile := map[string]map[string]tally{}
	for k, v := range got {
		if perFile[k.file] == nil {
			perFile[k.file] = map[string]tally{}
		}
		perFile[k.file][k.user] = v
	}
	for _, f := range files {
		if _, ok := d.truth[f]; !ok {
			t.Errorf("store %s records %s, not an input", dir, f)
		}
	}
	for f, users := range perFile {
		if !slices.Contains(files, f) {
			var n int64
			for _, x := range users {
				n += x.rows
			}
			t.Errorf("store %s holds %d rows of %s, which its manifest does not record", dir, n, f)
			dup += n
		}
	}
	for _, f := range files {
		l, du := compare("store "+f, perFile[f], d.truth[f], t.Errorf)
		if l+du > 0 {
			t.Errorf("store %s records %s, which it does not hold exactly", dir, f)
		}
		lost += l
		dup += du
	}
	for _, f := range want {
		if !slices.Contains(files, f) {
			lost += d.rows(f)
			t.Errorf("store %s lacks %s", dir, f)
		}
	}
	return files, lost, dup
}
