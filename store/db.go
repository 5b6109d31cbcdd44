package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
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
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/mce-engine/mce/internal/userhash"
)

// Options says how to open a store. The zero value opens an existing store
// for reading and writing.
type Options struct {
	// ReadOnly opens the store for reading only (reduce, info, verify).
	ReadOnly bool
	// Create, when the directory holds no store, makes a new one with this
	// config (ignored for an existing store).
	Create *Config
	// CacheBytes is pebble's block cache (default 32 MiB).
	CacheBytes int64
	// Concurrency bounds parallel zstd encodes/decodes (default GOMAXPROCS).
	Concurrency int
	Logger      *slog.Logger
	// NoLockWait makes Open fail at once when another process holds the
	// store, instead of waiting up to a few seconds for it to let go.
	NoLockWait bool
}

// DB is an opened store. Its read methods are safe for concurrent use;
// every goroutine makes its own iterators. Writes (Loader, DeleteFile) are
// for one partition run at a time; pebble's directory lock keeps other
// processes out while a store is open.
type DB struct {
	dir    string
	pdb    *pebble.DB
	popts  *pebble.Options
	lock   *pebble.Lock
	cache  *pebble.Cache
	comp   *Compressor
	logger *slog.Logger
	ro     bool

	mu    sync.RWMutex
	cfg   Config
	files map[FileID]*FileEntry
	heavy map[string]heavyMeta
}

// Dir returns the store directory.
func (db *DB) Dir() string { return db.dir }

func (db *DB) dbDir() string  { return filepath.Join(db.dir, "db") }
func (db *DB) tmpDir() string { return filepath.Join(db.dir, "tmp") }

// lockWait is how long Open waits for a store another process holds.
const lockWait = 5 * time.Second

