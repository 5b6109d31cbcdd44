package gen

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/csvread"
)

// TestTruth_MatchesCSVRead reads every generated file with the reader mce
// uses and checks its rows, bad rows and per-issuer totals against the
// truth files, exactly.
func TestTruth_MatchesCSVRead(t *testing.T) {
	f := func(name string, o Options) {
		t.Run(name, func(t *testing.T) {
			dir, _ := generate(t, o)
			truth, err := ReadTruth(dir)
			if err != nil {
				t.Fatal(err)
			}
			files, err := ReadTruthFiles(dir)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]map[string]Truth{}
			for _, tr := range truth {
				if want[tr.File] == nil {
					want[tr.File] = map[string]Truth{}
				}
				want[tr.File][tr.User] = tr
			}
			amount := feature.InvoiceSchema.Index(feature.ColAmount)
			for _, ft := range files {
				path := filepath.Join(dir, ft.File)
				rf, err := csvread.Open(path, csvread.Options{MaxBadRowShare: -1, ChunkBytes: 256 << 10})
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				if rf.Delimiter != ft.Delimiter || rf.Compression != ft.Compression {
					t.Errorf("%s: reader sees delimiter %q and compression %q, truth says %q and %q",
						ft.File, rf.Delimiter, rf.Compression, ft.Delimiter, ft.Compression)
				}
				var mu sync.Mutex
				got := map[string]Truth{}
				var bad error
				stats, err := rf.Scan(context.Background(), 3, func(b *csvread.Batch) error {
					part := map[string]Truth{}
					for i := range b.Len() {
						cents, err := ParseCents(string(b.Field(i, amount)))
						if err != nil {
							mu.Lock()
							bad = err
							mu.Unlock()
							continue
						}
						u := part[string(b.User(i))]
						u.Rows++
						u.AmountCents += cents
						part[string(b.User(i))] = u
					}
					mu.Lock()
					defer mu.Unlock()
					for user, p := range part {
						u := got[user]
						u.File, u.User, u.Rows, u.AmountCents = ft.File, user, u.Rows+p.Rows, u.AmountCents+p.AmountCents
						got[user] = u
					}
					return nil
				})
				rf.Close()
				if err != nil {
					t.Fatalf("scan: %v", err)
				}
				if bad != nil {
					t.Errorf("%s: %v", ft.File, bad)
				}
				if stats.Rows != ft.Rows || stats.BadRows != ft.BadRows || stats.Bytes != ft.Bytes {
					t.Errorf("%s: reader counts %d rows, %d bad, %d bytes; truth says %d, %d, %d",
						ft.File, stats.Rows, stats.BadRows, stats.Bytes, ft.Rows, ft.BadRows, ft.Bytes)
				}
				// The reader's samples name the lines where bad rows
				// start, as encoding/csv sees them.
				if _, badLines := parseIndependently(t, path, ft); ft.BadRows > 0 {
					if len(stats.Samples) == 0 {
						t.Errorf("%s: %d bad rows and no samples", ft.File, ft.BadRows)
					}
					for _, s := range stats.Samples {
						if !slices.Contains(badLines, s.Line) {
							t.Errorf("%s: reader samples line %d (%v), not a bad row; bad rows start at %v",
								ft.File, s.Line, s, badLines[:min(len(badLines), 10)])
						}
					}
				}
				if !maps.Equal(got, want[ft.File]) {
					n := 0
					for user, w := range want[ft.File] {
						if g := got[user]; g != w && n < 5 {
							t.Errorf("%s: issuer %q: reader has %+v, truth %+v", ft.File, user, g, w)
							n++
						}
					}
					t.Errorf("%s: reader finds %d issuers, truth %d, or their figures differ",
						ft.File, len(got), len(want[ft.File]))
				}
			}
		})
	}
	f("PlainCP1252", Options{Seed: 21, Files: 3, Size: Size{Rows: 60_000}})
	f("PlainUTF8Tab", Options{Seed: 22, Files: 2, Size: Size{Rows: 30_000}, Encoding: feature.EncodingUTF8, Delimiter: '\t'})
	f("Messy", Options{Seed: 23, Files: 8, Size: Size{Rows: 120_000}, Messy: true, BadRowShare: 0.005})
	f("MessyDefault", Options{Seed: 24, Files: 6, Size: Size{Bytes: 6_000_000}, Messy: true})
}
