package partition

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/store"
)

// Defaults of Options.
const (
	// DefaultMemBytes and MinAutoMemBytes bound the sort buffer Run
	// picks when Options.MemBytes is 0 (AutoMemBytes).
	DefaultMemBytes   = 1 << 30
	MinAutoMemBytes   = 128 << 20
	DefaultHeavyShare = 0.005
	// DefaultHeavyMinRows keeps small users out of the heavy range even
	// in a small run where they pass the share: below this a user is not
	// worth splitting.
	DefaultHeavyMinRows = 10_000
	// DefaultCompactLayers: see Options.CompactLayers.
	DefaultCompactLayers = 4
	// MinMemBytes is the smallest --mem that works.
	MinMemBytes = 8 << 20
)

// Options says what to partition and how. The zero value with Inputs and
// Store set works.
type Options struct {
	// Inputs are files and directories (walked recursively for data files).
	// A file's name in the store is its path relative to the directory it
	// was found under (its base name when given directly).
	Inputs []string
	// Store is the store directory; it is created if missing.
	Store string
	// CPUs bounds parallel work (default GOMAXPROCS).
	CPUs int
	// MemBytes is the memory budget for sorting: rows are buffered up to
	// it, then spilled to sorted runs on disk. 0 picks AutoMemBytes of
	// the files to read (not those the store holds already) and of the
	// longest row the reader takes (Read.MaxRowBytes).
	MemBytes int64
	// LimitHeap makes Run hold the process's Go memory limit
	// (debug.SetMemoryLimit) to what MemBytes leaves the Go heap once the
	// sort buffers, which live outside it, are counted, and restore the
	// limit when it returns: without a limit the heap would let garbage grow
	// to twice its live size before collecting. For a process that runs
	// partition alone (the CLI sets it unless GOMEMLIMIT is set).
	LimitHeap bool
	// Codec is the compression of the new blocks (store.ParseCompression:
	// table-zstd, table-minlz, zstd, s2 or none); "" means the store's
	// (table-minlz for a new store).
	Codec string
	// HeavyShare: a user with more than this share of the rows of a run
	// goes to the heavy range (default 0.005; negative turns it off).
	HeavyShare float64
	// HeavyMinRows: ... and at least this many rows (default 10000).
	HeavyMinRows int64
	// HeavyUsers are users put in the heavy range whatever their share.
	HeavyUsers []string
	// Replace allows a file whose content changed under the same name: its
	// old rows are deleted and the new content ingested. Without it such a
	// file fails.
	Replace bool
	// CompactLayers: after an ingest that leaves readers merging this many
	// layers of tables or more (each incremental run adds one), the store
	// is compacted (default 4; negative never). Compact forces it.
	CompactLayers int
	Compact       bool
	// FullHash fingerprints new files by hashing all their bytes instead of
	// sampling them (see Fingerprint).
	FullHash bool
	// Read says how to read the files (schema, delimiter, encoding,
	// aliases, bad rows).
	Read csvread.Options
	// Shards and BlockBytes configure a new store (0: the store's
	// defaults); an existing store keeps its own.
	Shards     int
	BlockBytes int
	// CrashAt makes the process kill itself with SIGKILL at a point of the
	// run, for crash tests: "phase:n" with phase one of read, spill, merge,
	// ingest, ingested, delete (see crash.go). Empty in normal use.
	CrashAt string
	Logger  *slog.Logger
	// FS is the filesystem of the store, its sort runs included (default
	// the operating system's; see store.Options.FS). The input files are
	// always read from the operating system's. Tests wrap it to inject
	// I/O errors or to cut the power.
	FS vfs.FS

	// maxReaders overrides the merge's fan-in in tests.
	maxReaders int
	// heavyFileRows overrides heavyFileMinRows in tests (< 0: no
	// heavyFile).
	heavyFileRows int64
}

