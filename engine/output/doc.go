// Package output writes what mce hands its users: the features tables of
// `mce run`, `mce reduce` and `mce debug`, and every file of a run folder
// that must be complete or absent.
//
// A features table is one line per user, sorted by user key, after a
// header `user,<columns>`: Header, AppendRecord (one user's Record as one
// line, quoted as RFC 4180 asks) and WriteSorted (the k-way merge of the
// workers' sorted lists into one table, a big one cut at keys into pieces
// merged on the workers and written in order) are the only code that
// formats one, whichever mode computed it. Those CSV bytes are the one form in
// which the modes hand a table over: Writer takes them and writes the
// table in the Format its Options ask for, passing CSV through (with the
// key column named as asked) or reading each line back into the typed
// columns of a Parquet file (see parquetEncoder for the types and the
// library). Table is a Writer onto a File, the one entry point of both
// modes' outputs.
//
// A result file is written through File: under a temporary name
// (TempSuffix), synced, renamed to its final name and the folder synced,
// so that a crash leaves either the whole file or none under the final
// name.
//
// output imports only engine/feature, internal/ordered (and the Parquet
// library).
package output
