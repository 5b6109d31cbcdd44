// Package feature is the contract between mce and a user's feature code.
//
// A feature job is a [Spec]: the output columns, and either a Reduce function
// that sees one user at a time through a [Rows] iterator, or a mergeable
// [Aggregator] (add a row, merge two partial states, finish) that lets the
// engine split one huge user across several workers and merge the parts.
// An optional Map step sees every row before grouping: it can drop a row or
// give it another grouping key (features per receiver instead of per issuer).
//
// The same Spec serves both modes of mce: `mce run` groups a raw file in RAM
// and hands each user's rows to Reduce; `mce reduce` streams a user's rows
// from the store one block at a time. Reduce must therefore read its rows
// through the iterator, once, in order, and must not keep a [Row] (or the
// byte slices it returns) after the iterator moves on: copy what you keep.
//
// # Writing features in a file
//
// `mce run --features f.go` and `mce reduce --features f.go` compile f.go
// together with mce into a worker binary (cached, rebuilt only when f.go or
// mce changes). f.go is package main and declares
//
//	var Features = feature.Spec{ ... }
//
// mce adds the main function. See examples/ in the mce repository for a
// complete file. The same Spec can be run from a program of your own with
// the cli package's Main.
//
// # Rows
//
// Every row has the job's columns, in the order of its [Schema] (the
// default is [InvoiceSchema]). Fields are raw bytes as they were in the
// file; [Row.String] decodes cp1252 text to UTF-8 only when it is asked for.
// Column positions are found once with [Schema.Index] or [Rows.Col] and then
// used as plain ints in the hot loop.
//
// # Amounts and dates
//
// Files write numbers and times the way whoever exported them does:
// "1.234,56", "$ 1,234.56", "(1,234.56)", "31/01/2023 14:05", Unix seconds.
// A file's [NumberFormat] and [DateFormat] say how; [NumberSniffer] and
// [DateSniffer] find them from the file's values, [ParseAmount] and
// [ParseDate] read values with them. The zero formats read exactly what
// [ParseDecimal] and [ParseTime] read.
//
// # Parameters
//
// `--param key=value` (repeatable) reaches every call as [Params], like the
// original engine's function_kwargs_dict.
//
// # Errors and panics
//
// A Reduce or Aggregator that returns an error or panics fails the file it
// was working on; mce records the user and the file in failure.log and goes
// on with the other files.
//
// # A leaf
//
// Spec, Row, Rows, Record, Schema, Encoding and Params are the vocabulary
// every layer of mce speaks (the readers, both modes, the store's
// partitioner, the output writer, the Beam pipeline), so this package
// imports nothing of mce: a features file depends on it alone.
package feature