// Open opens the store in dir. A directory that is not a store gives
// ErrNotExist (unless opts.Create is set); a store of another format,
// ErrVersion; an unreadable manifest or database, ErrCorrupt.
//
// A writable Open also repairs what an interrupted partition run left:
// it empties tmp/, rewrites MANIFEST.json from the database when it lags
// behind, and finishes pending heavy-user moves. Deletions of replaced
// files are finished by the caller (see DB.Deleting and DB.DeleteFile).
func Open(dir string, opts *Options) (*DB, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 32 << 20
	}
	if o.Concurrency <= 0 {
		o.Concurrency = runtime.GOMAXPROCS(0)
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && o.Create != nil && !o.ReadOnly:
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create store: %w", err)
		}
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w at %s: the directory does not exist (make one with mce partition)", ErrNotExist, dir)
	case err != nil:
		return nil, fmt.Errorf("open store: %w", err)
	case !st.IsDir():
		return nil, fmt.Errorf("%w at %s: not a directory", ErrNotExist, dir)
	}
	db := &DB{dir: dir, logger: o.Logger.With("store", dir), ro: o.ReadOnly}

	man, merr := readManifestFile(dir)
	// NB: a kill while a store is created can leave db/ with some of
	// pebble's files (LOCK, even MANIFEST-000001): a database exists once
	// pebble has written its manifest marker, which is what pebble itself
	// looks for.
	ents, _ := os.ReadDir(filepath.Join(dir, "db"))
	dbExists := false
	for _, e := range ents {
		dbExists = dbExists || strings.HasPrefix(e.Name(), "marker.manifest.")
	}
	creating := false
	switch {
	case merr == nil:
		if !dbExists {
			return nil, fmt.Errorf("%w: %s has a manifest but no database (db/ is missing or empty)", ErrCorrupt, dir)
		}
	case errors.Is(merr, fs.ErrNotExist):
		switch {
		case dbExists && o.ReadOnly:
			return nil, fmt.Errorf("%w: %s has a database but no %s; run mce partition on the store to rebuild it", ErrCorrupt, dir, manifestName)
		case dbExists:
			db.logger.Warn("manifest missing; rebuilding it from the database")
		case o.Create != nil && !o.ReadOnly:
			if err := checkEmptyForCreate(dir); err != nil {
				return nil, err
			}
			creating = true
		default:
			return nil, fmt.Errorf("%w at %s: no %s (make one with mce partition)", ErrNotExist, dir, manifestName)
		}
	default:
		return nil, merr
	}

	popts := &pebble.Options{
		ReadOnly:           o.ReadOnly,
		ErrorIfNotExists:   !creating,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{db.logger},
		// NB: pebble's default DataCorruption handler calls Logger.Fatalf,
		// which exits the process; log it and let the read return its error.
		EventListener: &pebble.EventListener{DataCorruption: func(info pebble.DataCorruptionInfo) {
			db.logger.Error("on-disk corruption", "path", info.Path, "error", info.Details)
		}},
	}
	// Compactions rewrite tables with the store's default compression;
	// it is read from the manifest (or the creating config) because the
	// database must be opened to read its own config.
	var tc Compression
	switch {
	case creating:
		c, err := ParseCompression(cmp.Or(o.Create.Codec, DefaultCompression))
		if err != nil {
			return nil, fmt.Errorf("store config: %w", err)
		}
		tc = c
	case man != nil:
		tc, _ = ParseCompression(man.Codec)
	}
	tableComp := pebble.DBCompressionNone
	if tc.Table != "" {
		tableComp = pebble.UniformDBCompressionSettings(tc.tableProfile())
	}
	popts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return tableComp })
	if creating {
		if err := os.MkdirAll(db.dbDir(), 0o755); err != nil {
			return nil, fmt.Errorf("create store: %w", err)
		}
	}
	// Lock first, so that "in use" is told apart from a damaged database.
	// NB: a process killed a moment ago (a cluster of an mce that got
	// SIGKILL, say) may still hold the lock until the kernel reaps it:
	// wait a little before calling the store busy.
	lock, err := pebble.LockDirectory(db.dbDir(), vfs.Default)
	for deadline := time.Now().Add(lockWait); err != nil && !o.NoLockWait && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		lock, err = pebble.LockDirectory(db.dbDir(), vfs.Default)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s is in use by another mce process (or its lock cannot be taken): %w", dir, err)
	}
	if creating {
		// What an interrupted creation left in db/ holds no data (there
		// is no manifest marker): start from an empty directory.
		if err := clearDir(db.dbDir(), "LOCK"); err != nil {
			lock.Close()
			return nil, fmt.Errorf("create store: %w", err)
		}
	}
	popts.Lock = lock
	db.lock = lock
	db.cache = pebble.NewCache(o.CacheBytes)
	popts.Cache = db.cache
	pdb, err := pebble.Open(db.dbDir(), popts)
	if err != nil {
		db.cache.Unref()
		lock.Close()
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("open database %s: %w", db.dbDir(), err)
		}
		return nil, fmt.Errorf("%w: open database %s: %v", ErrCorrupt, db.dbDir(), err)
	}
	db.pdb, db.popts = pdb, popts
	if !creating && man == nil && o.Create != nil && !o.ReadOnly {
		// A database without the store's config was being created when
		// it was killed (the config is its first record): create it again.
		if _, closer, err := pdb.Get([]byte{kindMeta, metaConfig}); errors.Is(err, pebble.ErrNotFound) {
			creating = true
		} else if err == nil {
			closer.Close()
		}
	}
	fail := func(err error) (*DB, error) {
		db.pdb.Close()
		db.cache.Unref()
		db.lock.Close()
		return nil, err
	}
	if creating {
		cfg := *o.Create
		cfg.ensureDefaults()
		cfg.Created = time.Now().UTC()
		if err := cfg.validate(); err != nil {
			return fail(err)
		}
		b, _ := json.Marshal(cfg)
		if err := pdb.Set([]byte{kindMeta, metaConfig}, b, pebble.Sync); err != nil {
			return fail(fmt.Errorf("write store config: %w", err))
		}
	}
	if err := db.loadMeta(); err != nil {
		return fail(err)
	}
	comp, err := NewCompressor(o.Concurrency)
	if err != nil {
		return fail(err)
	}
	db.comp = comp
	fail = func(err error) (*DB, error) {
		db.Close()
		return nil, err
	}

	if man != nil {
		missing, extra := diffFiles(man.Files, db.allFiles())
		if len(extra) > 0 {
			return fail(fmt.Errorf("%w: manifest %s lists files the database does not hold: %s",
				ErrCorrupt, filepath.Join(dir, manifestName), fileNames(extra)))
		}
		if len(missing) > 0 {
			if o.ReadOnly {
				db.logger.Warn("manifest lags the database (a partition run was interrupted); using the database's records",
					"files", fileNames(missing))
			} else {
				db.logger.Info("manifest lags the database; rewriting it", "files", fileNames(missing))
				man = nil
			}
		}
	}
	if !o.ReadOnly {
		if err := os.RemoveAll(db.tmpDir()); err != nil {
			return fail(fmt.Errorf("clear %s: %w", db.tmpDir(), err))
		}
		if err := db.cleanStaleNormal(context.Background()); err != nil {
			return fail(err)
		}
		if man == nil {
			if err := db.WriteManifest(); err != nil {
				return fail(err)
			}
		}
	}
	return db, nil
}

