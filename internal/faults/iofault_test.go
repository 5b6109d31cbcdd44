package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/mce-engine/mce/internal/e2etest"
	"github.com/mce-engine/mce/internal/gen"
	"github.com/mce-engine/mce/partition"
)

// ioClass is a kind of filesystem operation a test makes fail: the
// operations and the files of the store it picks them on.
type ioClass struct {
	name  string
	kinds []errorfs.OpKind
	// where picks the files by their place in the store (see ioPlace).
	where func(place string, kind errorfs.OpKind) bool
}

// The places of a store's files, for ioClass.where.
const (
	placeScratch  = "scratch"  // tmp/: sort runs, tables before the ingest
	placeManifest = "manifest" // MANIFEST.json and its temporary
	placeDirs     = "dirs"     // the store directory and its parent
	placeDB       = "db"       // db/: pebble's database, the directory included
	placeOther    = "other"    // anything else (input files are not on this FS)
)

// ioPlace says where path is in the store st.
func ioPlace(st, path string) string {
	switch rel, err := filepath.Rel(st, path); {
	case err != nil || strings.HasPrefix(rel, ".."):
		if path == filepath.Dir(st) {
			return placeDirs
		}
		return placeOther
	case rel == ".":
		return placeDirs
	case rel == "tmp" || strings.HasPrefix(rel, "tmp/"):
		return placeScratch
	case strings.HasPrefix(rel, "MANIFEST.json"):
		return placeManifest
	case rel == "db" || strings.HasPrefix(rel, "db/"):
		return placeDB
	}
	return placeOther
}

var (
	writeKinds = []errorfs.OpKind{errorfs.OpCreate, errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpLink,
		errorfs.OpRename, errorfs.OpMkdirAll}
	readKinds = []errorfs.OpKind{errorfs.OpOpen, errorfs.OpFileRead, errorfs.OpFileReadAt, errorfs.OpFileStat,
		errorfs.OpStat, errorfs.OpList}
	syncKinds = []errorfs.OpKind{errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo}
)

// The classes. NB: a failed write or fsync of pebble's WAL or MANIFEST
// makes pebble call Logger.Fatalf, which exits the process (status 70,
// see store's pebbleLogger): such faults run in a child process
// (ioPebble), the others in the test's own.
var (
	// ioWrite: creating, writing, linking (the ingest) and renaming the
	// store's scratch files and MANIFEST.json; making its directories.
	ioWrite = &ioClass{name: "write", kinds: writeKinds, where: func(place string, kind errorfs.OpKind) bool {
		return place == placeScratch || place == placeManifest || (kind == errorfs.OpMkdirAll && place != placeOther)
	}}
	// ioRead: any read of any file of the store, pebble's included (a
	// read error is returned, never fatal).
	ioRead = &ioClass{name: "read", kinds: readKinds, where: func(place string, _ errorfs.OpKind) bool {
		return place != placeOther
	}}
	// ioSync: the fsyncs of the tables before their ingest, of
	// MANIFEST.json and of the store's directory.
	ioSync = &ioClass{name: "fsync", kinds: syncKinds, where: func(place string, _ errorfs.OpKind) bool {
		return place == placeScratch || place == placeManifest || place == placeDirs
	}}
	// ioPebble: writes and fsyncs of pebble's own files (WAL, MANIFEST-*,
	// OPTIONS, markers, its data directory).
	ioPebble = &ioClass{name: "pebble write or fsync", kinds: append(slices.Clone(writeKinds), syncKinds...),
		where: func(place string, _ errorfs.OpKind) bool { return place == placeDB }}
	ioClasses = []*ioClass{ioWrite, ioRead, ioSync, ioPebble}
)

func (c *ioClass) admits(st string, op errorfs.Op) bool {
	return slices.Contains(c.kinds, op.Kind) && c.where(ioPlace(st, op.Path), op.Kind)
}

