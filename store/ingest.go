package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TempDir returns a fresh directory under the store's tmp/ for a writer's
// scratch files (sort runs). It is on the store's filesystem, and a
// writable Open empties tmp/, so what a killed run left is removed.
func (db *DB) TempDir(name string) (string, error) {
	if db.ro {
		return "", errors.New("store opened read-only")
	}
	d := filepath.Join(db.tmpDir(), name+"-"+strconv.Itoa(os.Getpid())+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := db.fs.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("make temp dir: %w", err)
	}
	return d, nil
}

// Loader stages one atomic ingest: Streams write sorted blocks into
// sstables under tmp/, and Ingest hands them, with the file records, to
// pebble in one Ingest. Either all of it becomes visible or none of it:
// readers never see a file's rows without its record or a record without
// its rows.
//
// Streams may be written from several goroutines at once; the tables of
// one Loader must not overlap (give each Stream its own shard range).
type Loader struct {
	db   *DB
	dir  string
	comp Compression

	mu     sync.Mutex
	seq    int
	tables []tableInfo
	done   bool
}

type tableInfo struct {
	path              string
	smallest, largest []byte
	bytes             int64
}

// NewLoader starts an ingest whose tables are compressed as c says
// (c.Value is the caller's business: it encodes the values).
func (db *DB) NewLoader(c Compression) (*Loader, error) {
	d, err := db.TempDir("load")
	if err != nil {
		return nil, err
	}
	return &Loader{db: db, dir: d, comp: c}, nil
}

// Close removes the Loader's leftover tables (after Ingest, or to abandon
// it).
func (l *Loader) Close() error { return l.db.fs.RemoveAll(l.dir) }

// Tables returns how many tables the Loader's streams have finished.
func (l *Loader) Tables() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tables)
}

func (l *Loader) newTablePath() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	return filepath.Join(l.dir, fmt.Sprintf("%06d.sst", l.seq))
}

// tableProfile is how pebble compresses the store's tables. table-zstd is
// zstd level 1 for data blocks: against level 3 it made partition about
// 10% faster for a store 1 point of raw bigger (37.5% against 36.5% on the
// benchmark's data), and reading is as fast.
func (c Compression) tableProfile() *sstable.CompressionProfile {
	switch c.Table {
	case "minlz":
		return sstable.FastestCompression
	case "zstd":
		return sstable.BalancedCompression
	}
	return sstable.NoCompression
}

// tableBlockBytes is the size of the sstables' data blocks, the unit
// pebble compresses and reads. 64 KiB against 32: the store 8% smaller
// (the bench's 300 MB: 37.6% → 34.8% of raw with MinLZ; 2 GB: 37.2% →
// 34.1%), partition 3–4% faster, reduce as fast, with the same RSS.
const tableBlockBytes = 64 << 10

func (l *Loader) writerOptions() sstable.WriterOptions {
	o := l.db.popts.MakeWriterOptions(6, l.db.pdb.TableFormat())
	o.Compression = l.comp.tableProfile()
	o.BlockSize = tableBlockBytes
	return o
}

// Stream writes keys in strictly increasing order into tables of about
// targetBytes each. It is not safe for concurrent use.
type Stream struct {
	l      *Loader
	target int64
	w      *sstable.Writer
	cur    tableInfo
	last   []byte
	keyBuf []byte
	n      int64 // bytes added to the current table
	err    error
	// OnTable, if set, is called after each finished table (a hook for
	// progress and tests).
	OnTable func(path string)
}

// NewStream returns a Stream; targetBytes <= 0 means 256 MiB.
func (l *Loader) NewStream(targetBytes int64) *Stream {
	if targetBytes <= 0 {
		targetBytes = 256 << 20
	}
	return &Stream{l: l, target: targetBytes}
}

// tableBytesPerSync is how much of a table is written before its
// write-back is started (sync_file_range).
const tableBytesPerSync = 1 << 20

