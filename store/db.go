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
	// FS is the filesystem the store lives on (default vfs.Default, the
	// operating system's). Every file of the store goes through it: the
	// database, MANIFEST.json and a writer's scratch in tmp/. Tests wrap
	// it to inject I/O errors (pebble's vfs/errorfs) or put the store on
	// a crashable in-memory filesystem (vfs.NewCrashableMem) to cut the
	// power at chosen moments.
	FS vfs.FS
}

func (o *Options) ensureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 32 << 20
	}
	if o.Concurrency <= 0 {
		o.Concurrency = runtime.GOMAXPROCS(0)
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
}

// DB is an opened store. Its read methods are safe for concurrent use;
// every goroutine makes its own iterators. Writes (Loader, DeleteFile) are
// for one partition run at a time; pebble's directory lock keeps other
// processes out while a store is open for writing, and writers out while
// readers (who share it) hold it.
type DB struct {
	dir    string
	fs     vfs.FS
	pdb    *pebble.DB
	popts  *pebble.Options
	lock   *pebble.Lock
	cache  *pebble.Cache
	comp   *Compressor
	logger *slog.Logger
	ro     bool
	// corrupt remembers the files pebble reported damaged, to log each once.
	corrupt sync.Map

	mu    sync.RWMutex
	cfg   Config
	files map[FileID]*FileEntry
	heavy map[string]heavyMeta
}

// Dir returns the store directory.
func (db *DB) Dir() string { return db.dir }

// FS returns the filesystem the store lives on: a writer puts its scratch
// files (TempDir) through it.
func (db *DB) FS() vfs.FS { return db.fs }

func (db *DB) dbDir() string  { return filepath.Join(db.dir, "db") }
func (db *DB) tmpDir() string { return filepath.Join(db.dir, "tmp") }

// lockWait is how long Open waits for a store another process holds.
const lockWait = 5 * time.Second

// Open opens the store in dir. A directory that is not a store gives
// ErrNotExist (unless opts.Create is set); a store of another format,
// ErrVersion; an unreadable manifest or database, ErrCorrupt.
//
// Open goes in steps: it checks (or makes) the directory, looks at what
// it holds (MANIFEST.json, a database in db/), takes pebble's directory
// lock, looks again (another process may have made or changed the store
// while this one waited), opens the database, writes the config of a new
// store, loads the records and checks MANIFEST.json against them.
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
	o.ensureDefaults()
	if err := prepareDir(o, dir); err != nil {
		return nil, err
	}
	db := &DB{dir: dir, fs: o.FS, logger: o.Logger.With("store", dir), ro: o.ReadOnly}
	st, err := db.inspect(o, nil)
	if err != nil {
		return nil, err
	}
	if st.creating {
		if err := db.makeDBDir(); err != nil {
			return nil, err
		}
	}
	lock, err := db.lockDir(o.NoLockWait, o.ReadOnly)
	if err != nil {
		return nil, err
	}
	// NB: another process may have made the store, ingested into it or
	// rewritten its manifest while this one waited for the lock: what was
	// seen before it no longer holds. (A second partition that took a new
	// store for its own would otherwise clear the first one's database.)
	if st, err = db.inspect(o, &st); err != nil {
		lock.Close()
		return nil, err
	}
	if err := db.openPebble(o, st, lock); err != nil {
		return nil, err
	}
	if err := db.initMeta(o, st); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.checkManifest(o, st); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// prepareDir checks that dir is a directory, or makes it for a new store.
func prepareDir(o Options, dir string) error {
	st, err := o.FS.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && o.Create != nil && !o.ReadOnly:
		if err := o.FS.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create store %s: %w", dir, err)
		}
		// The new directory's entry must survive a power cut before
		// anything inside it is said to be stored.
		if err := syncDir(o.FS, filepath.Dir(dir)); err != nil {
			return fmt.Errorf("create store %s: %w", dir, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w at %s: the directory does not exist (make one with mce partition)", ErrNotExist, dir)
	case err != nil:
		return fmt.Errorf("open store: %w", err)
	case !st.IsDir():
		return fmt.Errorf("%w at %s: not a directory", ErrNotExist, dir)
	}
	return nil
}