// ioFault is an errorfs injector for the store st: it fails the n-th
// operation (from 0) of its class with EIO, as a disk that cannot read or
// write a sector does; with n < 0 it fails none. It counts every class's
// operations.
type ioFault struct {
	st    string
	class *ioClass
	n     int64

	counts [4]atomic.Int64 // by ioClasses index
	mu     sync.Mutex
	hit    string // the failed operation, "kind path"
}

func newIOFault(st string, class *ioClass, n int64) *ioFault {
	return &ioFault{st: st, class: class, n: n}
}

func (f *ioFault) String() string { return fmt.Sprintf("fail %s op %d", f.class.name, f.n) }

func (f *ioFault) MaybeError(op errorfs.Op) error {
	fail := false
	for i, c := range ioClasses {
		if c.admits(f.st, op) {
			k := f.counts[i].Add(1) - 1
			fail = fail || (c == f.class && k == f.n)
		}
	}
	if !fail {
		return nil
	}
	f.mu.Lock()
	f.hit = fmt.Sprintf("%s %s", opName(op.Kind), op.Path)
	f.mu.Unlock()
	return &fs.PathError{Op: opName(op.Kind), Path: op.Path, Err: syscall.EIO}
}

// count returns how many operations of class c it saw.
func (f *ioFault) count(c *ioClass) int64 { return f.counts[slices.Index(ioClasses, c)].Load() }

func (f *ioFault) failed() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hit
}

func opName(k errorfs.OpKind) string {
	switch k {
	case errorfs.OpCreate:
		return "create"
	case errorfs.OpLink:
		return "link"
	case errorfs.OpRename:
		return "rename"
	case errorfs.OpMkdirAll:
		return "mkdir"
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt:
		return "write"
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		return "fsync"
	case errorfs.OpList:
		return "readdir"
	case errorfs.OpStat, errorfs.OpFileStat:
		return "stat"
	case errorfs.OpOpen:
		return "open"
	}
	return "read"
}

// ioData is the dataset of the I/O fault tests, with what an incremental
// run needs: a folder of its first two files, and a user of those files
// that the second run forces into the heavy range (its stored blocks are
// then read back and moved, and the move's records written).
type ioData struct {
	*dataset
	first    []string // base names of the first run's files
	firstDir string
	moved    string
}

