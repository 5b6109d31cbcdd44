// Package csvread reads raw delimited files (invoices) fast: one shared
// reader for `mce run` and `mce partition`.
//
// [Open] opens a file, detects its compression (gzip or zstd, by magic bytes
// and then by extension), strips a UTF-8 byte order mark, sniffs the text
// encoding and the delimiter, reads the header and maps every column of the
// job's [feature.Schema] onto a header column through its canonical name or
// an alias ([DefaultAliases] and [Options.Aliases]). [File.Scan] then parses
// the rest of the file with several goroutines and hands out the good rows in
// [Batch]es: one flat byte buffer per batch, fields in schema order, no heap
// object per row or field.
//
// # Format
//
// Records end at '\n'; a '\r' before it is dropped. A field that starts with
// '"' is quoted: it runs to the next lone '"', may hold delimiters and
// newlines, and "" inside it stands for one '"'. A '"' anywhere else is an
// ordinary byte (inch marks in descriptions are common), and bytes after a
// closing quote up to the next delimiter are kept as they are. Empty lines
// are skipped. Every record must have as many fields as the header; extra
// header columns are ignored.
//
// # Bad rows
//
// A record with the wrong number of fields, with invalid UTF-8 under
// [feature.EncodingUTF8], or with a quote left open at the end of the file is
// a bad row: it is counted and the first few are kept as [*RowError]s in
// [Stats.Samples]. An open quote at the end of the file counts one bad row per
// non-empty line it swallowed. When the share of bad rows passes
// [Options.MaxBadRowShare] the file fails with a [*FileError]; a row longer
// than [Options.MaxRowBytes], a truncated or corrupt compressed stream and a
// file that is not text fail it at once.
//
// # How it is fast
//
// One splitter goroutine reads the (decompressed) stream in large blocks and
// cuts each block after the last newline that is outside quotes, so every
// chunk starts at a record; it counts the newlines so each chunk knows its
// first line number. Parser goroutines split records and fields with
// bytes.IndexByte; a line without '"' never enters the quote state machine.
// Blocks and batches are reused, so a scan allocates nothing per row.
//
// # Encodings
//
// Fields are handed out as the file's raw bytes, except the user field: when
// it is not ASCII and the file (or, with automatic encoding, the field) is
// cp1252, it is converted to UTF-8, so that one user has one key across files
// written in different encodings.
package csvread
