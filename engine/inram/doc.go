// Package inram is the map and reduce of one file inside one cluster of
// `mce run`, on as many workers as the cluster has CPUs. New returns one of
// two Jobs: the grouping one (below), which holds the file's rows by user in
// RAM and passes each user's rows through the feature function, and, for a
// mergeable Spec, the one-pass one (stream.go, `--mode stream`), which adds
// each row to its user's Aggregator as it is parsed and keeps no row.
//
// # One pass
//
// The users' aggregates are one table, cut into hash ranges by the top
// bits of the user's userhash.Sum (rangesPerWorker per worker), each range
// with a lock. Every goroutine that calls Add sorts its batch's rows by
// range and adds them range by range, holding a range's lock for all of
// the batch's rows in it (hundreds), starting at a range of its own and
// putting off a range another goroutine holds: no lock per row, and a
// user is one Aggregator whichever goroutines read its rows. Each range
// is an open-addressing table with linear probing, one 32-byte slot per
// user (the Aggregator and the key, inline up to 15 bytes), at most three
// quarters full. A range's rows go through a short pipeline: the slot of
// a row a few rows ahead is asked for (a prefetch), then its Aggregator,
// then what its Add will touch (an Aggregator with a Slot method, as the
// built-in one has for its receivers), so that the CPU waits for no cache
// miss. A user with many rows is still one Aggregator: skew costs
// nothing.
//
// Finish finishes every user of a range on the workers, sorts the range
// by key, and merges the ranges' sorted lines into the output. The RAM is
// the users' aggregates, once each, not the file. (A table per goroutine,
// merged at Finish, is what DuckDB does and what this job did until
// 2026-12; with rows of a user in every goroutine's batches, as with most
// users here, every user was then an aggregate per goroutine, and on 16
// CPUs the CPU time was 1.6 times one CPU's: bench/results/16cpu.)
//
// # Map
//
// The reader calls [Job.Add] concurrently, once per batch of rows. Each row
// is owned by the worker userhash.Partition(key, workers) picks (the same
// stable hash the store uses). Add encodes the batch's rows into one byte
// buffer per owning worker and hands each buffer over whole, so rows cross
// goroutines in batches, never one by one. A row is stored as
//
//	uvarint bodyLen
//	uvarint keyTag            0: the key is the user field; else len(key)+1
//	key bytes                 only when keyTag > 0
//	nf × uvarint len          the fields' lengths, in schema order
//	the fields' bytes         back to back, copied in one piece
//
// so a file costs about its own size in RAM plus a few bytes per row, with no
// heap object per row or field. The buffers come from a hugemem.Arena when
// Options.Arena is set (a cluster reuses one from file to file).
//
// # Index
//
// After the scan every worker sorts its buffers by batch sequence (batches
// arrive out of order), which restores file order, then gives each user one
// contiguous run of row references (a counting sort: one []uint64 for the
// whole partition, no slice per user).
//
// # Reduce
//
// All users of all workers are put in one list, biggest first, and the
// workers pull from it through one atomic cursor: an idle worker takes the
// next user whatever partition it came from, so one huge user does not leave
// the other CPUs idle. With a mergeable Spec, a user with more rows than
// total/(2·workers) is cut into pieces that several workers aggregate at
// once; the worker that finishes the last piece merges the parts in order
// and finishes the user. Rows reach the feature function through a
// feature.Rows iterator over the stored bytes; nothing is copied per user.
//
// The output is one CSV line per user, sorted by user key: each worker
// sorts its own users and a k-way merge writes them.
package inram
