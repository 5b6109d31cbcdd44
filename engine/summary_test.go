package engine

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestSummaryWriter checks that the summary writer, however many
// summaries are queued and from however many goroutines, leaves the last
// one queued before close on disk, whole, and nothing else in the folder.
func TestSummaryWriter(t *testing.T) {
	for _, n := range []int{1, 2, 50} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, SummaryJSON)
			w := newSummaryWriter(path, slog.Default())
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range n {
						w.queue(fmt.Appendf(nil, "{\"g\": %d, \"i\": %d}\n", g, i))
					}
				}()
			}
			wg.Wait()
			last := []byte("{\"last\": true}\n")
			w.queue(last)
			w.close()
			w.close() // a second close does nothing
			if got, err := os.ReadFile(path); err != nil || string(got) != string(last) {
				t.Fatalf("summary.json = %q, %v; want %q", got, err, last)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Errorf("folder holds %d entries, want summary.json alone", len(ents))
			}
		})
	}
	var none *summaryWriter
	none.close() // no summary queued: nothing to wait for
}
