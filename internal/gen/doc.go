// Package gen writes realistic monthly invoice files for demos, tests and
// benchmarks (`mce gen`), and a truth file that says exactly what they hold.
//
// # Files
//
// Run writes Options.Files files named invoices_YYYY_MM.csv (plus .gz or
// .zst when compressed), one per month counting back from December 2024;
// file 0 is the largest and each next file is about 12% smaller. Every file
// has a header and the columns of [feature.InvoiceSchema]:
//
//	invoice_id   a CFDI-like folio (an upper-case UUID)
//	issuer       the user: a Mexican RFC-like id, 12 or 13 characters, some with Ñ or &
//	receiver     an RFC-like id from a much larger space; issuers have repeat customers
//	issued_at    "YYYY-MM-DD hh:mm:ss" within the file's month
//	amount       a positive decimal with exactly 2 fraction digits, log-normal
//	currency     MXN, some USD and EUR
//	description  Spanish text with accents and ñ; quoted per RFC 4180 when it
//	             holds the delimiter or a double quote
//
// Issuers follow a power law (Zipf) over Options.Users ids, except for one
// huge issuer, a bank, that holds Options.HeavyShare of all rows (13% by
// default, as in the real data). Text is written in cp1252 by default, as
// the real data is, or in UTF-8.
//
// With Options.Messy the files vary the way real deliveries do: another
// delimiter per file (',' ';' '|' tab), header columns renamed to the aliases
// the reader knows (rfc_emisor, importe, ...) and sometimes upper-case,
// shuffled column order, an extra column, CRLF line endings in one file, one
// gzip and one zstd file, cp1252 and UTF-8 files mixed, quoted descriptions
// holding a line break, and a share of malformed rows (too many or too few
// fields, never an open quote that would swallow the rows after it).
//
// # Value styles
//
// With Options.ValueStyles (which `mce gen --messy` turns on) each file
// writes its amounts and issue times in a style of its own, as people write
// them; the largest file keeps the plain styles when there are others:
//
//	amounts   plain 1234.56, point 1,234.56, comma 1.234,56, symbol $ 1,234.56
//	          (€ for EUR rows), space 1 234,56 (a no-break space), code
//	          1.234,56 MXN, short 1234.5, comma-plain 1234,56; quoted when
//	          they hold the file's delimiter
//	times     iso-space 2024-12-05 10:11:12, iso-t 2024-12-05T10:11:12, iso-z
//	          ...T10:11:12Z, iso-offset ...T04:11:12-06:00 (the same instant),
//	          dmy 05/12/2024 10:11:12, dmy-hm 05/12/2024 10:11, mdy
//	          12/05/2024 10:11:12, epoch 1733393472, date 2024-12-05
//
// Only the text changes: the same Options give the same rows, the same
// _truth.csv and the same row counts with or without value styles (files
// are sized as if plain, so a byte Size is then met less closely), and
// dmy-hm and date drop the seconds and the time of the instant drawn.
// _truth_styles.csv says each file's styles, the decimal separator and
// date layout a reader should find, the precision its times keep and
// whether they name a zone ([ReadTruthStyles]).
//
// # Determinism
//
// The output depends only on the Options other than Workers and Logger:
// each chunk of rows draws from its own random stream derived from Seed, the
// file and the chunk index, so the bytes are identical whatever the number
// of workers or GOMAXPROCS.
//
// # Truth
//
// Beside the data Run writes _truth.csv (names starting with _ are not read as inputs), one line per file and issuer over
// the good rows (file,user,rows,amount_total; amounts are summed in integer
// cents and written with 2 fraction digits; users in UTF-8; sorted by file,
// then user), and _truth_files.csv, one line per file
// (file,rows,bad_rows,users,amount_total,bytes,compression,delimiter,
// encoding,disk_bytes; bytes is the uncompressed size, header included).
// [ReadTruth] and [ReadTruthFiles] read them back.
package gen
