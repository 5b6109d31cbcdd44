package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FormatVersion is the layout version of the stores this code makes.
// Format 2 blocks carry a column directory (Layout2), so that a reader
// decodes only the columns its features read; format 3 blocks (Layout3)
// also keep columns of UUIDs and of times packed (pack.go), format 4
// blocks (Layout4) columns of amounts too, and format 5 blocks (Layout5)
// their times as offsets from the block's earliest. This code reads and writes
// stores of format MinFormatVersion to FormatVersion: a format 1 store
// stays format 1, and what a partition adds to it is written in its
// layout, so that the mce that made it still reads it (partition its raw
// files again into a new store to get the column directory). A store of
// another version is refused with ErrVersion.
const FormatVersion = 5

// MinFormatVersion is the oldest store format this code reads.
const MinFormatVersion = 1

// readableFormat reports whether this code reads stores of format v.
func readableFormat(v int) bool { return v >= MinFormatVersion && v <= FormatVersion }

// Errors callers branch on with errors.Is.
var (
	// ErrNotExist: there is no store at the path.
	ErrNotExist = errors.New("no store")
	// ErrCorrupt: the store's manifest, meta records or blocks cannot be
	// read.
	ErrCorrupt = errors.New("store is corrupt")
	// ErrVersion: the store was written by another format version.
	ErrVersion = errors.New("store format version not supported")
)

// manifestName is the JSON manifest beside the database.
const manifestName = "MANIFEST.json"

// Config is what a store is made of, fixed when it is created.
type Config struct {
	Format int `json:"format"`
	// Schema is the column names of every row, in order; UserColumn is the
	// one that keys the rows.
	Schema     []string `json:"schema"`
	UserColumn string   `json:"user_column"`
	// Codec is the store's default compression (see ParseCompression):
	// what partition uses when not told otherwise, and how pebble
	// compresses the tables it rewrites in compactions. Each value records
	// its own block codec, so runs may use different ones.
	Codec string `json:"codec"`
	// Shards is the number of hash shards: shard = userhash.Sum(user) %
	// Shards.
	Shards int `json:"shards"`
	// BlockBytes is the raw size at which blocks are cut.
	BlockBytes int `json:"block_bytes"`
	// ChunkBlocks is the number of blocks per chunk of a heavy user's
	// (user, file) rows: the unit a reducer may give to another worker.
	ChunkBlocks int       `json:"chunk_blocks"`
	Created     time.Time `json:"created"`
}

// Defaults of Config.
const (
	DefaultShards      = 256
	DefaultChunkBlocks = 64 // 64 × 64 KiB: 4 MiB of raw rows per chunk
)

func (c *Config) ensureDefaults() {
	c.Format = FormatVersion
	if c.Codec == "" {
		c.Codec = DefaultCompression
	}
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.BlockBytes == 0 {
		c.BlockBytes = DefaultBlockBytes
	}
	if c.ChunkBlocks == 0 {
		c.ChunkBlocks = DefaultChunkBlocks
	}
}

func (c *Config) validate() error {
	if len(c.Schema) == 0 {
		return errors.New("store config has no schema")
	}
	if !slices.Contains(c.Schema, c.UserColumn) {
		return fmt.Errorf("store config: user column %q is not in the schema %v", c.UserColumn, c.Schema)
	}
	if _, err := ParseCompression(c.Codec); err != nil {
		return fmt.Errorf("store config: %w", err)
	}
	if c.Shards < 1 || c.Shards > MaxShards {
		return fmt.Errorf("store config: %d shards, want 1..%d", c.Shards, MaxShards)
	}
	if c.BlockBytes < 1 || c.BlockBytes > maxBlockRaw/2 {
		return fmt.Errorf("store config: block bytes %d out of range", c.BlockBytes)
	}
	if c.ChunkBlocks < 1 {
		return fmt.Errorf("store config: chunk blocks %d out of range", c.ChunkBlocks)
	}
	return nil
}

// UserIndex returns the position of the user column in Schema.
func (c Config) UserIndex() int { return slices.Index(c.Schema, c.UserColumn) }