// openState is what Open found in the store directory.
type openState struct {
	man      *Manifest // MANIFEST.json, nil when missing
	manBytes []byte    // the bytes man was read from
	// dbExists: db/ holds a pebble database.
	dbExists bool
	// creating: the store is made now (nothing of it was stored).
	creating bool
}

// inspect reads MANIFEST.json and looks for a database, and decides
// whether the store is made now, or refuses what is there. A manifest
// whose bytes are those prev read is not parsed again.
func (db *DB) inspect(o Options, prev *openState) (openState, error) {
	var st openState
	var pm *Manifest
	var pb []byte
	if prev != nil {
		pm, pb = prev.man, prev.manBytes
	}
	man, b, merr := readManifestReusing(db.fs, db.dir, pm, pb)
	st.man, st.manBytes = man, b
	// NB: a kill while a store is created can leave db/ with some of
	// pebble's files (LOCK, even MANIFEST-000001): a database exists once
	// pebble has written its manifest marker, which is what pebble itself
	// looks for.
	names, err := db.fs.List(db.dbDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// NB: not "no database": a store taken for empty would be
		// created again over its database.
		return st, fmt.Errorf("read %s: %w", db.dbDir(), err)
	}
	for _, n := range names {
		st.dbExists = st.dbExists || strings.HasPrefix(n, "marker.manifest.")
	}
	switch {
	case merr == nil:
		if !st.dbExists {
			return st, fmt.Errorf("%w: %s has a manifest but no database (db/ is missing or empty)", ErrCorrupt, db.dir)
		}
	case errors.Is(merr, fs.ErrNotExist):
		switch {
		case st.dbExists && o.ReadOnly:
			return st, fmt.Errorf("%w: %s has a database but no %s; run mce partition on the store to rebuild it", ErrCorrupt, db.dir, manifestName)
		case st.dbExists:
			// Rebuilt from the database by checkManifest.
		case o.Create != nil && !o.ReadOnly:
			if err := checkEmptyForCreate(db.fs, db.dir); err != nil {
				return st, err
			}
			st.creating = true
		default:
			return st, fmt.Errorf("%w at %s: no %s (make one with mce partition)", ErrNotExist, db.dir, manifestName)
		}
	default:
		return st, merr
	}
	return st, nil
}

// makeDBDir makes db/ for a new store.
func (db *DB) makeDBDir() error {
	if err := db.fs.MkdirAll(db.dbDir(), 0o755); err != nil {
		return fmt.Errorf("create store %s: %w", db.dir, err)
	}
	if err := syncDir(db.fs, db.dir); err != nil {
		return fmt.Errorf("create store %s: %w", db.dir, err)
	}
	return nil
}

// lockDir takes pebble's lock of db/, so that "in use" is told apart from
// a damaged database. A reader's lock is shared (see sharedLockFS): many
// readers hold it at once, a writer excludes them all.
func (db *DB) lockDir(noWait, readOnly bool) (*pebble.Lock, error) {
	lfs := db.fs
	if readOnly {
		lfs = readLockFS(db.fs)
	}
	// NB: a process killed a moment ago (a cluster of an mce that got
	// SIGKILL, say) may still hold the lock until the kernel reaps it:
	// wait a little before calling the store busy.
	lock, err := pebble.LockDirectory(db.dbDir(), lfs)
	for deadline := time.Now().Add(lockWait); err != nil && !noWait && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		lock, err = pebble.LockDirectory(db.dbDir(), lfs)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s is in use by another mce process (or its lock cannot be taken): %w", db.dir, err)
	}
	return lock, nil
}

