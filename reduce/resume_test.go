package reduce_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/csvread"
	"github.com/mce-engine/mce/internal/fileid"
	"github.com/mce-engine/mce/internal/gen"
	"github.com/mce-engine/mce/reduce"
	"github.com/mce-engine/mce/store"
)

// TestPrepareResume_badPart: part files are not synced, so --resume
// checks them. The first phase's tasks run through the handlers, one
// part file is then damaged as a power cut can leave it (a stretch of
// zeros), and prepareResume removes that one and keeps the others; its
// shards, read again, and the merges give features files byte-identical
// to those of a run without the damage.
func TestPrepareResume_badPart(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	_, st, s := genStore(t, gen.Options{Seed: 9, Files: 2, Size: gen.Size{Rows: 20000}}, 8, csvread.Options{})
	spec := feature.Invoice()
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(st, &store.Options{ReadOnly: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tasks, err := reduce.Plan(ctx, db, &spec, nil, false, engine.Options{Clusters: []int{1, 1, 1}, Logger: quiet}, reduce.Outputs{})
	if err != nil {
		t.Fatal(err)
	}
	sort.SliceStable(tasks, func(i, j int) bool { return tasks[i].Phase < tasks[j].Phase })
	var reads []engine.Task
	for _, tk := range tasks {
		if tk.Kind == reduce.KindRead {
			reads = append(reads, tk)
		}
	}
	if len(reads) < 2 {
		t.Fatalf("%d read tasks, want several", len(reads))
	}
	hs := reduce.Handlers()
	run := func(dir string, tk *engine.Task) {
		t.Helper()
		env := &engine.TaskEnv{Spec: &spec, RunDir: dir, CPUs: 2, Progress: &engine.Progress{}, Logger: quiet}
		if _, err := hs[tk.Kind].Run(ctx, env, tk); err != nil {
			t.Fatalf("task %s %s: %v", tk.Kind, tk.Input, err)
		}
	}
	// runMissing runs, in phase order, the tasks whose output is missing,
	// as the engine does on --resume.
	runMissing := func(dir string) {
		t.Helper()
		for i := range tasks {
			if _, err := os.Stat(filepath.Join(dir, tasks[i].Output)); err != nil {
				run(dir, &tasks[i])
			}
		}
	}
	clean := t.TempDir()
	runMissing(clean)

	dir := t.TempDir()
	for i := range reads {
		run(dir, &reads[i])
	}
	bad := filepath.Join(dir, reads[1].Output)
	b, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[:min(len(b)/2, 4096)])
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := reduce.PrepareResume(dir, &engine.Plan{Tasks: tasks}, db, &spec, quiet); err != nil {
		t.Fatal(err)
	}
	for i, tk := range reads {
		_, err := os.Stat(filepath.Join(dir, tk.Output))
		if gone := err != nil; gone != (i == 1) {
			t.Errorf("part %s: removed %v, want %v", tk.Output, gone, i == 1)
		}
	}
	runMissing(dir)
	var names []string
	for _, f := range s.Files {
		names = append(names, fileid.FeaturesName(f.Name))
	}
	sort.Strings(names)
	sameFiles(t, clean, dir, names...)
}