// AutoMemBytes is the sort buffer Run picks when Options.MemBytes is 0,
// for inputs of rawBytes (uncompressed, estimated) read on cpus CPUs from
// files files whose longest row may be maxRow bytes: the smallest, from
// MinAutoMemBytes up by 32 MiB to DefaultMemBytes, whose plan
// (planMemory)
//
//   - has sort buffers that each hold a row of maxRow (a row that fits no
//     buffer fails its file), and
//   - spills few enough runs that the final merge reads them all at once
//     on every CPU: each run gets a reader out of half the budget, and
//     the merge runs on as many workers as there are readers for all the
//     runs (more runs than readers are merged twice).
//
// A bigger buffer is not free. On a VM the first write to each fresh page
// cost 0.6–3.6 ms per MiB (the hypervisor backs the page then), and
// sorting more rows at once costs more per row: on 2 CPUs a partition of
// 2 GB took 14.7 s with 1 GiB against 10.9 s with 128 MiB, and one of 10
// GB 75.7 s and 128 CPU s with 1 GiB, 59–62 s and 96–103 CPU s with 625
// MiB, 49–57 s and 78–85 CPU s with 192 or 256 MiB
// (bench/results/profile-partition.md).
func AutoMemBytes(rawBytes int64, cpus, files, maxRow int) int64 {
	m := int64(MinAutoMemBytes)
	for m < DefaultMemBytes && !memFits(m, rawBytes, cpus, files, maxRow) {
		m += 32 << 20
	}
	return min(m, DefaultMemBytes)
}

// rawPerArenaByte is the raw input a byte of sort buffer holds, for the
// runs' estimate: a row takes its packed value and a 40-byte entry. The
// bench's rows hold 0.58–0.63 raw bytes a buffer byte (300 MB and 2 GB);
// narrower rows hold fewer.
const rawPerArenaByte = 0.5

// memFits reports whether a budget of m meets AutoMemBytes' two tests.
func memFits(m, rawBytes int64, cpus, files, maxRow int) bool {
	plan := planMemory(m, rawBytes, cpus, files)
	if plan.arenaBytes < int64(maxRow)+1<<20 {
		return false
	}
	return estimatedRuns(rawBytes, plan.fillBytes)*int64(max(cpus, 1)) <= int64(mergeReaders(m))
}

// estimatedRuns is how many runs rawBytes of input spill from sort
// buffers of arenaBytes (rawPerArenaByte).
func estimatedRuns(rawBytes, arenaBytes int64) int64 {
	return int64(math.Ceil(float64(rawBytes) / (rawPerArenaByte * float64(arenaBytes))))
}

func (o Options) withDefaults() (Options, error) {
	if len(o.Inputs) == 0 {
		return o, errors.New("no inputs: give files or directories to partition")
	}
	if o.Store == "" {
		return o, errors.New("no store directory (--out)")
	}
	if o.CPUs <= 0 {
		o.CPUs = runtime.GOMAXPROCS(0)
	}
	if o.MemBytes != 0 && o.MemBytes < MinMemBytes {
		return o, fmt.Errorf("--mem %d: want at least %d MiB", o.MemBytes, MinMemBytes>>20)
	}
	if o.HeavyShare == 0 {
		o.HeavyShare = DefaultHeavyShare
	}
	if o.HeavyShare >= 1 {
		return o, fmt.Errorf("--heavy-share %g: want a share below 1 (e.g. 0.005)", o.HeavyShare)
	}
	if o.CompactLayers == 0 {
		o.CompactLayers = DefaultCompactLayers
	}
	if o.HeavyMinRows == 0 {
		o.HeavyMinRows = DefaultHeavyMinRows
	}
	if o.Codec != "" {
		if _, err := store.ParseCompression(o.Codec); err != nil {
			return o, fmt.Errorf("--codec: %w", err)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if _, _, err := parseCrashAt(o.CrashAt); err != nil {
		return o, err
	}
	return o, nil
}

// ReadHeavyUsers reads a --heavy-users file: one user per line; blank
// lines and lines starting with '#' are skipped, spaces around are trimmed.
func ReadHeavyUsers(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("heavy users: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("heavy users %s: %w", path, err)
	}
	return out, nil
}