// openPebble opens (or, for a new store, creates) the database under
// lock. It owns lock: on error it releases it.
func (db *DB) openPebble(o Options, st openState, lock *pebble.Lock) error {
	popts, err := db.pebbleOptions(o, st)
	if err != nil {
		lock.Close()
		return err
	}
	if st.creating {
		// What an interrupted creation left in db/ holds no data (there
		// is no manifest marker): start from an empty directory.
		if err := clearDir(db.fs, db.dbDir(), "LOCK"); err != nil {
			lock.Close()
			return fmt.Errorf("create store %s: %w", db.dir, err)
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
		db.lock, db.cache = nil, nil
		switch {
		case errors.Is(err, fs.ErrPermission) || isIOError(err):
			return fmt.Errorf("open database %s: %s", db.dbDir(), firstLine(err))
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%w: open database %s: a file of it is missing: %s", ErrCorrupt, db.dbDir(), firstLine(err))
		}
		return fmt.Errorf("%w: open database %s: %s", ErrCorrupt, db.dbDir(), firstLine(err))
	}
	db.pdb, db.popts = pdb, popts
	return nil
}

// pebbleOptions are the database's options. Compactions rewrite tables
// with the store's default compression, read from the manifest (or the
// creating config) because the database must be opened to read its own
// config.
func (db *DB) pebbleOptions(o Options, st openState) (*pebble.Options, error) {
	popts := &pebble.Options{
		FS:                 &fatalDirSyncFS{FS: db.fs, dir: filepath.Clean(db.dbDir()), fatalf: pebbleLogger{db.logger}.Fatalf},
		ReadOnly:           o.ReadOnly,
		ErrorIfNotExists:   !st.creating,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{db.logger},
		// NB: pebble's default DataCorruption handler calls Logger.Fatalf,
		// which exits the process; log it and let the read return its error.
		EventListener: &pebble.EventListener{DataCorruption: db.logCorruption},
	}
	var tc Compression
	switch {
	case st.creating:
		c, err := ParseCompression(cmp.Or(o.Create.Codec, DefaultCompression))
		if err != nil {
			return nil, fmt.Errorf("store config: %w", err)
		}
		tc = c
	case st.man != nil:
		tc, _ = ParseCompression(st.man.Codec)
	}
	tableComp := pebble.DBCompressionNone
	if tc.Table != "" {
		tableComp = pebble.UniformDBCompressionSettings(tc.tableProfile())
	}
	popts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return tableComp })
	return popts, nil
}

// initMeta writes the config of a new store (or of a database whose
// creation was killed before its config was written: the config is its
// first record), then loads the records and makes the compressor.
func (db *DB) initMeta(o Options, st openState) error {
	creating := st.creating
	if !creating && st.man == nil && o.Create != nil && !o.ReadOnly {
		if _, closer, err := db.pdb.Get([]byte{kindMeta, metaConfig}); errors.Is(err, pebble.ErrNotFound) {
			creating = true
		} else if err == nil {
			closer.Close()
		}
	}
	if creating {
		cfg := *o.Create
		cfg.ensureDefaults()
		cfg.Created = time.Now().UTC()
		if err := cfg.validate(); err != nil {
			return err
		}
		b, _ := json.Marshal(cfg)
		if err := db.pdb.Set([]byte{kindMeta, metaConfig}, b, pebble.Sync); err != nil {
			return fmt.Errorf("write store config: %w", err)
		}
	}
	if err := db.loadMeta(); err != nil {
		return err
	}
	comp, err := NewCompressor(o.Concurrency)
	if err != nil {
		return err
	}
	db.comp = comp
	return nil
}

