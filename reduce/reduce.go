package reduce

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/store"
)

// AcrossFilesOutput is the features file of --across-files.
const AcrossFilesOutput = "across_files" + engine.FeaturesSuffix

// Options configure Run.
type Options struct {
	// Store is the store folder (made by `mce partition`).
	Store string
	// Spec is the feature set the clusters compute (the one compiled into
	// Engine.WorkerExe): Run checks the store's columns and the Map
	// against it. Nil means the built-in invoice set.
	Spec *feature.Spec
	// Files restricts the job to some of the store's files: their names
	// as the store records them (see `mce store info`) or their base
	// names. Nil reads every file.
	Files []string
	// AcrossFiles makes one features line per user over all the files,
	// in one output file, instead of one features file per input file.
	AcrossFiles bool
	// Engine says how to run: clusters, RAM limit, output folder, job
	// name, --resume, logging, progress. Run sets its Tasks; Paths and
	// Inputs must be empty.
	Engine engine.Options
}

// Run runs a reduce job on the engine's clusters and returns the engine's
// summary (see engine.Run; LastLine words it in input files). A store
// that is missing, of another format version or corrupt is an error
// wrapping store.ErrNotExist, store.ErrVersion or store.ErrCorrupt, before
// any cluster starts.
func Run(ctx context.Context, o Options) (*engine.Summary, error) {
	spec := feature.Invoice()
	if o.Spec != nil {
		spec = *o.Spec
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	eo := o.Engine
	if len(eo.Paths) > 0 || len(eo.Inputs) > 0 {
		return nil, errors.New("reduce: the store is the input; no input paths")
	}
	if eo.Logger == nil {
		eo.Logger = slog.Default()
	}
	if eo.FeatureName == "" {
		eo.FeatureName = spec.Name
	}
	if eo.Resume != "" {
		if o.Store != "" || len(o.Files) > 0 || o.AcrossFiles {
			return nil, fmt.Errorf("--resume %s takes no --store, --files or --across-files (the run folder's plan has them)", eo.Resume)
		}
		storeDir, err := prepareResume(eo.Resume, &spec, eo.Logger)
		if err != nil {
			return nil, err
		}
		eo.Clusters = clustersFor(storeDir, eo.Clusters, eo.Logger)
	} else {
		eo.Clusters = clustersFor(o.Store, eo.Clusters, eo.Logger)
		tasks, err := Plan(ctx, o.Store, &spec, o.Files, o.AcrossFiles, eo)
		if err != nil {
			return nil, err
		}
		eo.Tasks = tasks
	}
	if os.Getenv("MALLOC_ARENA_MAX") == "" {
		// NB: pebble allocates its block cache and blocks with C malloc
		// from whichever threads read; glibc then keeps up to 8 arenas
		// per CPU of freed blocks, tens of MiB that grow with the run.
		// Two arenas keep a cluster's C memory near the cache size.
		eo.WorkerEnv = append(slices.Clip(eo.WorkerEnv), "MALLOC_ARENA_MAX=2")
	}
	s, err := engine.Run(ctx, eo)
	if err == nil && s != nil && s.Failed == 0 && !s.Interrupted {
		// Every output is complete: the part files were intermediates.
		if rerr := os.RemoveAll(filepath.Join(s.RunDir, PartsDir)); rerr != nil {
			eo.Logger.Warn("remove part files", "dir", s.RunDir, "error", rerr)
		}
	}
	return s, err
}

// clustersFor returns the cluster layout to read the store with: the
// given one when several processes may read the store at once, else one
// cluster of all their CPUs (pebble's directory lock then admits one
// process at a time; a cluster reads shards on all its CPUs anyway).
func clustersFor(storeDir string, clusters []int, logger *slog.Logger) []int {
	if len(clusters) < 2 {
		return clusters
	}
	a, err := store.Open(storeDir, &store.Options{ReadOnly: true, CacheBytes: 1 << 20, Concurrency: 1, Logger: logger})
	if err != nil {
		return clusters // Plan reports it
	}
	defer a.Close()
	b, err := store.Open(storeDir, &store.Options{ReadOnly: true, CacheBytes: 1 << 20, Concurrency: 1, Logger: logger, NoLockWait: true})
	if err == nil {
		b.Close()
		return clusters
	}
	total := 0
	for _, n := range clusters {
		total += n
	}
	logger.Warn("the store admits one reading process at a time: running one cluster of all the CPUs",
		"clusters", fmt.Sprint(clusters), "cpus", total, "reason", err.Error())
	return []int{total}
}

// Plan opens the store and plans a reduce job's tasks for the engine: in
// phase 0, one task per heavy-user group (largest first, so they start
// first) and one per range of shards, each writing a part file; in phase
// 1, one merge task per output file. Clusters and CPUs come from eo.
func Plan(ctx context.Context, storeDir string, spec *feature.Spec, names []string, across bool, eo engine.Options) ([]engine.Task, error) {
	if storeDir == "" {
		return nil, errors.New("reduce: give the store folder (--store)")
	}
	abs, err := filepath.Abs(storeDir)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", storeDir, err)
	}
	logger := cmp.Or(eo.Logger, slog.Default())
	db, err := store.Open(abs, &store.Options{ReadOnly: true, CacheBytes: 1 << 20, Concurrency: 1, Logger: logger})
	if err != nil {
		return nil, err
	}
	// NB: the store must be closed before the clusters start: pebble
	// locks it for one process at a time.
	defer db.Close()
	cols, err := schemaColumns(spec.Schema, db.Config())
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", storeDir, err)
	}
	all := db.Files()
	files, err := selectFiles(all, names)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", storeDir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("store %s holds no files (add some with mce partition)", storeDir)
	}
	a := taskArgs{Store: abs, Across: across}
	var rawAll, rawSel, rowsSel int64
	for _, f := range all {
		rawAll += f.RawBytes
	}
	for _, f := range files {
		a.Files = append(a.Files, fileRef{ID: f.ID, Name: f.Name, Fingerprint: f.Fingerprint})
		rawSel += f.RawBytes
		rowsSel += f.Rows
	}
	if spec.Map != nil {
		if err := probeMap(ctx, db, spec, eo.Params, cols, &a); err != nil {
			return nil, err
		}
	}

	// The store's bytes on disk, by shard, from pebble's estimates: the
	// normal users' by shard, the heavy users' in proportion to their rows.
	normal, err := db.ShardSizes(false)
	if err != nil {
		return nil, err
	}
	selected := map[store.FileID]bool{}
	for _, f := range files {
		selected[f.ID] = true
	}
	type heavyUser struct {
		user string
		rows int64 // in the selected files
	}
	var heavy []heavyUser
	var heavyRowsAll int64
	for _, h := range db.HeavyUsers() {
		heavyRowsAll += h.Rows
		var rows int64
		for _, hf := range h.Files {
			if selected[hf.File] {
				rows += hf.Rows
			}
		}
		if rows > 0 {
			heavy = append(heavy, heavyUser{h.User, rows})
		}
	}
	var normalDisk int64
	for _, n := range normal {
		normalDisk += int64(n)
	}
	rowsAll := db.Rows()
	diskPerRow := float64(normalDisk) / float64(max(rowsAll-heavyRowsAll, 1))
	share := 1.0
	if rawAll > 0 {
		share = float64(rawSel) / float64(rawAll)
		a.DiskPerRaw = diskPerRow * float64(rowsAll) / float64(rawAll)
	}

	// Read tasks: as few as keep every cluster busy and each under
	// readTaskBytes of the store (what --resume and a retry after a RAM
	// kill redo), each with at least 4 shards per CPU so that its CPUs
	// end together. The heavy users go to the first tasks (largest
	// first onto the lightest), which are thereby handed out first.
	clusters := eo.Clusters
	if len(clusters) == 0 {
		clusters = engine.DefaultClusters(runtime.NumCPU())
	}
	shards := db.Shards()
	storeBytes := int64(float64(diskPerRow) * float64(rowsAll))
	ntasks := max(len(clusters), int((storeBytes+readTaskBytes-1)/readTaskBytes))
	ntasks = max(min(ntasks, shards/(4*slices.Max(clusters))), 1)
	type readPlan struct {
		args taskArgs
		lo   int
		size int64
	}
	reads := make([]readPlan, ntasks)
	for k := range reads {
		r := &reads[k]
		r.args = a
		r.lo = k * shards / ntasks
		hi := (k + 1) * shards / ntasks
		for s := r.lo; s < hi; s++ {
			r.size += int64(float64(normal[s]) * share)
			r.args.Shards = append(r.args.Shards, s)
		}
		sort.SliceStable(r.args.Shards, func(i, j int) bool { return normal[r.args.Shards[i]] > normal[r.args.Shards[j]] })
	}
	nheavy := min(len(heavy), ntasks)
	heavyRows := make([]int64, nheavy)
	for _, h := range heavy {
		k := 0
		for i := range heavyRows {
			if heavyRows[i] < heavyRows[k] {
				k = i
			}
		}
		heavyRows[k] += h.rows
		reads[k].args.Users = append(reads[k].args.Users, h.user)
		reads[k].size += int64(diskPerRow * float64(h.rows))
	}
	var parts []engine.Task
	for k, r := range reads {
		shardsOf := r.args.Shards
		name := fmt.Sprintf("%s#shards %d-%d", abs, r.lo, r.lo+len(shardsOf)-1)
		if len(r.args.Users) > 0 {
			name += fmt.Sprintf(" and %d heavy users", len(r.args.Users))
		}
		parts = append(parts, engine.Task{
			Kind: KindRead, Phase: 0, Size: max(r.size, 1), Args: encodeArgs(&r.args), Input: name,
			Output: filepath.Join(PartsDir, fmt.Sprintf("read-%03d.part", k)),
		})
	}
	var tasks []engine.Task
	var partNames []string
	for _, t := range parts {
		partNames = append(partNames, t.Output)
	}
	tasks = append(tasks, parts...)

	merge := func(section int, input, output string, users, bad int64) engine.Task {
		ma := taskArgs{Section: section, Parts: partNames, BadRows: bad, Across: across}
		return engine.Task{Kind: KindMerge, Phase: 1, Input: input, Output: output, Size: max(users*64, 1), Args: encodeArgs(&ma)}
	}
	if across {
		var users, bad int64
		for _, f := range files {
			users = max(users, f.Users)
			bad += f.BadRows
		}
		tasks = append(tasks, merge(0, abs+"#all files", AcrossFilesOutput, users, bad))
		return tasks, nil
	}
	// The features files are named as `mce run` names them for the same
	// inputs, so that the two modes compare file by file.
	inputs := make([]csvread.Input, len(files))
	byPath := map[string]int{}
	for i, f := range files {
		inputs[i] = csvread.Input{Path: inputPath(f), Size: f.Size}
		p, _ := filepath.Abs(inputs[i].Path)
		byPath[p] = i
	}
	named, err := engine.FileTasks(inputs)
	if err != nil {
		return nil, err
	}
	first := len(tasks)
	for _, ft := range named {
		i, ok := byPath[ft.Input]
		if !ok {
			return nil, fmt.Errorf("BUG: no store file for input %s", ft.Input)
		}
		f := files[i]
		tasks = append(tasks, merge(i, inputs[i].Path, ft.Output, f.Users, f.BadRows))
	}
	// With one cluster, the merge handed out first (the largest) writes
	// every output at once; the others then find theirs done.
	if len(clusters) == 1 && len(tasks)-first > 1 {
		big := first
		for k := first; k < len(tasks); k++ {
			if tasks[k].Size > tasks[big].Size {
				big = k
			}
		}
		ma, err := decodeArgs(&tasks[big])
		if err != nil {
			return nil, err
		}
		for k := first; k < len(tasks); k++ {
			if k != big {
				oa, err := decodeArgs(&tasks[k])
				if err != nil {
					return nil, err
				}
				ma.Others = append(ma.Others, mergeTarget{Section: oa.Section, Output: tasks[k].Output})
			}
		}
		tasks[big].Args = encodeArgs(ma)
	}
	return tasks, nil
}