func newIOData(t *testing.T, seed uint64) *ioData {
	t.Helper()
	d := genData(t, gen.Options{Seed: seed, Files: 4, Size: gen.Size{Bytes: 3 << 20}})
	names := d.names()
	sort.Strings(names)
	x := &ioData{dataset: d, first: names[:2], firstDir: filepath.Join(filepath.Dir(d.dir), "first")}
	if err := os.Mkdir(x.firstDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range x.first {
		if err := os.Link(filepath.Join(d.dir, n), filepath.Join(x.firstDir, n)); err != nil {
			t.Fatal(err)
		}
	}
	// The user with the most rows in the first files that stays below
	// the heavy threshold there, and has rows in the others too.
	rows := map[string]int64{}
	for _, n := range x.first {
		for u, v := range d.truth[n] {
			rows[u] += v.rows
		}
	}
	for u, n := range rows {
		later := false
		for _, f := range names[2:] {
			_, ok := d.truth[f][u]
			later = later || ok
		}
		if later && n < ioHeavyMinRows && (x.moved == "" || n > rows[x.moved] || (n == rows[x.moved] && u < x.moved)) {
			x.moved = u
		}
	}
	if x.moved == "" {
		t.Fatal("no user to move to the heavy range")
	}
	return x
}

// ioHeavyMinRows makes the bank heavy in the first run already.
const ioHeavyMinRows = 500

// opts are partition's options of the I/O fault tests: a small memory
// budget, so that rows spill to sorted runs, and 16 shards; the first two
// files, or with all every file and the user to move.
func (x *ioData) opts(st string, all bool, fsys vfs.FS, logger *slog.Logger) partition.Options {
	o := partition.Options{
		Inputs: []string{x.firstDir}, Store: st, CPUs: 2, MemBytes: partition.MinMemBytes,
		HeavyMinRows: ioHeavyMinRows, Shards: 16, Logger: logger, FS: fsys,
	}
	if all {
		o.Inputs = []string{x.dir}
		o.HeavyUsers = []string{x.moved}
	}
	return o
}

// firstRun makes a store of the first two files, cleanly.
func (x *ioData) firstRun(t *testing.T, st string) {
	t.Helper()
	if _, err := partition.Run(context.Background(), x.opts(st, false, nil, quiet())); err != nil {
		t.Fatalf("first run: %v", err)
	}
}

// ioPoints picks n operations out of count, stratified (the i-th in the
// i-th n-th of them), with rng.
func ioPoints(rng *rand.Rand, count int64, n int) []int64 {
	out := make([]int64, 0, n)
	for i := range n {
		lo, hi := count*int64(i)/int64(n), count*int64(i+1)/int64(n)
		if hi <= lo {
			continue
		}
		out = append(out, lo+rng.Int64N(hi-lo))
	}
	return out
}

// ioCounts counts the operations of every class in a clean partition of
// a new store (first) and of the second run on a store of the first files.
func (x *ioData) ioCounts(t *testing.T) (newStore, adding *ioFault) {
	t.Helper()
	newStore = newIOFault(filepath.Join(t.TempDir(), "store"), ioWrite, -1)
	if _, err := partition.Run(context.Background(), x.opts(newStore.st, true, errorfs.Wrap(vfs.Default, newStore), quiet())); err != nil {
		t.Fatal(err)
	}
	adding = newIOFault(filepath.Join(t.TempDir(), "store"), ioWrite, -1)
	x.firstRun(t, adding.st)
	if _, err := partition.Run(context.Background(), x.opts(adding.st, true, errorfs.Wrap(vfs.Default, adding), quiet())); err != nil {
		t.Fatal(err)
	}
	return newStore, adding
}

// checkSaidDone checks that every file a partition Result calls ingested
// or skipped is recorded in the store (recorded: the store's files).
func checkSaidDone(t *testing.T, res *partition.Result, recorded []string) {
	t.Helper()
	if res == nil {
		return
	}
	for _, f := range res.Files {
		switch f.Status {
		case partition.StatusIngested, partition.StatusReplaced, partition.StatusSkipped:
			if !slices.Contains(recorded, f.Name) {
				t.Errorf("partition says %s is %s, but the store does not record it", f.Name, f.Status)
			}
		}
	}
}

// checkIOError checks that an error of an injected I/O fault is one line,
// names the store (every file of it lies under its directory) and says
// what the disk said.
func checkIOError(t *testing.T, what, msg, st string) {
	t.Helper()
	if strings.Contains(msg, "\n") {
		t.Errorf("%s: the error spans lines:\n%s", what, msg)
	}
	if !strings.Contains(msg, st) {
		t.Errorf("%s: the error does not name the store %s: %s", what, st, msg)
	}
	if !strings.Contains(msg, syscall.EIO.Error()) {
		t.Errorf("%s: the error does not say %q: %s", what, syscall.EIO.Error(), msg)
	}
}

// TestIOErrors_partition makes one write, read or fsync of the store fail
// with EIO at seeded points of a partition (pebble's vfs/errorfs around
// the store's filesystem), in a new store and while files are added to
// one (with a user moved to the heavy range): partition must fail with
// one line naming the store (or finish, when the failed operation was not
// needed), record as done only files it holds exactly, and a rerun must
// complete the store exactly.
func TestIOErrors_partition(t *testing.T) {
	x := newIOData(t, 51)
	newStore, adding := x.ioCounts(t)
	rng := killRand(51)
	for _, c := range []*ioClass{ioWrite, ioRead, ioSync} {
		t.Run(c.name, func(t *testing.T) {
			row := record(t, fmt.Sprintf("I/O error (EIO) on a seeded %s of the store (errorfs)", c.name), "partition")
			failed, finished := 0, 0
			for _, second := range []bool{false, true} {
				total := newStore.count(c)
				if second {
					total = adding.count(c)
				}
				for _, n := range ioPoints(rng, total, max(1, points()/2)) {
					st := filepath.Join(t.TempDir(), "store")
					if second {
						x.firstRun(t, st)
					}
					fault := newIOFault(st, c, n)
					res, err := partition.Run(context.Background(), x.opts(st, true, errorfs.Wrap(vfs.Default, fault), quiet()))
					what := fmt.Sprintf("%s %d of %d (%s)", c.name, n, total, fault.failed())
					if err != nil {
						failed++
						checkIOError(t, what, err.Error(), st)
					} else {
						finished++
					}
					var want []string
					if second {
						want = x.first // the first run's files stay whatever happens
					}
					recorded, lost, dup := checkStore(t, st, x.dataset, want)
					checkSaidDone(t, res, recorded)
					if _, err := partition.Run(context.Background(), x.opts(st, true, nil, quiet())); err != nil {
						t.Errorf("%s: rerun: %v", what, err)
						row.add(x.rows(), 0)
						continue
					}
					_, l, du := checkStore(t, st, x.dataset, x.names())
					row.add(lost+l, dup+du)
					t.Logf("%s: err %v; %d files kept, then exact", what, err, len(recorded))
				}
			}
			row.notef("%d failed with one line naming the store and EIO, %d finished (the failed operation was not needed); files kept exact, reruns exact", failed, finished)
		})
	}
}

// TestIOErrors_storeRead makes one read of a store fail with EIO at
// seeded points while it is read back as reduce reads it (every user of
// every shard, then Verify): the read must fail with one line naming the
// store, or give exactly the truth; never other rows.
func TestIOErrors_storeRead(t *testing.T) {
	row := record(t, "I/O error (EIO) on a seeded read of the store (errorfs), while it is read", "store reader")
	x := newIOData(t, 52)
	st := filepath.Join(t.TempDir(), "store")
	if _, err := partition.Run(context.Background(), x.opts(st, true, nil, quiet())); err != nil {
		t.Fatal(err)
	}
	count := newIOFault(st, ioRead, -1)
	if _, _, _, err := scanStore(errorfs.Wrap(vfs.Default, count), st); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, n := range ioPoints(killRand(52), count.count(ioRead), points()) {
		fault := newIOFault(st, ioRead, n)
		got, files, problems, err := scanStore(errorfs.Wrap(vfs.Default, fault), st)
		what := fmt.Sprintf("read %d (%s)", n, fault.failed())
		if err != nil {
			failed++
			// EachUser joins the errors of its spans, one line each.
			for _, line := range strings.Split(err.Error(), "\n") {
				checkIOError(t, what, line, st)
			}
			row.add(0, 0)
			continue
		}
		if len(problems) > 0 {
			t.Errorf("%s: verify: %s", what, strings.Join(problems, "; "))
		}
		var lost, dup int64
		for _, f := range x.names() {
			perUser := map[string]tally{}
			for k, v := range got {
				if k.file == f {
					perUser[k.user] = v
				}
			}
			l, du := compare(what+" "+f, perUser, x.truth[f], t.Errorf)
			lost += l
			dup += du
		}
		if len(files) != len(x.names()) {
			t.Errorf("%s: %d files read, want %d", what, len(files), len(x.names()))
		}
		row.add(lost, dup)
	}
	row.notef("%d of %d reads failed with one line naming the store and EIO; the others read the truth exactly", failed, points())
}

// ioChildEnv makes the test binary a child that runs one partition with
// an injected fault (see ioChild), for the faults that end the process.
const ioChildEnv = "MCE_FAULTS_IO_CHILD"

// ioChildSpec is what the parent tells the child.
type ioChildSpec struct {
	Store    string   `json:"store"`
	Inputs   []string `json:"inputs"`
	Heavy    []string `json:"heavy"`
	N        int64    `json:"n"`
	FirstDir string   `json:"first_dir"`
}

// ioChild is the child's body: partition with the n-th write or fsync of
// pebble's files failing. It exits 0 when partition succeeds, 1 with an
// "mce: " line when it returns an error, and pebble's fatal errors exit
// with status 70 (store's pebbleLogger).
func ioChild(v string) {
	var sp ioChildSpec
	if err := json.Unmarshal([]byte(v), &sp); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", ioChildEnv, err)
		os.Exit(2)
	}
	x := &ioData{dataset: &dataset{dir: sp.Inputs[0]}, firstDir: sp.FirstDir}
	if len(sp.Heavy) > 0 {
		x.moved = sp.Heavy[0]
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fault := newIOFault(sp.Store, ioPebble, sp.N)
	if _, err := partition.Run(context.Background(), x.opts(sp.Store, true, errorfs.Wrap(vfs.Default, fault), logger)); err != nil {
		fmt.Fprintf(os.Stderr, "mce: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestIOErrors_pebbleFiles makes one write or fsync of pebble's own files
// (WAL, MANIFEST-*, OPTIONS, markers, the data directory) fail with EIO
// at seeded points, in a child process: pebble cannot go on after a failed
// WAL or MANIFEST write (it cannot tell whether the write happened) and
// stops the process. The child must end with status 70 and one line
// naming the store, or status 1 and one line naming it, or finish; the
// store must hold every file it records exactly, and a rerun complete it.
func TestIOErrors_pebbleFiles(t *testing.T) {
	row := record(t, "I/O error (EIO) on a seeded write or fsync of pebble's WAL, MANIFEST or directory (errorfs, child process)", "partition")
	x := newIOData(t, 53)
	newStore, adding := x.ioCounts(t)
	rng := killRand(53)
	codes := map[int]int{}
	for _, second := range []bool{false, true} {
		total := newStore.count(ioPebble)
		if second {
			total = adding.count(ioPebble)
		}
		for _, n := range ioPoints(rng, total, max(1, points()/2)) {
			st := filepath.Join(t.TempDir(), "store")
			if second {
				x.firstRun(t, st)
			}
			sp, _ := json.Marshal(ioChildSpec{Store: st, Inputs: []string{x.dir}, Heavy: []string{x.moved}, N: n, FirstDir: x.firstDir})
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), ioChildEnv+"="+string(sp))
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			codes[code]++
			what := fmt.Sprintf("pebble write or fsync %d of %d", n, total)
			stderr := strings.TrimSpace(string(out))
			switch code {
			case 0:
			case 1, 70:
				line := e2etest.LastLine(stderr)
				checkIOError(t, what, line, st)
				if code == 70 && !strings.Contains(line, "cannot go on") {
					t.Errorf("%s: exit 70 without the line that says why: %s", what, line)
				}
				for _, bad := range []string{"goroutine ", "panic:", "Wraps:", "stack trace"} {
					if strings.Contains(stderr, bad) {
						t.Errorf("%s: stderr holds %q:\n%s", what, bad, e2etest.Tail(stderr, 2000))
					}
				}
			default:
				t.Errorf("%s: exit %d\n%s", what, code, e2etest.Tail(stderr, 2000))
			}
			var want []string
			if second {
				want = x.first
			}
			recorded, lost, dup := checkStore(t, st, x.dataset, want)
			if _, err := partition.Run(context.Background(), x.opts(st, true, nil, quiet())); err != nil {
				t.Errorf("%s: rerun: %v", what, err)
				row.add(x.rows(), 0)
				continue
			}
			_, l, du := checkStore(t, st, x.dataset, x.names())
			row.add(lost+l, dup+du)
			t.Logf("%s: exit %d (%s); %d files kept, then exact", what, code, e2etest.LastLine(stderr), len(recorded))
		}
	}
	row.notef("child exits: %d stopped by pebble (status 70, one line naming the store), %d failed (status 1, one line), %d finished; files kept exact, reruns exact",
		codes[70], codes[1], codes[0])
}
