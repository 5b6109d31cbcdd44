// Package faults is mce's end-to-end fault suite; it has no code of its
// own, only tests. They build the mce binary once, generate invoice data
// with a truth file (internal/gen), inject faults into `mce run`,
// `mce partition` and `mce reduce`, and compare every output with the
// truth: per file and user the row count and the amount total, exactly;
// no user twice; nothing recorded as done (a features file, a file in the
// store's manifest) that is not complete.
//
// The faults: SIGKILL of mce at seeded random moments followed by
// --resume or a rerun; SIGKILL of one cluster process; the RAM limit
// reached; a panic and an error in the feature function; a full disk
// (a small tmpfs when mounting is allowed, else RLIMIT_FSIZE on the
// child); bad input files of every kind beside good ones; I/O errors
// (EIO) at seeded reads, writes and fsyncs of the store through pebble's
// vfs/errorfs, those that stop pebble in a child process; a power cut at
// seeded moments of partition on pebble's crashable in-memory filesystem;
// two commands on one store at once (one held with SIGSTOP); and corrupt
// stores (flipped bytes, cut manifests, a deleted table, wrong records)
// through `mce store verify` and `mce reduce`.
//
// By default (`go test ./internal/faults/`) a short version runs: a few
// kill moments per command. `-faults.full` (or MCE_FAULTS=full) runs the
// full version (20 kill moments per command and more of each fault) and
// prints the table of faults tried; `-faults.table FILE` writes the
// table to FILE in either mode, `-faults.seed N` picks the kill moments.
// docs/reliability.md describes each fault and holds the latest table.
// `go test -short` skips the suite.
package faults