// inputPath is how the plan names a store file's input: the path it was
// read from when that was absolute, else its name in the store.
func inputPath(f store.FileEntry) string {
	if filepath.IsAbs(f.Path) {
		return f.Path
	}
	return f.Name
}

// selectFiles picks the store files named by --files (a name as the
// store records it, or a base name, with or without .gz/.zst), in store
// order; nil names pick all.
func selectFiles(all []store.FileEntry, names []string) ([]store.FileEntry, error) {
	if len(names) == 0 {
		return all, nil
	}
	stem := func(s string) string {
		s = filepath.Base(s)
		for _, ext := range []string{".gz", ".zst", ".zstd"} {
			s = strings.TrimSuffix(s, ext)
		}
		return s
	}
	pick := map[store.FileID]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		var hits []store.FileEntry
		for _, f := range all {
			if f.Name == n {
				hits = []store.FileEntry{f}
				break
			}
			if filepath.Base(f.Name) == n || stem(f.Name) == n {
				hits = append(hits, f)
			}
		}
		switch len(hits) {
		case 0:
			var have []string
			for _, f := range all {
				have = append(have, f.Name)
			}
			if len(have) > 10 {
				have = append(have[:10], fmt.Sprintf("and %d more", len(have)-10))
			}
			return nil, fmt.Errorf("--files %s: the store holds no such file (it holds %s)", n, strings.Join(have, ", "))
		case 1:
			pick[hits[0].ID] = true
		default:
			var amb []string
			for _, f := range hits {
				amb = append(amb, f.Name)
			}
			return nil, fmt.Errorf("--files %s: several files match (%s); give the name as the store records it", n, strings.Join(amb, ", "))
		}
	}
	var out []store.FileEntry
	for _, f := range all {
		if pick[f.ID] {
			out = append(out, f)
		}
	}
	return out, nil
}

