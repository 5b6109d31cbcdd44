// Package inram is the map and reduce of one file inside one cluster of
// `mce run`, on as many workers as the cluster has CPUs. New returns one of
// two Jobs: the grouping one (below), which holds the file's rows by user in
// RAM and passes each user's rows through the feature function, and, for a
// mergeable Spec, the one-pass one (stream.go, `--mode stream`), which adds
// each row to its user's Aggregator as it is parsed and keeps no row.
//
// # One pass
//
// Every goroutine that calls Add takes a table of its own for the batch (a
// free list under a lock, taken once per batch, so that no row waits for a
// lock and a table is only ever touched by one goroutine at a time) and
// adds each row to its user's Aggregator there. A table is cut into hash
// ranges by the top bits of the user's userhash.Sum; each range is an
// open-addressing table with linear probing, one 32-byte slot per user
// (the Aggregator and the key, inline up to 15 bytes), at most three
// quarters full. The rows of a batch go through a short pipeline: the
// slot of a row a few rows ahead is asked for (a prefetch), then its
// Aggregator, then what its Add will touch (an Aggregator with a Slot
// method, as the built-in one has for its receivers), so that the CPU
// waits for no cache miss. A user many batches have is one Aggregator per
// table, however many rows it has: skew costs nothing.
//
// Finish merges the tables range by range on the workers (range r of
// every table into the one that has most of its users, with
// Aggregator.Merge, the others in the order they were made), finishes
// every user of a range, sorts the range by key, and merges the ranges'
// sorted lines into the output. The RAM is the users' aggregates, once per
// table until the merge, not the file.
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
