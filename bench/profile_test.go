package bench

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mce-engine/mce/internal/csvread"
)

func TestFrameName(t *testing.T) {
	for in, want := range map[string]string{
		"github.com/mce-engine/mce/store.putTime":                                    "github.com/mce-engine/mce/store.putTime",
		"  github.com/mce-engine/mce/engine/feature.isASCII (inline)":                "github.com/mce-engine/mce/engine/feature.isASCII",
		"slices.partitionCmpFunc[go.shape.struct { github.com/mce-engine/mce/x }]":   "slices.partitionCmpFunc",
		"pebble/v2/sstable.(*singleLevelIterator[go.shape.a,go.shape.[]b]).Next":     "pebble/v2/sstable.(*singleLevelIterator).Next",
		"internal/runtime/atomic.(*Pointer[go.shape.struct { x [512]y }]).StoreNoWB": "internal/runtime/atomic.(*Pointer).StoreNoWB",
	} {
		if got := frameName(in); got != want {
			t.Errorf("frameName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	const m = "github.com/mce-engine/mce/"
	for _, c := range []struct {
		system string
		frames []string // leaf first
		want   string
	}{
		// A value the reader checks with a plain engine/feature function
		// is the parse's; the same function under the features' Add is
		// theirs.
		{SysRun, []string{m + "engine/feature.ParseAmount", m + "internal/csvread.(*File).sniffValues.amountNormalizer.func1", m + "internal/csvread.(*parser).row", m + "internal/csvread.(*File).work"},
			"parse the CSV and check its values"},
		{SysRun, []string{m + "engine/feature.ParseDecimal", m + "engine/feature.(*invoiceAgg).Add", m + "engine/inram.(*streamJob).addRange", m + "internal/csvread.(*File).work"},
			"the features (Add, Finish; their parses)"},
		{SysRun, []string{m + "engine/feature.appendDecimal4", m + "engine/feature.(*Record).AppendField", m + "engine/output.LineFormat.AppendRecord", m + "engine/inram.(*streamJob).Finish.func4.1"},
			"write the features files (format, sort, write)"},
		{SysRun, []string{"internal/runtime/syscall/linux.Syscall6", "syscall.read", "os.(*File).Read", m + "internal/csvread.(*diskReader).Read", m + "internal/csvread.readFull", m + "internal/csvread.(*File).split"},
			"read the files (read(2) from the page cache)"},
		{SysRun, []string{m + "internal/prefetch.Lines", m + "engine/inram.(*streamJob).addRange", m + "internal/csvread.(*File).work"},
			"one pass: route rows, find the user, the tables"},
		{SysRun, []string{"runtime.scanobject", "runtime.gcDrain", "runtime.gcAssistAlloc", "runtime.mallocgc", m + "engine/feature.(*invoiceAgg).table"},
			"the garbage collector"},
		{SysRun, []string{"runtime.futex", "runtime.notesleep", "runtime.mstart"}, restPhase},
		{SysPartition, []string{"github.com/minio/minlz.encodeBlockAsm", "github.com/cockroachdb/pebble/v2/sstable/block.CompressAndChecksum", "github.com/cockroachdb/pebble/v2/sstable.(*RawColumnWriter).Add", m + "store.(*Stream).AddBlock", m + "partition.(*taskWriter).writeGroup"},
			"compress the tables' blocks (MinLZ, zstd)"},
		{SysPartition, []string{"runtime.memmove", m + "partition.(*sorter).add", m + "partition.(*job).readFile.func1", m + "internal/csvread.(*File).work"},
			"route rows into the sort buffers"},
		{SysPartition, []string{"slices.partitionCmpFunc[go.shape.struct { github.com/mce-engine/mce/partition.pfx uint64 }]", "slices.pdqsortCmpFunc", m + "partition.sortEntries"},
			"sort the buffers"},
		{SysPartition, []string{"syscall.write", "os.(*File).Write", "bufio.(*Writer).Flush", m + "partition.(*runWriter).writeFrame", m + "partition.writeRun.func1"},
			"spill sorted runs"},
		{SysPartition, []string{m + "partition.(*runReader).uvarint", m + "partition.(*runReader).nextRow", m + "partition.(*groupMerge).nextRow", m + "partition.(*mergeJob).mergeTask"},
			"read the runs back and merge them"},
		{SysPartition, []string{m + "store.appendUUIDs", m + "store.(*BlockWriter).AppendValue", m + "partition.(*taskWriter).writeGroup"},
			"encode the store's blocks"},
		{SysReduce, []string{"syscall.pread", "os.(*File).ReadAt", "github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider.(*vfsReadHandle).ReadAt", "github.com/cockroachdb/pebble/v2/sstable/block.(*Reader).doRead", m + "store.(*Iter).Next"},
			"read table blocks (pread(2) from the page cache)"},
		{SysReduce, []string{"github.com/cockroachdb/pebble/v2/internal/manual._Cfunc_calloc", "github.com/cockroachdb/pebble/v2/internal/manual.New", "github.com/cockroachdb/pebble/v2/internal/cache.Alloc", m + "store.(*Iter).Next"},
			"the block cache's buffers (C calloc and free)"},
		{SysReduce, []string{"syscall.pread", "os.(*File).ReadAt", m + "internal/keyruns.(*Reader).fill", m + "internal/keyruns.Merge", m + "reduce.mergeSection"},
			"part files: write them, merge them"},
		{SysReduce, []string{m + "store.putTime", m + "store.(*Block).decodePacked", m + "store.(*Iter).Decode", m + "reduce.(*userRows).advance"},
			"decode the store's blocks"},
		{SysReduce, []string{m + "reduce.(*groupWorker).count", m + "reduce.(*groupWorker).reduceGroup"},
			"hand users' rows to the features"},
		// A Reduce-form f.go: its own code (in the package mce builds it
		// into) and the feature API it calls are one phase; the rows the
		// engine hands it are the grouping's, or the store's.
		{SysRunReduce, []string{"runtime.mapassign_faststr", m + "cmd/mcefeatures_a240e16b648d3cfc8e723a0e/userfeatures.reduce", m + "engine/feature.Guard", m + "engine/inram.(*groupJob).reduceWorker"},
			"the f.go's Reduce (its code, the feature API it calls)"},
		{SysRunReduce, []string{m + "engine/feature.ParseDecimal", m + "engine/feature.(*Row).Decimal", m + "cmd/mcefeatures_a240e16b648d3cfc8e723a0e/userfeatures.reduce"},
			"the f.go's Reduce (its code, the feature API it calls)"},
		{SysRunReduce, []string{m + "internal/prefetch.Lines", m + "engine/inram.(*arenaRows).Next", m + "cmd/mcefeatures_a240e16b648d3cfc8e723a0e/userfeatures.reduce"},
			"group: route rows, index the users, hand their rows over"},
		{SysRunReduce, []string{m + "engine/feature.appendDecimal4", m + "engine/feature.(*Record).AppendField", m + "engine/output.LineFormat.AppendRecord", m + "engine/inram.(*groupJob).reduceWorker"},
			"write the features files (format, sort, write)"},
		{SysReduceReduce, []string{m + "store.putTime", m + "store.(*Block).decodePacked", m + "store.(*Rows).Next", m + "reduce.(*userRows).Next", m + "cmd/mcefeatures_a240e16b648d3cfc8e723a0e/userfeatures.reduce"},
			"decode the store's blocks"},
		{SysReduceReduce, []string{"runtime.slicebytetostring", m + "engine/feature.(*Row).String", m + "cmd/mcefeatures_a240e16b648d3cfc8e723a0e/userfeatures.reduce", m + "reduce.(*groupWorker).reduceGroup"},
			"the f.go's Reduce (its code, the feature API it calls)"},
	} {
		if got := classify(phaseRules()[c.system], c.frames); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.system, c.frames[0], got, c.want)
		}
	}
}

// TestReadTraces reads stacks cut from a real `go tool pprof -traces` of
// mce reduce (testdata/reduce-traces.txt).
func TestReadTraces(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "reduce-traces.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rules := phaseRules()[SysReduce]
	by, err := readTraces(f, rules)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		restPhase: 0.010, // the scheduler's wakep
		"read table blocks (pread(2) from the page cache)": 0.040,
		"decode the store's blocks":                        0.010,
		"the features (Add, Finish; their parses)":         0.010,
		"decompress table blocks (MinLZ, zstd)":            0.010,
		"write the features files (format, write)":         0.010,
		"part files: write them, merge them":               0.010,
		"the garbage collector":                            0.010, // a sweep at the mark's end
	}
	for name, s := range want {
		if math.Abs(by[name]-s) > 1e-9 {
			t.Errorf("%s: %.3f s, want %.3f", name, by[name], s)
		}
	}
	if len(by) != len(want) {
		t.Errorf("phases %v, want %v", by, want)
	}
	ps := phasesOf(rules, by, 2)
	if len(ps) != len(rules)+1 || ps[len(ps)-1].Name != restPhase {
		t.Fatalf("phasesOf: %v", ps)
	}
	p := &Profile{Phases: ps}
	if got := p.Total(); math.Abs(got-0.055) > 1e-9 {
		t.Errorf("total per run %.3f, want 0.055 (0.110 over 2 runs)", got)
	}

	if _, err := readTraces(strings.NewReader("File: mce\nType: cpu\n"), rules); err == nil {
		t.Error("no samples: no error")
	}
	if _, err := readTraces(strings.NewReader("-----------+----\n      1.2.3ms   main.f\n"), rules); err == nil {
		t.Error("a bad value: no error")
	}
}