// readTaskBytes bounds the store bytes one read task covers.
const readTaskBytes = 2 << 30

// probeRows is how many rows probeMap runs Map on.
const probeRows = 2000

// probeMap runs the Spec's Map on the first rows of a few shards and of
// the heavy users, to refuse a re-keying feature set before any cluster
// starts. The clusters check every row anyway.
func probeMap(ctx context.Context, db *store.DB, spec *feature.Spec, params feature.Params, cols []int, a *taskArgs) error {
	files, ids, err := checkFiles(db, a)
	if err != nil {
		return err
	}
	r := newUserRows(spec, params, cols, files)
	spans := []store.Span{db.HeavySpan()}
	for s := 0; s < min(db.Shards(), 4); s++ {
		spans = append(spans, db.ShardSpan(s))
	}
	for _, sp := range spans {
		ui, err := db.Users(ctx, sp, &store.UsersOptions{ByFile: true, IterOptions: store.IterOptions{Files: ids}})
		if err != nil {
			return err
		}
		r.rows = 0
		for r.rows < probeRows/int64(len(spans)) && ui.Next() {
			r.reset(ui.Rows(), ui.User())
			for r.Next() {
			}
			var re *RekeyError
			if errors.As(r.err, &re) {
				ui.Close()
				return re
			}
		}
		if err := ui.Close(); err != nil {
			return err
		}
	}
	return nil
}

