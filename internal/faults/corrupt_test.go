package faults

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/mce-engine/mce/engine"
	"github.com/mce-engine/mce/internal/e2etest"
	"github.com/mce-engine/mce/internal/gen"
)

// damage is one way of breaking a copy of a store: do breaks the store
// in dir and returns what a message about it must name (each of want, in
// one line).
type damage struct {
	name string
	do   func(t *testing.T, dir string) (want []string)
}

// copyStore copies the store src into a new folder.
func copyStore(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "store")
	if out, err := execCommand("cp", "-a", src, dst); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return dst
}

// tables returns the store's sstables, largest first.
func tables(t *testing.T, dir string) []string {
	t.Helper()
	ssts, _ := filepath.Glob(filepath.Join(dir, "db", "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no sstable in the store")
	}
	sort.Slice(ssts, func(i, j int) bool { return fileSize(ssts[i]) > fileSize(ssts[j]) })
	return ssts
}

// pebbleManifest returns the path of the MANIFEST-* file pebble's marker
// points at.
func pebbleManifest(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "db", "marker.manifest.*"))
	if len(m) != 1 {
		t.Fatalf("manifest markers: %v", m)
	}
	parts := strings.SplitN(filepath.Base(m[0]), ".", 4)
	return filepath.Join(dir, "db", parts[3])
}