// FileState is where an ingested file stands.
type FileState string

// File states. Only live files are read; a deleting file's rows are being
// removed (--replace) and are invisible to readers.
const (
	FileLive     FileState = ""
	FileDeleting FileState = "deleting"
)

// FileEntry records one ingested input file. Partition fills it; the store
// keeps it inside the database, in the same atomic ingest as the file's
// rows, and copies it into MANIFEST.json.
type FileEntry struct {
	ID FileID `json:"id"`
	// Name identifies the file across runs: its path relative to the input
	// root given to partition, with '/' separators. Name and Path are kept
	// byte for byte, UTF-8 or not (see fileEntryJSON).
	Name string `json:"name"`
	// Path is the file's path when it was ingested (for people).
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	// Fingerprint identifies the content: "<kind>:<hex>", see partition.
	Fingerprint string `json:"fingerprint"`
	Compression string `json:"compression,omitempty"`
	Delimiter   string `json:"delimiter"`
	Encoding    string `json:"encoding"`
	// UserHeader is the name the file's header gives its user column
	// ("issuer_id"), which names the key column of its features; empty
	// in stores made before it was kept.
	UserHeader string `json:"user_header,omitempty"`
	// LocalTimes reports a file whose times had no zone (wall-clock
	// times, csvread.Stats.Zoneless): its features' times are written
	// without one. False in stores made before it was kept, whose times
	// are then written in UTC, as they were.
	LocalTimes bool  `json:"local_times,omitempty"`
	Rows       int64 `json:"rows"`
	BadRows    int64 `json:"bad_rows"`
	// RawBytes is the uncompressed size of the file, header included.
	RawBytes int64 `json:"raw_bytes"`
	// Users, Blocks and StoredBytes describe the file's rows in the store
	// (StoredBytes: the sum of its block values, before any sstable
	// compression.)
	Users       int64  `json:"users"`
	Blocks      int64  `json:"blocks"`
	StoredBytes int64  `json:"stored_bytes"`
	Codec       string `json:"codec"` // the compression it was written with

	// Heavy lists this file's rows of heavy users.
	Heavy    []HeavyPart `json:"heavy,omitempty"`
	State    FileState   `json:"state,omitempty"`
	Ingested time.Time   `json:"ingested"`
}

// HeavyPart is one heavy user's rows in one file.
type HeavyPart struct {
	User   string `json:"user"`
	Rows   int64  `json:"rows"`
	Blocks int64  `json:"blocks"`
}

// heavyMeta is the record of a heavy user inside the database.
type heavyMeta struct {
	Shard int `json:"shard"`
	// Since is the first file ingested after the user became heavy.
	Since FileID `json:"since"`
}

// HeavyUser is a user isolated in the heavy range: a reducer schedules it
// first and may split it by chunks.
type HeavyUser struct {
	User  string  `json:"user"`
	Shard int     `json:"shard"`
	Rows  int64   `json:"rows"`
	Share float64 `json:"share"` // of all live rows
	// Files is the user's rows per live file, in file order.
	Files []HeavyFile `json:"files"`
}

// HeavyFile is a heavy user's blocks in one file.
type HeavyFile struct {
	File   FileID `json:"file"`
	Rows   int64  `json:"rows"`
	Blocks int64  `json:"blocks"`
}

// Chunk is a fixed-size piece of a heavy user's rows in one file: blocks
// [FirstBlock, FirstBlock+Blocks) of (User, File). Read it with
// DB.NewIter(ctx, c.Span, nil).
type Chunk struct {
	User       string
	Shard      int
	File       FileID
	Index      int // chunk number within (User, File)
	FirstBlock uint32
	Blocks     uint32
	Span       Span
}

// Manifest is the store's description as MANIFEST.json holds it.
type Manifest struct {
	Config
	// Files is every file the store holds, live or being deleted, by ID.
	Files []FileEntry `json:"files"`
	// Heavy is the heavy users, most rows first.
	Heavy []HeavyUser `json:"heavy_users"`
	// Rows is the rows of the live files.
	Rows    int64     `json:"rows"`
	Updated time.Time `json:"updated"`
}