// Add adds a raw key and value. Keys must increase strictly.
func (s *Stream) Add(key, value []byte) error {
	if s.err != nil {
		return s.err
	}
	if s.last != nil && bytes.Compare(key, s.last) <= 0 {
		s.err = fmt.Errorf("BUG: stream key %x after %x", key, s.last)
		return s.err
	}
	if s.w == nil {
		path := s.l.newTablePath()
		f, err := s.l.db.fs.Create(path, vfs.WriteCategoryUnspecified)
		if err != nil {
			s.err = fmt.Errorf("create table %s: %w", path, err)
			return s.err
		}
		// Start the write-back of every MiB as the table grows (pebble
		// does the same for its own tables), so that the fsync that ends
		// the table waits for its last stretch only.
		f = vfs.NewSyncingFile(f, vfs.SyncingFileOptions{BytesPerSync: tableBytesPerSync})
		s.w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), s.l.writerOptions())
		s.cur = tableInfo{path: path, smallest: bytes.Clone(key)}
		s.n = 0
	}
	if err := s.w.Set(key, value); err != nil {
		s.err = fmt.Errorf("write table %s: %w", s.cur.path, err)
		return s.err
	}
	s.last = append(s.last[:0], key...)
	s.n += int64(len(key) + len(value))
	if s.n >= s.target {
		return s.finish()
	}
	return nil
}

// AddBlock adds a block value under its data key.
func (s *Stream) AddBlock(k Key, value []byte) error {
	s.keyBuf = AppendKey(s.keyBuf[:0], k)
	return s.Add(s.keyBuf, value)
}

func (s *Stream) finish() error {
	if s.w == nil {
		return s.err
	}
	err := s.w.Close() // flushes, syncs and closes the file
	s.w = nil
	if err != nil {
		s.err = fmt.Errorf("finish table %s: %w", s.cur.path, err)
		return s.err
	}
	s.cur.largest = bytes.Clone(s.last)
	s.cur.bytes = s.n
	s.l.mu.Lock()
	s.l.tables = append(s.l.tables, s.cur)
	s.l.mu.Unlock()
	if s.OnTable != nil {
		s.OnTable(s.cur.path)
	}
	return nil
}

// Close finishes the last table.
func (s *Stream) Close() error { return s.finish() }

// Commit is what one ingest records besides its rows.
type Commit struct {
	// Files are the records to write: new files, and older files whose
	// Heavy parts changed because a user moved to the heavy range.
	Files []FileEntry
	// NewHeavy are users that enter the heavy range with this ingest, by
	// user key, with their shard.
	NewHeavy map[string]int
}

// Ingest makes the streams' tables and the commit's records visible in one
// atomic pebble Ingest, then removes the normal-range copies of users that
// moved to the heavy range. It does not rewrite MANIFEST.json: call
// DB.WriteManifest after it.
func (l *Loader) Ingest(ctx context.Context, c Commit) error {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return errors.New("BUG: Loader.Ingest called twice")
	}
	l.done = true
	tables := append([]tableInfo(nil), l.tables...)
	l.mu.Unlock()

	sort.Slice(tables, func(i, j int) bool { return bytes.Compare(tables[i].smallest, tables[j].smallest) < 0 })
	for i := 1; i < len(tables); i++ {
		if bytes.Compare(tables[i-1].largest, tables[i].smallest) >= 0 {
			return fmt.Errorf("BUG: ingest tables overlap: %s [%x..%x] and %s [%x..]",
				tables[i-1].path, tables[i-1].smallest, tables[i-1].largest, tables[i].path, tables[i].smallest)
		}
	}
	// The records go into their own table; meta keys sort before data.
	ms := l.NewStream(0)
	for _, f := range sortedFiles(c.Files) {
		b, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("encode file record: %w", err)
		}
		if err := ms.Add(metaFileKey(f.ID), b); err != nil {
			return err
		}
	}
	users := make([]string, 0, len(c.NewHeavy))
	for u := range c.NewHeavy {
		if err := validUser([]byte(u)); err != nil {
			return err
		}
		users = append(users, u)
	}
	sort.Slice(users, func(i, j int) bool {
		return bytes.Compare(metaHeavyKey([]byte(users[i])), metaHeavyKey([]byte(users[j]))) < 0
	})
	since := FileID(0)
	for _, f := range c.Files {
		since = max(since, f.ID)
	}
	newHeavy := map[string]heavyMeta{}
	for _, u := range users {
		hm := heavyMeta{Shard: c.NewHeavy[u], Since: since}
		newHeavy[u] = hm
		b, _ := json.Marshal(hm)
		if err := ms.Add(metaHeavyKey([]byte(u)), b); err != nil {
			return err
		}
	}
	if err := ms.Close(); err != nil {
		return err
	}
	l.mu.Lock()
	tables = append([]tableInfo(nil), l.tables...)
	l.mu.Unlock()
	paths := make([]string, len(tables))
	for i, t := range tables {
		paths[i] = t.path
	}
	if len(paths) == 0 {
		return nil
	}
	if err := l.db.pdb.Ingest(ctx, paths); err != nil {
		return fmt.Errorf("ingest %d tables into store %s: %w", len(paths), l.db.dir, err)
	}
	db := l.db
	db.mu.Lock()
	for i := range c.Files {
		f := cloneEntry(&c.Files[i])
		db.files[f.ID] = &f
	}
	for u, hm := range newHeavy {
		db.heavy[u] = hm
	}
	db.mu.Unlock()
	if len(newHeavy) > 0 {
		return db.cleanStaleNormal(ctx)
	}
	return nil
}

