// Package reduce is `mce reduce`: per-user features computed from a store
// made by `mce partition` (package store), on the engine's clusters, with
// the same feature function, outputs, logs and run directory as `mce run`.
//
// # Memory
//
// A user's rows reach the feature function through a feature.Rows that
// streams them from the store one decoded block (at most 64 KiB of raw
// rows) at a time, so a cluster holds one block per CPU, never one user
// and never one file. Output lines are buffered per output section in
// 32 KiB segments and written out; merges read every run through a share
// of a fixed 32 MiB of buffers. Nothing of mce reduce grows with the
// number of users or rows; the feature code's own state may. The built-in
// set's does not: it counts each user's distinct receivers in each file
// exactly, and a user with more than 49,152 of them (a bank's month) has
// their totals written to an unlinked file in the run directory and added
// up part by part at its Finish (engine/feature/spill.go), as in `mce
// run`. A worker keeps its decode buffers (one
// store.Block) from one shard or chunk to the next, and a reused built-in
// aggregator its cleared receiver tables (at most 768 KiB), so that the
// next users do not take fresh memory.
//
// A cluster's garbage collector is tuned to a fixed headroom over the
// live heap (internal/gctune: the live heap is small, so at the default
// GOGC the collector would run constantly): 64 MiB for a feature set's
// own Reduce or aggregators, 16 MiB for the built-in features, which take
// the blocks as columns and make little garbage, so that a reduce's
// memory is its live heap and little more. The merge task keeps the large
// headroom (gctune.Headroom), more than the buffers its merges take at
// once. Its C allocator is held to
// two arenas (pebble allocates blocks with C malloc from every reading
// thread).
//
// # Two phases on the engine
//
// A job is planned as engine Tasks in two phases (engine.Task.Phase):
//
//	phase 0  KindRead   heavy users of the manifest (in the first tasks,
//	                    handed out first), then a range of hash shards;
//	                    all files at once
//	phase 1  KindMerge  one per output file: merges its sorted runs
//
// Every read task reads its part of the store once, for all the files to
// reduce, and writes a part file (reduce-parts/ in the run directory): for
// each output section (an input file, or the one section of
// --across-files) one run of features lines per shard, sorted by user
// key, because the store keeps a shard's users in key order, and one run
// of its heavy users. The cluster's CPUs take the heavy users' pieces
// first, then the shards one at a time, largest first. There are as few
// read tasks as keep every cluster busy with at most readTaskBytes of the
// store each, since every task ends with its CPUs waiting for the
// slowest. A merge task then k-way merges its section's runs from every
// part file into the features file (a big section in groups of runs
// merged on all the cluster's CPUs, then merged once more): header
// `user,<columns>`, one line per user sorted by key, the same CSV quoting
// (package output's writer) and the same file name as `mce run` gives the
// input (package fileid, in filejob.Plan's order), so that the two modes
// can be compared file by file; they are byte-identical for the same
// features. With one cluster,
// the merge task handed out first writes every output at once (each whole
// under a temporary name, as always), so that the merges share the CPUs;
// the other merge tasks find theirs complete, or report the failed user
// of theirs. The part files are removed when every output is complete.
//
// Why not one task per input file: the store groups a user's rows of all
// files together, so a file-by-file reader would decode every block of
// every small user once per file. One pass over the store with an output
// per file, then a merge, reads each block once; the merge costs a few
// percent. Every output is still written whole under a temporary name and
// renamed (output.File), one task per output file, so failure
// isolation and --resume work per file as in `mce run`.
//
// # Heavy users
//
// The store isolates heavy users and cuts them into chunks of blocks. With
// a mergeable Spec (feature.Spec.NewAggregator), a read task aggregates
// the chunks on all the cluster's CPUs at once and merges the parts of
// each output line in chunk order, so results do not depend on scheduling
// (the built-in invoice set sums exact integers, so they equal `mce
// run`'s to the digit); lines merge in parallel, and at most CPUs+2 chunks
// are in flight or waiting for their merge (a CPU reads a shard rather
// than wait). Without an aggregator, each (user, file) group streams
// through Reduce on one CPU.
//
// # Map
//
// The Spec's Map is applied to every row as a filter: keep=false drops
// the row, and a user whose rows are all dropped makes no line, as in
// `mce run`. A Map that returns another key than the user (re-keying)
// cannot be computed from a store grouped by user: Plan tries Map on the
// first rows and refuses the job with ErrRekey, and a re-keyed row met
// later fails its task with a *RekeyError. Use `mce run` for such
// features.
//
// # Failures
//
// An error or panic of the feature code on a user fails the output file
// of that user (failure.log names the file and the user, with the stack
// of a panic), as in `mce run`; the other outputs complete. A store read
// error fails the read task, and with it the outputs it feeds. A store
// that is missing, of another format version or corrupt is refused before
// any cluster starts (store.ErrNotExist, ErrVersion, ErrCorrupt).
//
// # Clusters and the store's lock
//
// Each read task opens the store read-only for its duration. Pebble
// locks a database directory for one process, so when the store cannot be
// opened twice, Run replaces a layout of several clusters by one cluster
// of all their CPUs (and says so in the log); the shards are read on all
// of that cluster's CPUs anyway.
package reduce