func flipBytes(t *testing.T, path string, off int64, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := off; i < off+int64(n) && i < int64(len(b)); i++ {
		b[i] ^= 0xFF
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, frac float64) {
	t.Helper()
	if err := os.Truncate(path, int64(frac*float64(fileSize(path)))); err != nil {
		t.Fatal(err)
	}
}

// editManifest rewrites the store's MANIFEST.json through fn.
func editManifest(t *testing.T, dir string, fn func(m map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "MANIFEST.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// firstFile returns the manifest's first file record.
func firstFile(m map[string]any) map[string]any {
	return m["files"].([]any)[0].(map[string]any)
}

// setRecord writes value as file id's record inside the database
// (key 0x00 'f' id, see store/doc.go), as a bad write or hand would.
func setRecord(t *testing.T, dir string, id uint32, value []byte) {
	t.Helper()
	pdb, err := pebble.Open(filepath.Join(dir, "db"), &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	defer pdb.Close()
	key := binary.BigEndian.AppendUint32([]byte{0x00, 'f'}, id)
	if err := pdb.Set(key, value, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// damages are the seeded ways of breaking a store: bytes flipped at
// random places of random tables, pebble's MANIFEST and MANIFEST.json cut
// at random lengths, a table deleted, and the store's file records made
// wrong (in MANIFEST.json, inside the database, or both agreeing on a
// wrong row count).
func damages(rng *rand.Rand) []damage {
	n := func(inShort, inFull int) int {
		if full() {
			return inFull
		}
		return inShort
	}
	var out []damage
	for i := range n(2, 10) {
		out = append(out, damage{fmt.Sprintf("flipped bytes in an sstable #%d", i+1), func(t *testing.T, dir string) []string {
			ssts := tables(t, dir)
			sst := ssts[rng.IntN(len(ssts))]
			off := rng.Int64N(fileSize(sst))
			flipBytes(t, sst, off, 1+rng.IntN(16))
			t.Logf("flipped bytes at %d of %s (%d bytes)", off, filepath.Base(sst), fileSize(sst))
			return []string{"store is corrupt", strings.TrimSuffix(filepath.Base(sst), ".sst")}
		}})
	}
	for i := range n(1, 4) {
		out = append(out, damage{fmt.Sprintf("flipped bytes in an sstable's index, properties or footer #%d", i+1), func(t *testing.T, dir string) []string {
			ssts := tables(t, dir)
			sst := ssts[rng.IntN(len(ssts))]
			tail := min(fileSize(sst), 2048)
			off := fileSize(sst) - 1 - rng.Int64N(tail)
			flipBytes(t, sst, off, 1)
			t.Logf("flipped a byte at %d of %s (%d bytes)", off, filepath.Base(sst), fileSize(sst))
			return []string{"store is corrupt", strings.TrimSuffix(filepath.Base(sst), ".sst")}
		}})
	}
	for i := range n(1, 5) {
		out = append(out, damage{fmt.Sprintf("pebble's MANIFEST cut short #%d", i+1), func(t *testing.T, dir string) []string {
			frac := rng.Float64()
			truncate(t, pebbleManifest(t, dir), frac)
			t.Logf("cut %s to %.0f%%", filepath.Base(pebbleManifest(t, dir)), 100*frac)
			return []string{"store is corrupt", "MANIFEST"}
		}})
	}
	out = append(out, damage{"MANIFEST.json cut short", func(t *testing.T, dir string) []string {
		truncate(t, filepath.Join(dir, "MANIFEST.json"), rng.Float64())
		return []string{"store is corrupt", "MANIFEST.json"}
	}})
	for i := range n(1, 3) {
		out = append(out, damage{fmt.Sprintf("a deleted sstable #%d", i+1), func(t *testing.T, dir string) []string {
			ssts := tables(t, dir)
			sst := ssts[rng.IntN(len(ssts))]
			if err := os.Remove(sst); err != nil {
				t.Fatal(err)
			}
			return []string{"store is corrupt", strings.TrimSuffix(filepath.Base(sst), ".sst")}
		}})
	}
	out = append(out,
		damage{"a file record of MANIFEST.json with other rows", func(t *testing.T, dir string) []string {
			var name string
			editManifest(t, dir, func(m map[string]any) {
				f := firstFile(m)
				f["rows"] = f["rows"].(float64) + 1
				name = f["name"].(string)
			})
			return []string{"store is corrupt", "MANIFEST.json", name}
		}},
		damage{"a file record of MANIFEST.json that is not JSON", func(t *testing.T, dir string) []string {
			path := filepath.Join(dir, "MANIFEST.json")
			b, _ := os.ReadFile(path)
			b = []byte(strings.Replace(string(b), `"rows":`, `"rows": [`, 1))
			os.WriteFile(path, b, 0o644)
			return []string{"store is corrupt", "MANIFEST.json"}
		}},
		damage{"a file record inside the database that is not JSON", func(t *testing.T, dir string) []string {
			setRecord(t, dir, 1, []byte(`{"id": 1, "name": `))
			return []string{"store is corrupt", "file record"}
		}},
		damage{"a file record with a wrong row count, inside the database and MANIFEST.json alike", func(t *testing.T, dir string) []string {
			var rec map[string]any
			editManifest(t, dir, func(m map[string]any) {
				rec = firstFile(m)
				rec["rows"] = rec["rows"].(float64) + 1
			})
			b, _ := json.Marshal(rec)
			setRecord(t, dir, uint32(rec["id"].(float64)), b)
			return []string{"record says", rec["name"].(string)}
		}},
	)
	return out
}

// stackLike are signs of a dump where one line was due.
var stackLike = []string{"goroutine ", "panic:", "Wraps:", "stack trace", "<corruption detail carrier>", "\t/"}

// checkNamed checks that text holds one line with every string of want,
// and nothing like a stack dump.
func checkNamed(t *testing.T, what, text string, want []string) {
	t.Helper()
	for _, bad := range stackLike {
		if strings.Contains(text, bad) {
			t.Errorf("%s: a dump where one line was due (%q):\n%s", what, bad, e2etest.Tail(text, 2000))
			return
		}
	}
	for _, line := range strings.Split(text, "\n") {
		all := true
		for _, w := range want {
			all = all && strings.Contains(line, w)
		}
		if all {
			return
		}
	}
	t.Errorf("%s: no line names %q:\n%s", what, want, e2etest.Tail(text, 2000))
}

// TestCorruptStore breaks copies of a partitioned store at seeded places
// (see damages) and runs `mce store verify --decode` and `mce reduce` on
// each. Verify must fail naming the damage in one line (the damaged table,
// the manifest, the record), or pass when the damage touched nothing
// read (then reduce must be exact); reduce must fail its tasks or the
// whole run naming it in one line, and every features file it writes must
// be exact: never wrong features.
func TestCorruptStore(t *testing.T) {
	needReduce(t)
	row := record(t, "corrupt store: flipped bytes in sstables, pebble's MANIFEST or MANIFEST.json cut short, a deleted table, wrong file records", "store verify, reduce")
	d, st := partitioned(t, gen.Options{Seed: 71, Files: 3, Size: gen.Size{Bytes: 4 << 20}})
	var caught, harmless []string
	for _, dm := range damages(killRand(71)) {
		t.Run(dm.name, func(t *testing.T) {
			dir := copyStore(t, st)
			want := dm.do(t, dir)
			v := runCmd(t, mceBin, []string{"store", "verify", "--decode", dir})
			r := runCmd(t, mceBin, reduceArgs(dir, t.TempDir(), "--clusters", "1"))
			var lost, dup int64
			switch {
			case v.code == 0:
				// The damage touched nothing verify reads: reduce must be whole.
				harmless = append(harmless, dm.name)
				if r.code != 0 {
					t.Errorf("verify passed, reduce: exit %d\n%s", r.code, e2etest.Tail(r.stderr, 2000))
				} else {
					lost, dup = checkRunOutputs(t, r.runDir, d)
				}
			case v.code != 1:
				t.Errorf("verify: exit %d (70: pebble's fatal exit)\n%s", v.code, e2etest.Tail(v.stderr, 2000))
			default:
				caught = append(caught, dm.name)
				checkNamed(t, "verify", v.stderr, want)
				if r.code == 0 {
					// The damage is in rows reduce does not need (a record
					// count): its outputs must still be the truth.
					lost, dup = checkRunOutputs(t, r.runDir, d)
					break
				}
				text := r.stderr
				if r.runDir != "" {
					completeOutputs(t, r.runDir, d)
					text += "\n" + e2etest.ReadLog(t, r.runDir, engine.FailureLog)
				}
				checkNamed(t, "reduce", text, want[:1])
			}
			row.add(lost, dup)
			t.Logf("verify: exit %d: %s; reduce: exit %d: %s", v.code, e2etest.LastLine(v.stderr), r.code, e2etest.LastLine(r.stderr))
		})
	}
	row.notef("%d damages named in one line by verify (the table, the manifest or the record) and by reduce, no features file wrong; %d touched nothing read (reduce exact)",
		len(caught), len(harmless))
}