// checkEmptyForCreate refuses to make a store in a directory that holds
// other things.
// clearDir removes everything in dir but the named entry.
func clearDir(dir, keep string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() == keep {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func checkEmptyForCreate(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range ents {
		switch e.Name() {
		case "db", "tmp", manifestName, manifestName + ".tmp":
			continue
		}
		return fmt.Errorf("%s is not empty and is not an mce store (found %s); choose another --out", dir, e.Name())
	}
	return nil
}

// loadMeta reads the config, file and heavy records from the database.
func (db *DB) loadMeta() error {
	v, closer, err := db.pdb.Get([]byte{kindMeta, metaConfig})
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("%w: database %s has no store config", ErrCorrupt, db.dbDir())
	}
	if err != nil {
		return fmt.Errorf("%w: read store config: %v", ErrCorrupt, err)
	}
	var probe struct {
		Format int `json:"format"`
	}
	perr := json.Unmarshal(v, &probe)
	var cfg Config
	if perr == nil {
		perr = json.Unmarshal(v, &cfg)
	}
	closer.Close()
	if perr != nil {
		return fmt.Errorf("%w: store config: %v", ErrCorrupt, perr)
	}
	if probe.Format != FormatVersion {
		return versionError(db.dir, probe.Format)
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	files := map[FileID]*FileEntry{}
	heavy := map[string]heavyMeta{}
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{kindMeta, metaFile}, UpperBound: []byte{kindMeta, metaHeavy + 1}})
	if err != nil {
		return fmt.Errorf("%w: read meta: %v", ErrCorrupt, err)
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		switch k[1] {
		case metaFile:
			if len(k) != 6 {
				it.Close()
				return fmt.Errorf("%w: bad file record key %x", ErrCorrupt, k)
			}
			fe := new(FileEntry)
			if err := json.Unmarshal(it.Value(), fe); err != nil {
				it.Close()
				return fmt.Errorf("%w: file record %x: %v", ErrCorrupt, k, err)
			}
			if fe.ID != FileID(binary.BigEndian.Uint32(k[2:])) {
				it.Close()
				return fmt.Errorf("%w: file record %x holds id %d", ErrCorrupt, k, fe.ID)
			}
			files[fe.ID] = fe
		case metaHeavy:
			user, rest, err := splitEscaped(k[2:])
			if err != nil || len(rest) != 0 {
				it.Close()
				return fmt.Errorf("%w: bad heavy user key %x", ErrCorrupt, k)
			}
			var hm heavyMeta
			if err := json.Unmarshal(it.Value(), &hm); err != nil {
				it.Close()
				return fmt.Errorf("%w: heavy user %q: %v", ErrCorrupt, user, err)
			}
			heavy[string(user)] = hm
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("%w: read meta: %v", ErrCorrupt, err)
	}
	db.mu.Lock()
	db.cfg, db.files, db.heavy = cfg, files, heavy
	db.mu.Unlock()
	return nil
}

// Close closes the store.
func (db *DB) Close() error {
	if db.pdb == nil {
		return nil
	}
	err := db.pdb.Close()
	db.pdb = nil
	db.cache.Unref()
	if lerr := db.lock.Close(); err == nil {
		err = lerr
	}
	if db.comp != nil {
		db.comp.Close()
	}
	return err
}

// Config returns the store's config.
func (db *DB) Config() Config {
	db.mu.RLock()
	defer db.mu.RUnlock()
	c := db.cfg
	c.Schema = slices.Clone(c.Schema)
	return c
}

// Shards returns the number of hash shards.
func (db *DB) Shards() int {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.cfg.Shards
}

// ShardOf returns the shard of a user key.
func (db *DB) ShardOf(user []byte) int {
	return int(hashShard(user, db.Shards()))
}

// hashShard is the shard of a user among shards.
func hashShard(user []byte, shards int) uint64 { return userhash.Sum(user) % uint64(shards) }

// Compressor returns the store's shared compressor.
func (db *DB) Compressor() *Compressor { return db.comp }

// Files returns the live files, by ID (which is ingest order).
func (db *DB) Files() []FileEntry {
	db.mu.RLock()
	defer db.mu.RUnlock()
	var out []FileEntry
	for _, f := range db.files {
		if f.State == FileLive {
			out = append(out, cloneEntry(f))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// allFiles returns every file record, live or not, by ID.
func (db *DB) allFiles() []FileEntry {
	db.mu.RLock()
	defer db.mu.RUnlock()
	out := make([]FileEntry, 0, len(db.files))
	for _, f := range db.files {
		out = append(out, cloneEntry(f))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Deleting returns the files whose deletion (--replace) has not finished.
func (db *DB) Deleting() []FileEntry {
	var out []FileEntry
	for _, f := range db.allFiles() {
		if f.State == FileDeleting {
			out = append(out, f)
		}
	}
	return out
}

// File returns the record of file id (live or not).
func (db *DB) File(id FileID) (FileEntry, bool) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	f, ok := db.files[id]
	if !ok {
		return FileEntry{}, false
	}
	return cloneEntry(f), true
}

// FileByName returns the record of the live file with that name.
func (db *DB) FileByName(name string) (FileEntry, bool) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	for _, f := range db.files {
		if f.Name == name && f.State == FileLive {
			return cloneEntry(f), true
		}
	}
	return FileEntry{}, false
}

// NextFileID returns the ID the next ingested file gets.
func (db *DB) NextFileID() FileID {
	db.mu.RLock()
	defer db.mu.RUnlock()
	next := FileID(1)
	for id := range db.files {
		if id >= next {
			next = id + 1
		}
	}
	return next
}

func cloneEntry(f *FileEntry) FileEntry {
	c := *f
	c.Heavy = slices.Clone(f.Heavy)
	return c
}

// Rows returns the number of rows of the live files.
func (db *DB) Rows() int64 {
	db.mu.RLock()
	defer db.mu.RUnlock()
	var n int64
	for _, f := range db.files {
		if f.State == FileLive {
			n += f.Rows
		}
	}
	return n
}

// IsHeavy reports whether user lives in the heavy range.
func (db *DB) IsHeavy(user []byte) bool {
	db.mu.RLock()
	defer db.mu.RUnlock()
	_, ok := db.heavy[string(user)]
	return ok
}

// HeavyUsers returns the heavy users, most rows first, with their rows per
// live file. Schedule them first; split them with Chunks.
func (db *DB) HeavyUsers() []HeavyUser {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.heavyUsersLocked()
}

func (db *DB) heavyUsersLocked() []HeavyUser {
	var total int64
	ids := make([]FileID, 0, len(db.files))
	for id, f := range db.files {
		if f.State == FileLive {
			total += f.Rows
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	byUser := map[string]*HeavyUser{}
	for u, hm := range db.heavy {
		byUser[u] = &HeavyUser{User: u, Shard: hm.Shard}
	}
	for _, id := range ids {
		for _, p := range db.files[id].Heavy {
			h, ok := byUser[p.User]
			if !ok {
				continue // a part recorded before the user's heavy record: cannot happen
			}
			h.Rows += p.Rows
			h.Files = append(h.Files, HeavyFile{File: id, Rows: p.Rows, Blocks: p.Blocks})
		}
	}
	out := make([]HeavyUser, 0, len(byUser))
	for _, h := range byUser {
		if total > 0 {
			h.Share = float64(h.Rows) / float64(total)
		}
		out = append(out, *h)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Rows != out[j].Rows {
			return out[i].Rows > out[j].Rows
		}
		return out[i].User < out[j].User
	})
	return out
}

// Chunks cuts a heavy user's rows into chunks of at most the store's
// ChunkBlocks blocks each, file by file, in file order. Restrict them to
// some files with keep (nil keeps all).
func (db *DB) Chunks(h HeavyUser, keep func(FileID) bool) []Chunk {
	per := db.Config().ChunkBlocks
	var out []Chunk
	for _, f := range h.Files {
		if keep != nil && !keep(f.File) {
			continue
		}
		for i := 0; int64(i)*int64(per) < f.Blocks; i++ {
			first := uint32(i * per)
			n := uint32(min(int64(per), f.Blocks-int64(first)))
			out = append(out, Chunk{
				User: h.User, Shard: h.Shard, File: f.File, Index: i, FirstBlock: first, Blocks: n,
				Span: blockSpan(true, h.Shard, []byte(h.User), f.File, first, uint64(first)+uint64(n)),
			})
		}
	}
	return out
}

// ShardSpan returns the span of a shard's normal (not heavy) users.
func (db *DB) ShardSpan(shard int) Span { return shardSpan(shard) }

// HeavyShardSpan returns the span of a shard's heavy users.
func (db *DB) HeavyShardSpan(shard int) Span { return heavyShardSpan(shard) }

// HeavySpan returns the span of every heavy user.
func (db *DB) HeavySpan() Span { return allHeavySpan() }

// UserSpan returns the span of one user's blocks, in the heavy or the
// normal range as the user is.
func (db *DB) UserSpan(user []byte) Span {
	return userSpan(db.IsHeavy(user), db.ShardOf(user), user)
}

// Manifest returns the store's description, as MANIFEST.json holds it.
func (db *DB) Manifest() *Manifest {
	db.mu.RLock()
	defer db.mu.RUnlock()
	m := &Manifest{Config: db.cfg, Heavy: db.heavyUsersLocked(), Updated: time.Now().UTC()}
	m.Schema = slices.Clone(m.Schema)
	for _, f := range db.files {
		m.Files = append(m.Files, cloneEntry(f))
		if f.State == FileLive {
			m.Rows += f.Rows
		}
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].ID < m.Files[j].ID })
	return m
}

// WriteManifest rewrites MANIFEST.json from the database's records.
func (db *DB) WriteManifest() error {
	if db.ro {
		return errors.New("store opened read-only")
	}
	if err := writeManifestFile(db.dir, db.Manifest()); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// validUser checks that a heavy user's key can be written into JSON
// records without loss.
func validUser(u []byte) error {
	if !utf8.Valid(u) {
		return fmt.Errorf("heavy user key %q is not valid UTF-8", u)
	}
	return nil
}

// pebbleLogger sends pebble's log lines to slog at debug level (errors at
// error level).
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "subsystem", "pebble")
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "subsystem", "pebble")
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "subsystem", "pebble")
	os.Exit(70)
}
