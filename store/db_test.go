package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

var testCfg = Config{Schema: []string{"user", "amount"}, UserColumn: "user", Shards: 4, BlockBytes: 64, ChunkBlocks: 2}

func quietOpts(o Options) *Options {
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return &o
}

func createStore(t *testing.T) (*DB, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "store")
	cfg := testCfg
	db, err := Open(dir, quietOpts(Options{Create: &cfg}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dir
}

// loadFile ingests one file's rows (user -> amounts, lines from 2) the way
// partition does: sorted keys, blocks cut at BlockBytes, users in heavy
// go to the heavy range (moving their older rows there first).
func loadFile(t *testing.T, db *DB, id FileID, name string, rows map[string][]string, heavy []string) FileEntry {
	t.Helper()
	ctx := context.Background()
	cfg := db.Config()
	type ukey struct {
		user  string
		heavy bool
		key   []byte
	}
	var users []ukey
	isHeavy := func(u string) bool { return slices.Contains(heavy, u) || db.IsHeavy([]byte(u)) }
	for u := range rows {
		h := isHeavy(u)
		users = append(users, ukey{u, h, appendUserPrefix(nil, h, db.ShardOf([]byte(u)), []byte(u))})
	}
	sort.Slice(users, func(i, j int) bool { return bytes.Compare(users[i].key, users[j].key) < 0 })
	l, err := db.NewLoader(Compression{Value: CodecZstd})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := l.NewStream(1 << 10)
	fe := FileEntry{ID: id, Name: name, Codec: "zstd"}
	commit := Commit{NewHeavy: map[string]int{}}
	w := NewBlockWriter(2)
	for _, uk := range users {
		u := uk.user
		var part HeavyPart
		if uk.heavy && !db.IsHeavy([]byte(u)) {
			commit.NewHeavy[u] = db.ShardOf([]byte(u))
			moved, err := db.CopyToHeavy(ctx, []byte(u), s)
			if err != nil {
				t.Fatal(err)
			}
			for fid, hf := range moved {
				old, _ := db.File(fid)
				old.Heavy = append(old.Heavy, HeavyPart{User: u, Rows: hf.Rows, Blocks: hf.Blocks})
				commit.Files = append(commit.Files, old)
			}
		}
		k := Key{Heavy: uk.heavy, Shard: db.ShardOf([]byte(u)), User: []byte(u), File: id}
		flush := func() {
			v := w.AppendValue(nil, CodecZstd, db.Compressor())
			if err := s.AddBlock(k, v); err != nil {
				t.Fatal(err)
			}
			fe.Blocks++
			fe.StoredBytes += int64(len(v))
			part.Blocks++
			k.Seq++
			w.Reset()
		}
		for i, a := range rows[u] {
			w.Add(int64(i+2), [][]byte{[]byte(u), []byte(a)})
			fe.Rows++
			part.Rows++
			if w.RawBytes() >= cfg.BlockBytes {
				flush()
			}
		}
		if w.Rows() > 0 {
			flush()
		}
		fe.Users++
		if uk.heavy {
			part.User = u
			fe.Heavy = append(fe.Heavy, part)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	commit.Files = append(commit.Files, fe)
	if err := l.Ingest(ctx, commit); err != nil {
		t.Fatal(err)
	}
	if err := db.WriteManifest(); err != nil {
		t.Fatal(err)
	}
	return fe
}

func amounts(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// readUser reads one user through UserSpan as "file:line:amount" strings.
func readUser(t *testing.T, db *DB, user string, opts *UsersOptions) []string {
	t.Helper()
	u, err := db.Users(context.Background(), db.UserSpan([]byte(user)), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	var out []string
	for u.Next() {
		if string(u.User()) != user {
			t.Fatalf("UserSpan(%q) yielded user %q", user, u.User())
		}
		rows := u.Rows()
		for rows.Next() {
			f := rows.Fields()
			if string(f[0]) != user {
				t.Fatalf("row of user %q in %q's block", f[0], user)
			}
			out = append(out, fmt.Sprintf("%d:%d:%s", rows.File(), rows.Line(), f[1]))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func want(file FileID, as []string) []string {
	var out []string
	for i, a := range as {
		out = append(out, fmt.Sprintf("%d:%d:%s", file, i+2, a))
	}
	return out
}

func TestDB_LoadAndRead(t *testing.T) {
	db, dir := createStore(t)
	a1, b1 := amounts("a", 20), amounts("b", 3)
	loadFile(t, db, 1, "m1.csv", map[string][]string{"alice": a1, "bob": b1, "carol\x00x": {"1"}}, nil)
	a2 := amounts("A", 7)
	loadFile(t, db, 2, "m2.csv", map[string][]string{"alice": a2, "dave": {"9"}}, nil)

	if got, w := readUser(t, db, "alice", nil), append(want(1, a1), want(2, a2)...); !slices.Equal(got, w) {
		t.Errorf("alice:\n got %v\nwant %v", got, w)
	}
	if got := readUser(t, db, "carol\x00x", nil); !slices.Equal(got, want(1, []string{"1"})) {
		t.Errorf("carol: %v", got)
	}
	if got := readUser(t, db, "alice", &UsersOptions{IterOptions: IterOptions{Files: []FileID{2}}}); !slices.Equal(got, want(2, a2)) {
		t.Errorf("alice in file 2: %v", got)
	}
	if got := readUser(t, db, "nobody", nil); len(got) != 0 {
		t.Errorf("nobody: %v", got)
	}

	// Every shard together yields every user once per file with ByFile, and
	// once with groups per user; skipping rows of a group works.
	for _, byFile := range []bool{false, true} {
		groups := map[string]int{}
		rows := 0
		for s := 0; s < db.Shards(); s++ {
			u, err := db.Users(context.Background(), db.ShardSpan(s), &UsersOptions{ByFile: byFile})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; u.Next(); i++ {
				if db.ShardOf(u.User()) != s {
					t.Errorf("user %q in shard %d", u.User(), s)
				}
				groups[string(u.User())]++
				if i%2 == 0 { // read every other group, skip the rest
					r := u.Rows()
					for r.Next() {
						rows++
					}
				}
			}
			if err := u.Close(); err != nil {
				t.Fatal(err)
			}
		}
		wantGroups := map[string]int{"alice": 1, "bob": 1, "carol\x00x": 1, "dave": 1}
		if byFile {
			wantGroups["alice"] = 2
		}
		if fmt.Sprint(groups) != fmt.Sprint(wantGroups) {
			t.Errorf("byFile=%v: groups %v, want %v", byFile, groups, wantGroups)
		}
	}

	sizes, err := db.ShardSizes(context.Background(), true)
	if err != nil || len(sizes) != db.Shards() {
		t.Fatalf("ShardSizes: %v %v", sizes, err)
	}
	var total uint64
	for _, b := range sizes {
		total += b
	}
	if total == 0 {
		t.Errorf("ShardSizes all zero")
	}
	for s, got := range sizes { // on several goroutines, each shard's own estimate
		a, _ := db.pdb.EstimateDiskUsage(shardSpan(s).Lower, shardSpan(s).Upper)
		b, _ := db.pdb.EstimateDiskUsage(heavyShardSpan(s).Lower, heavyShardSpan(s).Upper)
		if got != a+b {
			t.Errorf("ShardSizes shard %d: %d, want %d", s, got, a+b)
		}
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.ShardSizes(cancelled, true); !errors.Is(err, context.Canceled) {
		t.Errorf("ShardSizes with a cancelled context: %v, want context.Canceled", err)
	}
	rep, err := db.Verify(context.Background(), VerifyOptions{Decode: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 || rep.Rows != 20+3+1+7+1 {
		t.Errorf("verify: %d rows, problems %v", rep.Rows, rep.Problems)
	}
	db.Close()

	// Reopen read-only: the manifest and the records agree.
	ro, err := Open(dir, quietOpts(Options{ReadOnly: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if n := len(ro.Files()); n != 2 {
		t.Errorf("%d files after reopen", n)
	}
	if got, w := readUser(t, ro, "alice", nil), append(want(1, a1), want(2, a2)...); !slices.Equal(got, w) {
		t.Errorf("alice after reopen: %v", got)
	}
}

func TestDB_Heavy(t *testing.T) {
	db, _ := createStore(t)
	bank1 := amounts("x", 30)
	loadFile(t, db, 1, "m1.csv", map[string][]string{"bank": bank1, "bob": {"1"}}, nil)
	bank2 := amounts("y", 9)
	// The bank becomes heavy with file 2: its file-1 blocks move.
	loadFile(t, db, 2, "m2.csv", map[string][]string{"bank": bank2, "bob": {"2"}}, []string{"bank"})
	if !db.IsHeavy([]byte("bank")) {
		t.Fatal("bank is not heavy")
	}
	if got, w := readUser(t, db, "bank", nil), append(want(1, bank1), want(2, bank2)...); !slices.Equal(got, w) {
		t.Errorf("bank:\n got %v\nwant %v", got, w)
	}
	// The normal copies are gone.
	if has, err := db.HasNormalRows([]byte("bank")); err != nil || has {
		t.Errorf("normal rows left: %v %v", has, err)
	}
	hs := db.HeavyUsers()
	if len(hs) != 1 || hs[0].User != "bank" || hs[0].Rows != 39 || len(hs[0].Files) != 2 {
		t.Fatalf("heavy users %+v", hs)
	}
	// Chunks cover the user's rows exactly once, in order.
	var got []string
	for _, c := range db.Chunks(hs[0], nil) {
		it, err := db.NewIter(context.Background(), c.Span, nil)
		if err != nil {
			t.Fatal(err)
		}
		var b Block
		n := 0
		for it.Next() {
			n++
			if err := it.Decode(&b); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < b.Len(); i++ {
				got = append(got, fmt.Sprintf("%d:%d:%s", it.File(), b.Line(i), b.Field(i, 1)))
			}
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if n != int(c.Blocks) || n > testCfg.ChunkBlocks {
			t.Errorf("chunk %+v has %d blocks", c, n)
		}
	}
	if w := append(want(1, bank1), want(2, bank2)...); !slices.Equal(got, w) {
		t.Errorf("chunks:\n got %v\nwant %v", got, w)
	}
	// Shard scans of the normal range do not meet the bank.
	for s := 0; s < db.Shards(); s++ {
		it, _ := db.NewIter(context.Background(), db.ShardSpan(s), nil)
		for it.Next() {
			if string(it.User()) == "bank" {
				t.Errorf("bank in shard scan")
			}
		}
		it.Close()
	}
	rep, err := db.Verify(context.Background(), VerifyOptions{})
	if err != nil || len(rep.Problems) > 0 {
		t.Errorf("verify: %v %v", err, rep.Problems)
	}
}

// TestDB_StaleNormalSkipped: a move to the heavy range that was killed
// before the normal copies were deleted leaves them; readers skip them and
// a writable Open removes them.
func TestDB_StaleNormalSkipped(t *testing.T) {
	db, dir := createStore(t)
	loadFile(t, db, 1, "m1.csv", map[string][]string{"bank": amounts("x", 5)}, nil)
	loadFile(t, db, 2, "m2.csv", map[string][]string{"bank": amounts("y", 2)}, []string{"bank"})
	// Put a stale normal block back, as if the deletion had not run.
	w := NewBlockWriter(2)
	w.Add(2, [][]byte{[]byte("bank"), []byte("stale")})
	k := AppendKey(nil, Key{Shard: db.ShardOf([]byte("bank")), User: []byte("bank"), File: 1})
	if err := db.pdb.Set(k, w.AppendValue(nil, CodecS2, db.Compressor()), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	for _, l := range readUser(t, db, "bank", nil) {
		if strings.HasSuffix(l, "stale") {
			t.Errorf("stale row read through UserSpan")
		}
	}
	s := db.ShardOf([]byte("bank"))
	it, _ := db.NewIter(context.Background(), db.ShardSpan(s), nil)
	for it.Next() {
		t.Errorf("shard scan returned %q", it.User())
	}
	it.Close()
	rep, _ := db.Verify(context.Background(), VerifyOptions{})
	if rep.Stale != 1 || len(rep.Problems) > 0 {
		t.Errorf("verify: stale %d, problems %v", rep.Stale, rep.Problems)
	}
	db.Close()
	db2, err := Open(dir, quietOpts(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if has, _ := db2.HasNormalRows([]byte("bank")); has {
		t.Errorf("writable Open left the stale rows")
	}
}

func TestDB_DeleteFile(t *testing.T) {
	db, dir := createStore(t)
	loadFile(t, db, 1, "m1.csv", map[string][]string{"alice": amounts("a", 9), "bob": {"1"}, "bank": amounts("b", 5)}, []string{"bank"})
	loadFile(t, db, 2, "m2.csv", map[string][]string{"alice": amounts("c", 3), "carol": {"1"}, "bank": amounts("d", 5)}, nil)
	loadFile(t, db, 3, "m3.csv", map[string][]string{"alice": amounts("e", 2)}, nil)
	if err := db.MarkDeleting(2); err != nil {
		t.Fatal(err)
	}
	// Deleting files are invisible at once.
	if got, w := readUser(t, db, "alice", nil), append(want(1, amounts("a", 9)), want(3, amounts("e", 2))...); !slices.Equal(got, w) {
		t.Errorf("alice while deleting: %v", got)
	}
	m, err := readManifestFile(vfs.Default, dir)
	if err != nil || m.Files[1].State != FileDeleting {
		t.Fatalf("manifest after MarkDeleting: %v %+v", err, m)
	}
	n, err := db.DeleteFile(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("deleted %d users' rows, want 3", n)
	}
	if _, ok := db.File(2); ok {
		t.Errorf("file 2 still recorded")
	}
	rep, err := db.Verify(context.Background(), VerifyOptions{})
	if err != nil || len(rep.Problems) > 0 || rep.Stale != 0 || rep.Rows != 9+1+5+2 {
		t.Errorf("verify: %v %+v", err, rep)
	}
	if got := readUser(t, db, "carol", nil); len(got) != 0 {
		t.Errorf("carol after delete: %v", got)
	}
	if db.NextFileID() != 4 {
		t.Errorf("next id %d", db.NextFileID())
	}
	if hs := db.HeavyUsers(); len(hs) != 1 || hs[0].Rows != 5 {
		t.Errorf("heavy after delete: %+v", hs)
	}
}

func TestOpen_Errors(t *testing.T) {
	tmp := t.TempDir()
	f := func(name string, setup func(dir string), ro bool, want error, msg string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(tmp, name)
			setup(dir)
			db, err := Open(dir, quietOpts(Options{ReadOnly: ro}))
			if err == nil {
				db.Close()
				t.Fatalf("Open succeeded")
			}
			if !errors.Is(err, want) {
				t.Errorf("error %v is not %v", err, want)
			}
			if !strings.Contains(err.Error(), msg) {
				t.Errorf("error %q does not say %q", err, msg)
			}
		})
	}
	good := func(dir string) {
		cfg := testCfg
		db, err := Open(dir, quietOpts(Options{Create: &cfg}))
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	edit := func(dir string, fn func(m map[string]any)) {
		b, _ := os.ReadFile(filepath.Join(dir, manifestName))
		var m map[string]any
		json.Unmarshal(b, &m)
		fn(m)
		b, _ = json.Marshal(m)
		os.WriteFile(filepath.Join(dir, manifestName), b, 0o644)
	}
	f("missing", func(string) {}, true, ErrNotExist, "does not exist")
	f("empty", func(d string) { os.MkdirAll(d, 0o755) }, true, ErrNotExist, "no MANIFEST.json")
	f("garbage-manifest", func(d string) {
		good(d)
		os.WriteFile(filepath.Join(d, manifestName), []byte("{\"format\": 1, \"files\": [tru"), 0o644)
	}, true, ErrCorrupt, "manifest")
	f("garbage-manifest-rw", func(d string) {
		good(d)
		os.WriteFile(filepath.Join(d, manifestName), []byte("\x00\x01"), 0o644)
	}, false, ErrCorrupt, "manifest")
	f("no-format", func(d string) { good(d); edit(d, func(m map[string]any) { delete(m, "format") }) }, true, ErrCorrupt, "no format version")
	f("newer-format", func(d string) { good(d); edit(d, func(m map[string]any) { m["format"] = 99 }) }, true, ErrVersion, "format version 99")
	f("older-format", func(d string) { good(d); edit(d, func(m map[string]any) { m["format"] = 0 }) }, false, ErrVersion, "partition the raw files again")
	f("newer-format-other-fields", func(d string) { // told by its format, though its fields do not decode here
		good(d)
		edit(d, func(m map[string]any) { m["format"] = 99; m["files"] = "elsewhere" })
	}, true, ErrVersion, "format version 99")
	f("manifest-lists-unknown-file", func(d string) {
		good(d)
		edit(d, func(m map[string]any) { m["files"] = []any{map[string]any{"id": 7, "name": "ghost.csv", "rows": 3}} })
	}, true, ErrCorrupt, "ghost.csv")
	f("manifest-without-db", func(d string) { good(d); os.RemoveAll(filepath.Join(d, "db")) }, true, ErrCorrupt, "no database")
	f("db-without-manifest-ro", func(d string) { good(d); os.Remove(filepath.Join(d, manifestName)) }, true, ErrCorrupt, "rebuild")
	f("db-config-other-version", func(d string) {
		good(d)
		pdb, err := pebble.Open(filepath.Join(d, "db"), &pebble.Options{Logger: pebbleLogger{slog.New(slog.NewTextHandler(io.Discard, nil))}})
		if err != nil {
			t.Fatal(err)
		}
		pdb.Set([]byte{kindMeta, metaConfig}, []byte(`{"format":99}`), pebble.Sync)
		pdb.Close()
	}, true, ErrVersion, "format version 99")
	f("db-file-record-garbage", func(d string) {
		good(d)
		pdb, err := pebble.Open(filepath.Join(d, "db"), &pebble.Options{Logger: pebbleLogger{slog.New(slog.NewTextHandler(io.Discard, nil))}})
		if err != nil {
			t.Fatal(err)
		}
		pdb.Set(metaFileKey(1), []byte(`{"id":`), pebble.Sync)
		pdb.Close()
	}, true, ErrCorrupt, "file record")
	f("db-garbage", func(d string) {
		good(d)
		ents, _ := os.ReadDir(filepath.Join(d, "db"))
		for _, e := range ents {
			os.WriteFile(filepath.Join(d, "db", e.Name()), []byte("garbage"), 0o644)
		}
	}, true, ErrCorrupt, "open database")
	f("not-a-store", func(d string) {
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "notes.txt"), nil, 0o644)
	}, true, ErrNotExist, "no MANIFEST.json")

	t.Run("db-without-manifest-rw-rebuilds", func(t *testing.T) {
		d := filepath.Join(tmp, "rebuild")
		good(d)
		os.Remove(filepath.Join(d, manifestName))
		db, err := Open(d, quietOpts(Options{}))
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		if _, err := readManifestFile(vfs.Default, d); err != nil {
			t.Errorf("manifest not rebuilt: %v", err)
		}
	})
	t.Run("create-in-nonempty-dir", func(t *testing.T) {
		d := filepath.Join(tmp, "nonempty")
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "notes.txt"), nil, 0o644)
		cfg := testCfg
		if db, err := Open(d, quietOpts(Options{Create: &cfg})); err == nil || !strings.Contains(err.Error(), "not empty") {
			if db != nil {
				db.Close()
			}
			t.Errorf("Open(Create) in a non-empty dir: %v", err)
		}
	})
}

// TestOpen_InterruptedCreate: a kill while pebble was creating the
// database can leave db/ with its lock and a first MANIFEST file but no
// manifest marker (pebble's own test of existence) and no store manifest.
// Creating the store again must work; opening it to read must say there is
// no store.
func TestOpen_InterruptedCreate(t *testing.T) {
	for _, files := range [][]string{{"LOCK"}, {"LOCK", "MANIFEST-000001"}, {"LOCK", "MANIFEST-000001", "OPTIONS-000003", "000002.log"}} {
		t.Run(strings.Join(files, "+"), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			if err := os.MkdirAll(filepath.Join(dir, "db"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if err := os.WriteFile(filepath.Join(dir, "db", f), []byte("half"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Open(dir, quietOpts(Options{ReadOnly: true})); !errors.Is(err, ErrNotExist) {
				t.Errorf("read-only Open: %v, want ErrNotExist", err)
			}
			cfg := testCfg
			db, err := Open(dir, quietOpts(Options{Create: &cfg}))
			if err != nil {
				t.Fatalf("Open(Create) after an interrupted creation: %v", err)
			}
			loadFile(t, db, 1, "jan.csv", map[string][]string{"u1": {"1.00"}}, nil)
			db.Close()
			db, err = Open(dir, quietOpts(Options{ReadOnly: true}))
			if err != nil {
				t.Fatalf("read-only Open of the new store: %v", err)
			}
			if len(db.Files()) != 1 {
				t.Errorf("%d files, want 1", len(db.Files()))
			}
			db.Close()
		})
	}
}

// TestOpen_ManifestLags: a run killed between its ingest and its manifest
// write leaves a manifest that lacks the file; readers use the database's
// records and a writable Open rewrites the manifest.
func TestOpen_ManifestLags(t *testing.T) {
	db, dir := createStore(t)
	loadFile(t, db, 1, "m1.csv", map[string][]string{"alice": {"1"}}, nil)
	old, _ := os.ReadFile(filepath.Join(dir, manifestName))
	loadFile(t, db, 2, "m2.csv", map[string][]string{"alice": {"2"}}, nil)
	db.Close()
	os.WriteFile(filepath.Join(dir, manifestName), old, 0o644)
	ro, err := Open(dir, quietOpts(Options{ReadOnly: true}))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ro.Files()); n != 2 {
		t.Errorf("read-only open sees %d files", n)
	}
	ro.Close()
	rw, err := Open(dir, quietOpts(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	rw.Close()
	m, err := readManifestFile(vfs.Default, dir)
	if err != nil || len(m.Files) != 2 || m.Rows != 2 {
		t.Errorf("manifest not rewritten: %v %+v", err, m)
	}
}

func TestVerify_Detects(t *testing.T) {
	db, _ := createStore(t)
	loadFile(t, db, 1, "m1.csv", map[string][]string{"alice": amounts("a", 20), "bob": {"1"}}, nil)
	f, _ := db.File(1)
	f.Rows++
	b, _ := json.Marshal(f)
	db.pdb.Set(metaFileKey(1), b, pebble.Sync)
	w := NewBlockWriter(2)
	w.Add(2, [][]byte{[]byte("zed"), []byte("1")})
	db.pdb.Set(AppendKey(nil, Key{Shard: db.ShardOf([]byte("zed")), User: []byte("zed"), File: 9}), w.AppendValue(nil, CodecS2, db.Compressor()), pebble.Sync)
	db.pdb.Set(AppendKey(nil, Key{Shard: (db.ShardOf([]byte("bob")) + 1) % 4, User: []byte("bob"), File: 1}), w.AppendValue(nil, CodecS2, db.Compressor()), pebble.Sync)
	if err := db.loadMeta(); err != nil {
		t.Fatal(err)
	}
	rep, err := db.Verify(context.Background(), VerifyOptions{Decode: true})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(rep.Problems, "\n")
	for _, want := range []string{"record says 22 rows, 5 blocks", "file 9, which no record names", "its hash says"} {
		if !strings.Contains(all, want) {
			t.Errorf("verify does not report %q:\n%s", want, all)
		}
	}
}