func sortedFiles(fs []FileEntry) []FileEntry {
	out := append([]FileEntry(nil), fs...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	for i := 1; i < len(out); i++ {
		if out[i].ID == out[i-1].ID {
			panic(fmt.Sprintf("BUG: file record %d twice in one commit", out[i].ID))
		}
	}
	return out
}

// CopyToHeavy writes a user's blocks from the normal range into s,
// re-keyed into the heavy range (values are copied as they are), and
// returns the user's rows and blocks per file. Partition calls it when a
// user becomes heavy, before the user's new blocks; the normal copies are
// removed after the ingest.
func (db *DB) CopyToHeavy(ctx context.Context, user []byte, s *Stream) (map[FileID]HeavyFile, error) {
	sp := userSpan(false, db.ShardOf(user), user)
	it, err := db.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: sp.Lower, UpperBound: sp.Upper})
	if err != nil {
		return nil, db.readErr(fmt.Sprintf("read user %q", user), err)
	}
	defer it.Close()
	out := map[FileID]HeavyFile{}
	for it.First(); it.Valid(); it.Next() {
		k, err := DecodeKey(it.Key())
		if err != nil {
			return nil, err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, db.readErr(fmt.Sprintf("read user %q", user), err)
		}
		h, err := ParseValueHeader(v)
		if err != nil {
			return nil, fmt.Errorf("user %q file %d block %d: %w", user, k.File, k.Seq, err)
		}
		k.Heavy = true
		if err := s.AddBlock(k, v); err != nil {
			return nil, err
		}
		hf := out[k.File]
		hf.File = k.File
		hf.Rows += int64(h.Rows)
		hf.Blocks++
		out[k.File] = hf
	}
	if err := it.Error(); err != nil {
		return nil, db.readErr(fmt.Sprintf("read user %q", user), err)
	}
	return out, nil
}

// HasNormalRows reports whether user has blocks in the normal range.
func (db *DB) HasNormalRows(user []byte) (bool, error) {
	sp := userSpan(false, db.ShardOf(user), user)
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: sp.Lower, UpperBound: sp.Upper})
	if err != nil {
		return false, db.readErr(fmt.Sprintf("read user %q", user), err)
	}
	ok := it.First()
	if err := it.Close(); err != nil {
		return false, db.readErr(fmt.Sprintf("read user %q", user), err)
	}
	return ok, nil
}

// cleanStaleNormal removes the normal-range blocks of heavy users: copies
// left by a move to the heavy range (readers skip them meanwhile).
func (db *DB) cleanStaleNormal(ctx context.Context) error {
	db.mu.RLock()
	shards := db.cfg.Shards
	var spans []Span
	for u := range db.heavy {
		spans = append(spans, userSpan(false, int(hashShard([]byte(u), shards)), []byte(u)))
	}
	db.mu.RUnlock()
	b := db.pdb.NewBatch()
	defer b.Close()
	for _, sp := range spans {
		if err := ctx.Err(); err != nil {
			return err
		}
		it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: sp.Lower, UpperBound: sp.Upper})
		if err != nil {
			return db.readErr("look for moved rows", err)
		}
		has := it.First()
		if err := it.Close(); err != nil {
			return db.readErr("look for moved rows", err)
		}
		if has {
			if err := b.DeleteRange(sp.Lower, sp.Upper, nil); err != nil {
				return err
			}
		}
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("remove moved rows: %w", err)
	}
	return nil
}