// checkManifest compares MANIFEST.json with the database's records and,
// in a writable store, repairs what an interrupted run left: tmp/, the
// normal-range copies of users that moved to the heavy range, a manifest
// that lags.
func (db *DB) checkManifest(o Options, st openState) error {
	man := st.man
	if man != nil {
		missing, extra := diffFiles(man.Files, db.allFiles())
		if len(extra) > 0 {
			return fmt.Errorf("%w: %s lists files its database does not hold: %s (the database's db/MANIFEST-* is damaged or cut short, or %s was edited)",
				ErrCorrupt, filepath.Join(db.dir, manifestName), fileNames(extra), manifestName)
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
	} else if !st.creating && !o.ReadOnly {
		db.logger.Warn("manifest missing; rebuilding it from the database")
	}
	if o.ReadOnly {
		return nil
	}
	if err := db.fs.RemoveAll(db.tmpDir()); err != nil {
		return fmt.Errorf("clear %s: %w", db.tmpDir(), err)
	}
	if err := db.cleanStaleNormal(context.Background()); err != nil {
		return err
	}
	if man == nil {
		return db.WriteManifest()
	}
	return nil
}

// clearDir removes everything in dir but the named entry.
func clearDir(fs vfs.FS, dir, keep string) error {
	names, err := fs.List(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == keep {
			continue
		}
		if err := fs.RemoveAll(filepath.Join(dir, n)); err != nil {
			return err
		}
	}
	return nil
}

// checkEmptyForCreate refuses to make a store in a directory that holds
// other things.
func checkEmptyForCreate(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	sort.Strings(names)
	for _, n := range names {
		switch n {
		case "db", "tmp", manifestName, manifestName + ".tmp":
			continue
		}
		return fmt.Errorf("%s is not empty and is not an mce store (found %s); choose another --out", dir, n)
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
		return db.readErr("read store config", err)
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
	if !readableFormat(probe.Format) {
		return versionError(db.dir, probe.Format)
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	files := map[FileID]*FileEntry{}
	heavy := map[string]heavyMeta{}
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{kindMeta, metaFile}, UpperBound: []byte{kindMeta, metaHeavy + 1}})
	if err != nil {
		return db.readErr("read the file records", err)
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
				return fmt.Errorf("%w: file record %d (key %x): %v", ErrCorrupt, binary.BigEndian.Uint32(k[2:]), k, err)
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
		return db.readErr("read the file records", err)
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
	// A store written before names were kept as bytes recorded a name
	// that is not UTF-8 as JSON text (see jsonText).
	if old := jsonText(name); old != name {
		for _, f := range db.files {
			if f.Name == old && f.State == FileLive {
				return cloneEntry(f), true
			}
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
	if err := writeManifestFile(db.fs, db.dir, db.Manifest()); err != nil {
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
// error level), one line each: pebble's errors may carry stack traces and
// detail lines after the first.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "subsystem", "pebble")
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(firstLineOf(fmt.Sprintf(format, args...)), "subsystem", "pebble")
}

// Fatalf is called by pebble on an error it cannot go on from, such as a
// failed write or fsync of its WAL or MANIFEST: it cannot tell whether the
// write happened. The process exits with status 70; the database keeps
// what was synced, and the next Open recovers it.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("the store's database stopped on an error it cannot go on from; it keeps what was synced, and the next mce partition or reduce recovers it",
		"error", firstLineOf(fmt.Sprintf(format, args...)), "subsystem", "pebble")
	os.Exit(70)
}

// fatalDirSyncFS is the store's filesystem as pebble sees it: a failed
// fsync of the database directory stops the process through fatalf, in
// one line, as pebble's other unrecoverable errors do.
//
// NB: pebble panics when it cannot fsync the directory after moving its
// manifest marker (atomicfs.Marker.Move: "Fsync errors are
// unrecoverable", see https://wiki.postgresql.org/wiki/Fsync_Errors); a
// panic's goroutine dump tells a user nothing. It is used by pointer:
// pebble compares filesystems with ==.
type fatalDirSyncFS struct {
	vfs.FS
	dir    string
	fatalf func(format string, args ...any)
}

func (f *fatalDirSyncFS) OpenDir(name string) (vfs.File, error) {
	d, err := f.FS.OpenDir(name)
	if err != nil || filepath.Clean(name) != f.dir {
		return d, err
	}
	return fatalSyncDir{File: d, fs: f}, nil
}

// fatalSyncDir is the database directory opened for syncing.
type fatalSyncDir struct {
	vfs.File
	fs *fatalDirSyncFS
}

func (d fatalSyncDir) Sync() error {
	if err := d.File.Sync(); err != nil {
		d.fs.fatalf("fsync of the database directory %s failed: %v", d.fs.dir, err)
	}
	return nil
}
