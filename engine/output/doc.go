// Package output writes what mce hands its users: the features tables of
// `mce run`, `mce reduce` and `mce debug`, and every file of a run folder
// that must be complete or absent.
//
// A features table is one line per user, sorted by user key, after a header
// `user,<columns>`: Header, AppendRecord (one user's Record as one line,
// quoted as RFC 4180 asks) and WriteSorted (the k-way merge of the
// workers' sorted lists into one table) are the only code that formats
// one, whichever mode computed it. A result file is written through File:
// under a temporary name (TempSuffix), synced, renamed to its final name
// and the folder synced, so that a crash leaves either the whole file or
// none under the final name.
//
// output imports only engine/feature.
package output