// prepareResume checks that dir is a run folder of `mce reduce` whose
// store is still there, and removes the part files that recorded a failed
// user of an output not yet written, so that their shards are reduced
// again (the feature code may have been fixed since).
func prepareResume(dir string, spec *feature.Spec, logger *slog.Logger) (string, error) {
	p, err := engine.ReadPlan(dir)
	if err != nil {
		return "", err
	}
	var storeDir string
	pending := map[int]bool{}
	for _, t := range p.Tasks {
		switch t.Kind {
		case KindRead:
			if storeDir == "" {
				a, err := decodeArgs(&t)
				if err != nil {
					return "", fmt.Errorf("resume %s: %w", dir, err)
				}
				storeDir = a.Store
			}
		case KindMerge:
			if _, err := os.Stat(filepath.Join(dir, t.Output)); err != nil {
				a, err := decodeArgs(&t)
				if err != nil {
					return "", fmt.Errorf("resume %s: %w", dir, err)
				}
				pending[a.Section] = true
			}
		default:
			return "", fmt.Errorf("resume %s: not a run folder of mce reduce (it has %s tasks); resume it with mce run --resume", dir, t.Kind)
		}
	}
	if storeDir == "" {
		return "", fmt.Errorf("resume %s: the plan names no store", dir)
	}
	db, err := store.Open(storeDir, &store.Options{ReadOnly: true, CacheBytes: 1 << 20, Concurrency: 1, Logger: logger})
	if err != nil {
		return "", fmt.Errorf("resume %s: %w", dir, err)
	}
	cfg := db.Config()
	db.Close()
	if _, err := schemaColumns(spec.Schema, cfg); err != nil {
		return "", fmt.Errorf("resume %s: store %s: %w", dir, storeDir, err)
	}
	for _, t := range p.Tasks {
		if t.Kind == KindMerge {
			continue
		}
		path := filepath.Join(dir, t.Output)
		pf, err := openPart(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		stale := err != nil
		if err == nil {
			for _, f := range pf.footer.Failures {
				stale = stale || pending[f.Section]
			}
			pf.Close()
		}
		if stale {
			logger.Info("reducing again the shards of a part file with failed users", "part", t.Output)
			if err := os.Remove(path); err != nil {
				return "", fmt.Errorf("resume %s: %w", dir, err)
			}
		}
	}
	return storeDir, nil
}

// LastLine is the line `mce reduce` ends with: how many output files
// failed (the first phase's tasks are counted through the outputs they
// feed).
func LastLine(s *engine.Summary) string {
	var files, done, failed, partsFailed int
	for _, t := range s.Tasks {
		if strings.HasPrefix(filepath.ToSlash(t.Output), PartsDir+"/") {
			if t.Status == engine.TaskFailed {
				partsFailed++
			}
			continue
		}
		files++
		switch t.Status {
		case engine.TaskDone, engine.TaskSkipped:
			done++
		case engine.TaskFailed:
			failed++
		}
	}
	var line string
	switch {
	case s.Interrupted:
		line = fmt.Sprintf("interrupted: %d of %d files done, %d failed", done, files, failed)
	case s.Error != "":
		line = fmt.Sprintf("stopped by an error: %d of %d files done, %d failed", done, files, failed)
	case failed == 0 && partsFailed == 0:
		line = fmt.Sprintf("all %d files ok", files)
	default:
		line = fmt.Sprintf("%d of %d files failed", failed, files)
	}
	if partsFailed > 0 {
		line += fmt.Sprintf(" (%d store read tasks failed)", partsFailed)
	}
	return line
}
