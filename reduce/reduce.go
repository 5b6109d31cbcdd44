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
	"time"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/internal/fileid"
	"github.com/mce-engine/mce/internal/prefork"
	"github.com/mce-engine/mce/store"
)

// AcrossFilesOutput is the features file of --across-files.
const AcrossFilesOutput = "across_files" + fileid.FeaturesSuffix

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
	// Output says how the features files are written: their format and
	// the name of their key column.
	Output Outputs
	// Engine says how to run: clusters, RAM limit, output folder, job
	// name, --resume, logging, progress. Run sets its Tasks; Paths and
	// Inputs must be empty.
	Engine engine.Options
}

// Run runs a reduce job on the engine's clusters and returns the engine's
// summary (see engine.Run; LastLine words it in input files). A store
// that is missing, of another format version or corrupt is an error
// wrapping store.ErrNotExist, store.ErrVersion or store.ErrCorrupt, before
// any run folder is made.
//
// The clusters start first (engine.Prestart), while the store is opened
// and the job planned (about 25 ms on the bench's store): a cluster takes
// about as long to start. They are killed when planning fails.
func Run(ctx context.Context, o Options) (*engine.Summary, error) {
	spec := feature.Invoice()
	if o.Spec != nil {
		spec = *o.Spec
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	eo := o.Engine
	if len(eo.Tasks) > 0 {
		return nil, errors.New("reduce: the store is the input; no tasks")
	}
	if eo.Logger == nil {
		eo.Logger = slog.Default()
	}
	if eo.FeatureName == "" {
		eo.FeatureName = spec.Name
	}
	// Two malloc arenas (prefork.MallocArenas), which the cluster mce
	// started early has too.
	eo.WorkerEnv = append(slices.Clip(eo.WorkerEnv), prefork.CommandEnv("reduce", os.Getenv)...)
	if len(eo.Clusters) == 0 {
		eo.Clusters = DefaultClusters()
	}
	if eo.Prestarted == nil {
		defer engine.StartEarly(&eo)()
	}
	if err := prepare(ctx, o, &spec, &eo); err != nil {
		return nil, err
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

// prepare opens the store once, plans the tasks (or checks a run folder
// to resume) and picks the cluster layout, then closes the store: the
// clusters open it next, each for itself (readers share the store's lock;
// a partition that holds it keeps them all out).
func prepare(ctx context.Context, o Options, spec *feature.Spec, eo *engine.Options) error {
	storeDir := o.Store
	var p *engine.Plan
	if eo.Resume != "" {
		if o.Store != "" || len(o.Files) > 0 || o.AcrossFiles {
			return fmt.Errorf("--resume %s takes no --store, --files or --across-files (the run folder's plan has them)", eo.Resume)
		}
		if err := engine.CheckNotRunning(eo.Resume); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		var err error
		if p, storeDir, err = resumePlan(eo.Resume); err != nil {
			return err
		}
	} else if storeDir == "" {
		return errors.New("reduce: give the store folder (--store)")
	}
	db, err := openStore(storeDir, eo.Logger)
	if err != nil {
		if p != nil {
			return fmt.Errorf("resume %s: %w", eo.Resume, err)
		}
		return err
	}
	defer db.Close()
	eo.Clusters = clustersFor(db, eo.Clusters, eo.Logger)
	if p != nil {
		return prepareResume(eo.Resume, p, db, spec, eo.Logger)
	}
	eo.Tasks, err = Plan(ctx, db, spec, o.Files, o.AcrossFiles, *eo, o.Output)
	return err
}

// openStore opens the store read-only for planning.
func openStore(dir string, logger *slog.Logger) (*store.DB, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	return store.Open(abs, &store.Options{ReadOnly: true, CacheBytes: 1 << 20, Concurrency: 1, Logger: cmp.Or(logger, slog.Default())})
}

// clustersFor returns the cluster layout to read the store with: the
// given one when several processes may read the store at once (a second
// open beside db succeeds: readers share the lock, see store.Open), else
// one cluster of all their CPUs (where the lock admits one process at a
// time; a cluster reads shards on all its CPUs anyway).
// DefaultClusters is reduce's default layout: one cluster of
// engine.DefaultCPUs, not `mce run`'s clusters of at most 8. On 16 CPUs
// (4 GB, 16 files) reduce took 2.43 s on one cluster of 16 and 2.97 s on
// two (8,7), medians of 3.
func DefaultClusters() []int { return []int{engine.DefaultCPUs(runtime.NumCPU())} }

func clustersFor(db *store.DB, clusters []int, logger *slog.Logger) []int {
	if len(clusters) < 2 {
		return clusters
	}
	b, err := store.Open(db.Dir(), &store.Options{ReadOnly: true, CacheBytes: 1 << 20, Concurrency: 1, Logger: logger, NoLockWait: true})
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

// Plan plans a reduce job's tasks for the engine on an open store: in
// phase 0, one task per heavy-user group (largest first, so they start
// first) and one per range of shards, each writing a part file; in phase
// 1, one merge task per output file, written as out says. Clusters and
// Params come from eo.
func Plan(ctx context.Context, db *store.DB, spec *feature.Spec, names []string, across bool, eo engine.Options, out Outputs) ([]engine.Task, error) {
	files, a, err := planFiles(ctx, db, spec, names, across, eo.Params)
	if err != nil {
		return nil, err
	}
	outs, err := sectionOutputs(files, spec, across, out)
	if err != nil {
		return nil, err
	}
	if out.TZ != "" {
		if _, err := time.LoadLocation(out.TZ); err != nil {
			return nil, fmt.Errorf("--tz %q: %w", out.TZ, err)
		}
		a.TZ = out.TZ
	}
	clusters := eo.Clusters
	if len(clusters) == 0 {
		clusters = DefaultClusters()
	}
	if out.Format == "" || out.Format == output.CSV {
		for i, o := range outs {
			if o.local {
				a.LocalLines = append(a.LocalLines, i)
			}
		}
	}
	reads, err := readTasks(ctx, db, files, a, clusters)
	if err != nil {
		return nil, err
	}
	return append(reads, mergeTasks(db.Dir(), files, reads, across, len(clusters), out.Format, outs)...), nil
}

// planFiles selects the files of the job, checks the store's columns
// against the Spec's schema and probes its Map, and returns the arguments
// every read task shares.
func planFiles(ctx context.Context, db *store.DB, spec *feature.Spec, names []string, across bool, params feature.Params) ([]store.FileEntry, taskArgs, error) {
	a := taskArgs{Store: db.Dir(), Across: across, Heavy: heavySig(db)}
	cols, err := schemaColumns(spec.Schema, db.Config())
	if err != nil {
		return nil, a, fmt.Errorf("store %s: %w", db.Dir(), err)
	}
	files, err := selectFiles(db.Files(), names)
	if err != nil {
		return nil, a, fmt.Errorf("store %s: %w", db.Dir(), err)
	}
	if len(files) == 0 {
		return nil, a, fmt.Errorf("store %s holds no files (add some with mce partition)", db.Dir())
	}
	for _, f := range files {
		a.Files = append(a.Files, fileRef{ID: f.ID, Name: f.Name, Fingerprint: f.Fingerprint})
	}
	if spec.Map != nil {
		if err := probeMap(ctx, db, spec, params, cols, &a); err != nil {
			return nil, a, err
		}
	}
	return files, a, nil
}

// readPlan is one read task being planned.
type readPlan struct {
	args taskArgs
	lo   int
	size int64
}

// readTasks plans the first phase: as few tasks as keep every cluster
// busy and each under readTaskBytes of the store (what --resume and a
// retry after a RAM kill redo), each with at least 4 shards per CPU so
// that its CPUs end together. The heavy users go to the first tasks
// (largest first onto the lightest), which are thereby handed out first.
func readTasks(ctx context.Context, db *store.DB, files []store.FileEntry, a taskArgs, clusters []int) ([]engine.Task, error) {
	// The store's bytes on disk, by shard, from pebble's estimates: the
	// normal users' by shard, the heavy users' in proportion to their rows.
	normal, err := db.ShardSizes(ctx, false)
	if err != nil {
		return nil, err
	}
	var rawAll, rawSel int64
	for _, f := range db.Files() {
		rawAll += f.RawBytes
	}
	selected := map[store.FileID]bool{}
	for _, f := range files {
		rawSel += f.RawBytes
		selected[f.ID] = true
	}
	heavy, heavyRowsAll := heavyUsers(db, selected)
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
	shards := db.Shards()
	storeBytes := int64(float64(diskPerRow) * float64(rowsAll))
	ntasks := max(len(clusters), int((storeBytes+readTaskBytes-1)/readTaskBytes))
	ntasks = max(min(ntasks, shards/(4*slices.Max(clusters))), 1)
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
	heavyRows := make([]int64, min(len(heavy), ntasks))
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
	var tasks []engine.Task
	for k, r := range reads {
		name := fmt.Sprintf("%s#shards %d-%d", db.Dir(), r.lo, r.lo+len(r.args.Shards)-1)
		if len(r.args.Users) > 0 {
			name += fmt.Sprintf(" and %d heavy users", len(r.args.Users))
		}
		tasks = append(tasks, engine.Task{
			Kind: KindRead, Phase: 0, Size: max(r.size, 1), Args: encodeArgs(&r.args), Name: name,
			Output: filepath.Join(PartsDir, fmt.Sprintf("read-%03d.part", k)),
		})
	}
	return tasks, nil
}

// heavyUser is a heavy user with rows in the selected files.
type heavyUser struct {
	user string
	rows int64 // in the selected files
}

// heavyUsers returns the heavy users with rows in the selected files and
// the rows of all heavy users.
func heavyUsers(db *store.DB, selected map[store.FileID]bool) (heavy []heavyUser, rowsAll int64) {
	for _, h := range db.HeavyUsers() {
		rowsAll += h.Rows
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
	return heavy, rowsAll
}

// mergeTasks plans the second phase: one merge task per output file,
// named as `mce run` names the features file of the same input (package
// fileid) in format, so that the two modes compare file by file, written
// as outs[i] says for files[i] (outs[0] across files); with one
// cluster, the merge handed out first (the largest) writes every output
// at once and the others then find theirs done.
func mergeTasks(storeDir string, files []store.FileEntry, reads []engine.Task, across bool, clusters int, format output.Format, outs []sectionOutput) []engine.Task {
	var partNames []string
	for _, t := range reads {
		partNames = append(partNames, t.Output)
	}
	type merge struct {
		name, output string
		users        int64
		args         taskArgs
	}
	var merges []merge
	add := func(section int, name, out string, users, bad int64) {
		merges = append(merges, merge{name, format.Name(out), users, taskArgs{
			Section: section, Parts: partNames, BadRows: bad, Across: across, Format: format,
			KeyName: outs[section].keyName, LocalTimes: outs[section].local,
		}})
	}
	if across {
		var users, bad int64
		for _, f := range files {
			users = max(users, f.Users)
			bad += f.BadRows
		}
		add(0, storeDir+"#all files", AcrossFilesOutput, users, bad)
	} else {
		// In the order `mce run` plans the same inputs: largest first,
		// ties by path, which is also the order that makes names unique.
		order := make([]int, len(files))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(x, y int) bool {
			fx, fy := files[order[x]], files[order[y]]
			if fx.Size != fy.Size {
				return fx.Size > fy.Size
			}
			return inputPath(fx) < inputPath(fy)
		})
		var names fileid.Namer
		for _, i := range order {
			f := files[i]
			add(i, inputPath(f), names.Name(inputPath(f)), f.Users, f.BadRows)
		}
	}
	if clusters == 1 && len(merges) > 1 {
		big := 0
		for k, m := range merges {
			if m.users > merges[big].users {
				big = k
			}
		}
		for k, m := range merges {
			if k != big {
				merges[big].args.Others = append(merges[big].args.Others,
					mergeTarget{Section: m.args.Section, Output: m.output, KeyName: m.args.KeyName, LocalTimes: m.args.LocalTimes})
			}
		}
	}
	tasks := make([]engine.Task, len(merges))
	for k, m := range merges {
		tasks[k] = engine.Task{Kind: KindMerge, Phase: 1, Name: m.name, Output: m.output, Size: max(m.users*64, 1), Args: encodeArgs(&m.args)}
	}
	return tasks
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
			if filepath.Base(f.Name) == n || fileid.Base(f.Name) == n {
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
		ui, err := db.Users(ctx, sp, &store.UsersOptions{ByFile: true, IterOptions: store.IterOptions{Files: ids, Columns: readColumns(spec, db.Config())}})
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

// resumePlan reads the plan of a run folder of `mce reduce` and returns
// it with its store folder.
func resumePlan(dir string) (*engine.Plan, string, error) {
	p, err := engine.ReadPlan(dir)
	if err != nil {
		return nil, "", err
	}
	for _, t := range p.Tasks {
		switch t.Kind {
		case KindRead:
			a, err := decodeArgs(&t)
			if err != nil {
				return nil, "", fmt.Errorf("resume %s: %w", dir, err)
			}
			return p, a.Store, nil
		case KindMerge:
		default:
			return nil, "", fmt.Errorf("resume %s: not a run folder of mce reduce (it has %s tasks); resume it with mce run --resume", dir, t.Kind)
		}
	}
	return nil, "", fmt.Errorf("resume %s: the plan names no store", dir)
}

// prepareResume checks that the store of the run folder dir (open as db)
// still fits the Spec, and removes the part files that recorded a failed
// user of an output not yet written, so that their shards are reduced
// again (the feature code may have been fixed since), and those that do
// not read back as written (a part file is not synced: a power cut can
// leave it short or with zeros).
func prepareResume(dir string, p *engine.Plan, db *store.DB, spec *feature.Spec, logger *slog.Logger) error {
	if _, err := schemaColumns(spec.Schema, db.Config()); err != nil {
		return fmt.Errorf("resume %s: store %s: %w", dir, db.Dir(), err)
	}
	pending := map[int]bool{}
	for _, t := range p.Tasks {
		if t.Kind != KindMerge {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, t.Output)); err != nil {
			a, err := decodeArgs(&t)
			if err != nil {
				return fmt.Errorf("resume %s: %w", dir, err)
			}
			pending[a.Section] = true
		}
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
		why := "" // why the part file is reduced again; "": it is kept
		if err != nil {
			why = err.Error()
		} else {
			for _, f := range pf.footer.Failures {
				if pending[f.Section] {
					why = "it has failed users"
					break
				}
			}
			// With every output written, nothing reads it again.
			if why == "" && len(pending) > 0 {
				if cerr := pf.check(); cerr != nil {
					why = cerr.Error()
				}
			}
			pf.Close()
		}
		if why != "" {
			logger.Info("reducing again the shards of a part file", "part", t.Output, "why", why)
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("resume %s: %w", dir, err)
			}
		}
	}
	return nil
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
