// Package partition is `mce partition`: a one-time job that reads raw
// invoice files and stores every row grouped by user in a store (package
// store), so that later feature jobs (`mce reduce`) read users already
// grouped instead of parsing and grouping the raw files again.
//
// # How rows get into the store
//
//  1. Each input file is fingerprinted and compared with the store's
//     records: an unchanged file is skipped, a changed one fails (or with
//     Replace has its old rows deleted first), a new one is read.
//  2. Read: files are parsed in parallel (csvread) and each row becomes a
//     record keyed by (shard, user, file, line) in an in-memory sort buffer.
//     When a buffer is full it is sorted (a radix sort on the key's first
//     word, then a comparison sort within each user) and spilled to disk as
//     a run while the other buffer fills: the buffers are the memory budget
//     (Options.MemBytes), whatever the input size. When the input will
//     spill anyway, a buffer is spilled once 64 MiB of it are filled
//     (more when the merge could not read that many runs at once): the
//     rest of it is never touched, and smaller runs are sorted and
//     written sooner. The buffer still
//     filling when reading ends is sorted in place and merged from memory,
//     never spilled: input that fits one buffer is never written to disk
//     before its tables.
//  3. Merge: the shards are cut into ranges, and workers merge the runs of
//     each range into blocks (store.BlockWriter) written through the
//     store's Loader as sstables of non-overlapping key ranges.
//  4. Ingest: the tables and the new file records go into the store in one
//     atomic pebble Ingest, then MANIFEST.json is rewritten.
//
// An incremental run's tables overlap the stored ones (a new month's rows
// fall between every user's older rows), so pebble keeps them in level 0
// as one more layer that readers merge; once CompactLayers layers pile up
// the run compacts the store back into one.
//
// No row goes through pebble's WAL. A run killed at any point leaves the
// store as it was before the run (or, after step 4, with the run's files
// complete); the next run removes the scratch files and does the work
// again. The same holds after a power cut (only synced writes survive:
// the tables are synced before the ingest, which syncs its own record,
// and MANIFEST.json is written after it) and after a failed write, read
// or fsync: the run fails with one line naming the file or the store,
// and records nothing it does not hold. Options.FS puts the store and the
// runs on another filesystem (the fault suite's error-injecting and
// crashable ones); the input files are read from the operating system's.
//
// Runs open the store for writing, which pebble's directory lock gives to
// one process at a time: a second partition, or a reduce, waits a few
// seconds for it, then fails saying the store is in use.
//
// # Heavy users
//
// Runs carry each user's row count in their group headers, so the merge
// knows a user's total rows in the run before writing its first block. A
// user is heavy when it has more than HeavyShare of the run's rows and at
// least HeavyMinRows rows, when it is listed in HeavyUsers, or when the
// store already holds it as heavy (heavy is for good). Heavy users' blocks
// go to the store's heavy range, cut into chunks that a reducer can split
// across workers; a user that becomes heavy has its older blocks moved
// there in the same ingest. A big heavy user's blocks of each file go
// into tables of their own, written on goroutines of their own (pebble
// compresses a table on the goroutine that fills it), so that one user
// does not hold the merge up on one CPU.
//
// # Files
//
// A file's identity is its name: its path relative to the input directory
// it was found in. Its content is identified by a fingerprint (see
// Fingerprint): by default a hash of its size and of 16 samples of 64 KiB,
// or with FullHash a hash of all its bytes.
package partition
