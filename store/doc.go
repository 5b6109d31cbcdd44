// Package store keeps rows grouped by user in a Pebble database: the
// output of `mce partition` and the input of `mce reduce`. It deals in
// bytes, keys and Pebble only; it knows nothing of CSV, features or
// clusters. A row is a list of byte fields (one per schema column) and the
// line it came from.
//
// # Directory
//
//	store/
//	  MANIFEST.json   the store's description (a copy of the records
//	                  inside the database, rewritten atomically)
//	  db/             the Pebble database: rows and records
//	  tmp/            a writer's scratch (sort runs, tables before ingest);
//	                  emptied by every writable Open
//
// # Keys
//
// Every key starts with a kind byte. Data keys then lead with the hash
// shard, so shards are disjoint key ranges that workers read in parallel,
// and end with the file and block numbers, so one user's blocks are
// contiguous across all files and in file (ingest) order:
//
//	                  +------+-------+-----------+---------+---------+
//	normal user block | 0x01 | shard | esc(user) | file id | block   |
//	heavy user block  | 0x02 | shard | esc(user) | file id | block   |
//	                  +------+-------+-----------+---------+---------+
//	                    1 B    2 B BE  n+2 B       4 B BE    4 B BE
//
//	file record       | 0x00 | 'f' | file id (4 B BE) |  -> FileEntry (JSON)
//	heavy user record | 0x00 | 'h' | esc(user)        |  -> {shard, since} (JSON)
//	store config      | 0x00 | 'c' |                     -> Config (JSON)
//
// The parts:
//
//   - shard = userhash.Sum(user) % Config.Shards (256 by default).
//   - esc(user) is the user's bytes with each 0x00 written as 0x00 0xFF,
//     then the terminator 0x00 0x01. It keeps users in byte order and makes
//     no user's encoding a prefix of another's, so [prefix, successor of
//     prefix) bounds exactly one user: one bounded iterator reads one user.
//   - file id is the FileEntry's ID, given in ingest order, so iterating a
//     user visits its files in the order they were ingested.
//   - block numbers count from 0 within each (user, file).
//
// Heavy users (above partition's --heavy-share of the rows, or listed by
// hand) live in the 0x02 range: shard scans of the normal range never meet
// them, and a reducer schedules them first from the manifest. Their blocks
// are grouped into fixed-size chunks of Config.ChunkBlocks blocks (block
// numbers [c·ChunkBlocks, (c+1)·ChunkBlocks) form chunk c), which a reducer
// may hand to different workers (DB.Chunks gives each chunk's span). When
// a user becomes heavy after some of its rows were stored, its normal
// blocks are copied into the heavy range in the same ingest as its new
// rows, and the normal copies are deleted right after; readers skip
// normal-range blocks of heavy users meanwhile.
//
// # Values
//
// A value is one block of up to Config.BlockBytes (64 KiB) of raw rows of
// one (user, file), in line order:
//
//	value   = tag (1 B) | uvarint(rows) | uvarint(rawLen) | compress(raw)
//	tag     = codec                  layout 1 (stores of format 1)
//	        | 0x10 + codec           layout 2 (format 2)
//	        | 0x20 + codec           layout 3 (format 3)
//	        | 0x30 + codec           layout 4 (format 4)
//	        | 0x40 + codec           layout 5 (format 5)
//	raw     = uvarint(ncols) | uvarint(rows) | lines | column × ncols          layout 1
//	        | uvarint(ncols) | uvarint(rows) | uvarint(fieldBytes)            layouts 2 to 5
//	          | uvarint(len(lines)) | uvarint(len(column)) × ncols
//	          | lines | column × ncols
//	lines   = varint(line − previous line) × rows   (the first from 0)
//	column  = 0x00 | uvarint(len) × rows | bytes    values that differ
//	        | 0x01 | uvarint(len) | bytes           the same in every row
//	        | 0x02 | case (1 B) | 16 B × rows       UUIDs (layout 3)
//	        | 0x03 | sep (1 B) | varint(s − previous s) × rows
//	                                                times (layouts 3, 4)
//	        | 0x04 | scale (1 B) | width (1 B) | zigzag(units) × rows,
//	          width bytes each, little-endian      amounts (layout 4)
//	        | 0x05 | sep (1 B) | uvarint(base) | width (1 B) | (s − earliest) × rows,
//	          width bytes each, little-endian      times (layout 5; base is the
//	                                                earliest s less 0000-01-01's)
//
// The layout is columnar, so a codec sees like values side by side, and
// a column that is constant in the block (the user column always is) costs
// its bytes once. The header's row count lets verify and a reducer's
// scheduler count rows without decoding. Layout 2 heads the columns with
// their lengths and the block's field bytes (what a reader counts as
// read), so that a reader that asks for some columns (IterOptions.Columns,
// from a feature set's Spec.Reads) decodes those and skips the others
// unread; layout 1 must parse every column's lengths to find the next.
// Layout 3 also packs two kinds of column that fill most of an invoice
// file and compress poorly as text (pack.go): a column whose every field
// in the block is a UUID in canonical text (8-4-4-4-12 hex digits, one
// letter case in the column; case 1 is upper) is kept as 16 bytes a
// field, and one whose every field is a time "YYYY-MM-DD hh:mm:ss" (years
// 0000 to 9999, sep ' ' or 'T' in the whole column) as the seconds from
// 1970 of each, less those of the field before. Any other spelling keeps
// the column as text, and the reader writes packed fields back byte for
// byte. On the benchmark's data the values take 66% of the raw CSV
// instead of 91%, and the store 36.8% instead of 38.1%. Layout 4 also
// packs a column whose every field in the block is a decimal number in
// its plain spelling ("-1234.50", "7": the spelling the CSV reader writes
// amounts in) with the same fraction digits (scale, 0 to 9) as each
// field's value in units of its last digit (-123450, 7), zigzagged, in
// the same number of bytes (width) for every row; a reader hands
// those units to Row.Decimal, and writes the text back only for a
// feature set that reads it. On the benchmark's data the store is 32.0%
// of the raw CSV instead of 34.8%. Layout 5 keeps a time column as each
// time's seconds after the block's earliest, all in the bytes the latest
// needs (three for a block within 194 days), instead of each from the
// one before as a varint (three or four bytes for the rows of a user,
// which are in line order, not in time order): a reader takes each with
// one load, and the store is 0.5% smaller.
// A store's format (Config.Format) fixes the layout its writers use: a
// format 1 to 4 store keeps its format when a partition adds files to
// it, so the mce that made it keeps reading it; a new store is format 5.
//
// Compression (see Compression) is chosen per partition run: by default
// ("table-minlz"; "table-zstd" with zstd) blocks are stored as they are
// and pebble compresses each 64 KiB sstable block with MinLZ, so the many
// small blocks of neighbouring users compress together; "zstd" and "s2"
// compress each block on its own (klauspost/compress) in uncompressed
// sstables. Each value names its own codec, so a store may mix them.
//
// # Loading and consistency
//
// Rows are never written one at a time through the WAL: a writer (package
// partition) sorts them into runs, merges the runs into sstables of
// non-overlapping key ranges (a Loader's Streams), and ingests those
// tables together with the new file records in one atomic pebble Ingest.
// A file's rows and its record therefore appear together or not at all;
// a run killed before the ingest leaves only scratch files in tmp/, which
// the next writable Open removes. Replacing a file first marks its record
// deleting (readers skip its rows from then on), removes its rows with one
// range deletion per user, then removes the record; a killed deletion is
// finished by the next run. MANIFEST.json is rewritten after every change;
// if a run is killed between an ingest and that rewrite, the database's
// records win and the next writable Open rewrites the file.
//
// # Filesystem, errors and locking
//
// Every file of a store goes through Options.FS (pebble's vfs.FS; the
// operating system's by default), so that tests can inject I/O errors
// (vfs/errorfs) or cut the power (vfs.NewCrashableMem). A read that fails
// returns one line naming the store and what was read: a *CorruptError
// (matching ErrCorrupt) with the damaged table when pebble found damage, a
// *ReadError otherwise. Pebble cannot go on after a failed write or fsync
// of its WAL, its MANIFEST or the database directory: the process then
// exits with status 70 after one log line naming the store; the database
// keeps what was synced and the next Open recovers it.
//
// Pebble's directory lock (db/LOCK) is exclusive for a writer and, on
// Linux, shared for readers: a store is written by one process at a time
// with no reader beside it, or read by any number of read-only processes
// (the clusters of a reduce) at once. Elsewhere a reader's lock is
// exclusive too. Open waits up to 5 s for the lock (NoLockWait: not at
// all), then says the store is in use. Open looks at the directory again
// once it holds the lock: another process may have made or changed the
// store meanwhile.
//
// # Reading
//
// A reducer lists shards (0..Config.Shards-1) and heavy users
// (DB.HeavyUsers, most rows first), and reads spans: DB.ShardSpan for a
// shard's normal users, DB.Chunks for pieces of a heavy user,
// DB.UserSpan for one user. DB.NewIter walks a span block by block;
// DB.Users walks it user by user (or per user and file), streaming rows
// one decoded block at a time.
package store