// MarkDeleting records that file id is being removed (--replace): from
// then on readers skip its rows, and a run that is killed finishes the
// deletion on the next run.
func (db *DB) MarkDeleting(id FileID) error {
	f, ok := db.File(id)
	if !ok {
		return fmt.Errorf("no file %d in the store", id)
	}
	f.State = FileDeleting
	b, _ := json.Marshal(f)
	if err := db.pdb.Set(metaFileKey(id), b, pebble.Sync); err != nil {
		return fmt.Errorf("mark file %s deleting: %w", f.Name, err)
	}
	db.mu.Lock()
	db.files[id] = &f
	db.mu.Unlock()
	return db.WriteManifest()
}

// DeleteFile removes every row of a file marked deleting, then its record,
// and returns how many users' rows it removed.
// It is idempotent: a killed DeleteFile is finished by calling it again.
// It seeks once or twice per user rather than reading every block.
func (db *DB) DeleteFile(ctx context.Context, id FileID) (groups int64, err error) {
	f, ok := db.File(id)
	if !ok {
		return 0, fmt.Errorf("no file %d in the store", id)
	}
	if f.State != FileDeleting {
		return 0, fmt.Errorf("BUG: DeleteFile(%d) of a live file; MarkDeleting first", id)
	}
	sp := allDataSpan()
	it, err := db.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: sp.Lower, UpperBound: sp.Upper})
	if err != nil {
		return 0, db.readErr("delete rows of "+f.Name, err)
	}
	defer it.Close()
	b := db.pdb.NewBatch()
	defer func() { b.Close() }()
	var prefix, seek []byte
	n := 0
	for valid := it.First(); valid; {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return groups, err
			}
		}
		n++
		k, err := DecodeKey(it.Key())
		if err != nil {
			return groups, err
		}
		prefix = appendUserPrefix(prefix[:0], k.Heavy, k.Shard, k.User)
		if k.File < id {
			seek = append(append(seek[:0], prefix...), byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
			if !it.SeekGE(seek) {
				break
			}
			if k, err = DecodeKey(it.Key()); err != nil {
				return groups, err
			}
			if !bytes.HasPrefix(it.Key(), prefix) {
				continue // next user
			}
		}
		if k.File == id {
			fs := fileSpanOfUser(k.Heavy, k.Shard, k.User, id)
			if err := b.DeleteRange(fs.Lower, fs.Upper, nil); err != nil {
				return groups, err
			}
			groups++
			if b.Len() > 4<<20 {
				if err := b.Commit(pebble.NoSync); err != nil {
					return groups, fmt.Errorf("delete rows of %s: %w", f.Name, err)
				}
				b.Close()
				b = db.pdb.NewBatch()
			}
		}
		valid = it.SeekGE(prefixSuccessor(prefix))
	}
	if err := it.Error(); err != nil {
		return groups, db.readErr("delete rows of "+f.Name, err)
	}
	if err := b.Delete(metaFileKey(id), nil); err != nil {
		return groups, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return groups, fmt.Errorf("delete rows of %s: %w", f.Name, err)
	}
	db.mu.Lock()
	delete(db.files, id)
	db.mu.Unlock()
	return groups, db.WriteManifest()
}

// Layers returns how many sorted layers of tables a reader merges: the
// sublevels of level 0 (an ingest that overlaps stored rows adds one) and
// the non-empty levels below it. Known only in a writable DB (0 else).
func (db *DB) Layers() int {
	return db.pdb.Metrics().ReadAmp()
}

// Compact rewrites the data into the bottom level, so that readers merge
// one layer again. It reads and writes the whole store: partition calls it
// only when incremental runs have piled up layers.
func (db *DB) Compact(ctx context.Context) error {
	sp := allDataSpan()
	if err := db.pdb.Compact(ctx, sp.Lower, sp.Upper, true); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	return nil
}