// TestProfile_realParse profiles mce's CSV reader at work in this process,
// reads the profile with `go tool pprof -traces` as the bench does, and
// checks that the run's phases put the reading and parsing first.
func TestProfile_realParse(t *testing.T) {
	if testing.Short() {
		t.Skip("profiles half a second of parsing")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	paths := writeInvoices(t, t.TempDir(), 1, 20000, 3)
	prof := filepath.Join(t.TempDir(), "cpu.pprof")
	pf, err := os.Create(prof)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(pf); err != nil {
		t.Fatal(err)
	}
	var rows atomic.Int64
	start := time.Now()
	for time.Since(start) < 500*time.Millisecond {
		f, err := csvread.Open(paths[0], csvread.Options{MaxBadRowShare: -1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Scan(context.Background(), 1, func(b *csvread.Batch) error {
			rows.Add(int64(b.Len()))
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	pprof.StopCPUProfile()
	if err := pf.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goBin, "tool", "pprof", "-traces", prof).Output()
	if err != nil {
		t.Fatalf("go tool pprof -traces: %v", err)
	}
	by, err := readTraces(strings.NewReader(string(out)), phaseRules()[SysRun])
	if err != nil {
		t.Fatal(err)
	}
	p := &Profile{Phases: phasesOf(phaseRules()[SysRun], by, 1)}
	reader := by["parse the CSV and check its values"] + by["read the files (read(2) from the page cache)"]
	if p.Total() < 0.1 || reader < 0.6*p.Total() {
		t.Errorf("%d rows parsed; reading and parsing %.3f of %.3f CPU s: %v", rows.Load(), reader, p.Total(), p.Phases)
	}
	for _, ph := range []string{"the features (Add, Finish; their parses)", "one pass: route rows, find the user, the tables", "write the features files (format, sort, write)"} {
		if by[ph] > 0 {
			t.Errorf("%s: %.3f s in a profile that never ran it", ph, by[ph])
		}
	}
}

func TestReport_profiles(t *testing.T) {
	rep := testReport()
	runP := &Profile{System: SysRun, Runs: 3, Phases: []Phase{{"parse the CSV and check its values", 0.4}, {"the features (Add, Finish; their parses)", 0.25}, {restPhase, 0.05}}}
	redP := &Profile{System: SysReduce, Runs: 3, Err: "go tool pprof -traces: exit status 1\nmore"}
	rep.Profiles = []*Profile{runP, redP}

	md := rep.Markdown()
	reportHas(t, md,
		"## Where the CPU goes",
		"| mce run: phase | CPU s | share |",
		"| parse the CSV and check its values | 0.400 | 57% |",
		"| **total** | **0.700** | 100% |",
		"**mce reduce**: no profile: go tool pprof -traces: exit status 1 …\n",
	)
	if strings.Contains(md, "Before") {
		t.Error("a report with no saved profiles has a before column")
	}

	// The report's files keep its profiles; the next report in the folder
	// reads them as its "before".
	dir := t.TempDir()
	rep.Config.Results = dir
	if _, err := rep.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	saved := readSavedProfiles(dir)
	if saved == nil || !saved.Date.Equal(rep.Date) || profileOf(saved.Profiles, SysRun) == nil || profileOf(saved.Profiles, SysReduce) != nil {
		t.Fatalf("saved profiles %+v", saved)
	}
	next := testReport()
	next.Profiles = []*Profile{{System: SysRun, Runs: 3, Phases: []Phase{{"parse the CSV and check its values", 0.3}, {"a new phase", 0.1}, {restPhase, 0.05}}}}
	next.Before = saved
	md = next.Markdown()
	reportHas(t, md,
		`"Before" is the last report in this folder that had them, 2026-01-02 03:04 UTC`,
		"| mce run: phase | before, CPU s | now, CPU s | share now |",
		"| parse the CSV and check its values | 0.400 | 0.300 | 67% |",
		"| a new phase | – | 0.100 | 22% |",
		"| **total** | **0.700** | **0.450** | 100% |",
	)
	if readSavedProfiles(t.TempDir()) != nil {
		t.Error("a folder with no saved profiles read as having some")
	}
}