// readManifestReusing reads MANIFEST.json and returns it with the file's
// bytes; when they are prevBytes it returns prev, not a new parse. A
// missing file is returned as an error wrapping os.ErrNotExist;
// unreadable JSON as ErrCorrupt; another format as ErrVersion.
func readManifestReusing(fs vfs.FS, dir string, prev *Manifest, prevBytes []byte) (*Manifest, []byte, error) {
	path := filepath.Join(dir, manifestName)
	b, err := readFile(fs, path)
	if err != nil {
		return nil, nil, err
	}
	if prev != nil && bytes.Equal(b, prevBytes) {
		return prev, b, nil
	}
	m, err := parseManifest(dir, path, b)
	return m, b, err
}

// parseManifest decodes the bytes of MANIFEST.json in one pass. What
// this mce cannot read is told from the format field alone: a manifest
// of another format version need not decode into this one's Manifest.
func parseManifest(dir, path string, b []byte) (*Manifest, error) {
	m := new(Manifest)
	err := json.Unmarshal(b, m)
	if err == nil && readableFormat(m.Format) {
		return m, nil
	}
	var v struct {
		Format *int `json:"format"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%w: manifest %s: %v", ErrCorrupt, path, err)
	}
	if v.Format == nil {
		return nil, fmt.Errorf("%w: manifest %s has no format version", ErrCorrupt, path)
	}
	if !readableFormat(*v.Format) {
		return nil, versionError(dir, *v.Format)
	}
	return nil, fmt.Errorf("%w: manifest %s: %v", ErrCorrupt, path, err)
}

// readFile is os.ReadFile through fs.
func readFile(fs vfs.FS, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if st, err := f.Stat(); err == nil {
		buf.Grow(int(st.Size()) + bytes.MinRead) // one read, and one more for EOF
	}
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return buf.Bytes(), nil
}

func versionError(dir string, got int) error {
	how := "upgrade mce"
	if got < MinFormatVersion {
		how = "partition the raw files again into a new store"
	}
	return fmt.Errorf("%w: store %s has format version %d and this mce reads versions %d to %d; %s",
		ErrVersion, dir, got, MinFormatVersion, FormatVersion, how)
}

// writeManifestFile writes m as MANIFEST.json atomically: a temporary
// file, synced, renamed over the old one, and the directory synced.
func writeManifestFile(fs vfs.FS, dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	b = append(b, '\n')
	return writeFileAtomic(fs, filepath.Join(dir, manifestName), b)
}

func writeFileAtomic(fs vfs.FS, path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(fs, filepath.Dir(path))
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// sameFiles reports how the manifest file's list differs from the
// database's: missing lists files the database holds that the manifest
// lacks or has in an older state (a run stopped between its ingest and its
// manifest write); extra lists files the manifest has that the database
// does not hold (never legitimate).
func diffFiles(json, db []FileEntry) (missing, extra []string) {
	type st struct {
		name  string
		rows  int64
		state FileState
	}
	in := map[FileID]st{}
	for _, f := range db {
		in[f.ID] = st{f.Name, f.Rows, f.State}
	}
	seen := map[FileID]bool{}
	for _, f := range json {
		seen[f.ID] = true
		d, ok := in[f.ID]
		switch {
		case !ok && f.State == FileDeleting:
			missing = append(missing, f.Name) // its deletion finished after the write
		case !ok:
			extra = append(extra, fmt.Sprintf("%s (id %d)", f.Name, f.ID))
		case d.name != f.Name || d.rows != f.Rows:
			extra = append(extra, fmt.Sprintf("%s (id %d: database says %s with %d rows)", f.Name, f.ID, d.name, d.rows))
		case d.state != f.State:
			missing = append(missing, f.Name)
		}
	}
	for _, f := range db {
		if !seen[f.ID] {
			missing = append(missing, f.Name)
		}
	}
	return missing, extra
}

// fileNames joins names for a message.
func fileNames(names []string) string {
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + fmt.Sprintf(" and %d more", len(names)-5)
	}
	return strings.Join(names, ", ")
}
